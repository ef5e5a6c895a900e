// A run whose engine was killed (SIGKILL, OOM, a runner that vanished) leaves its stack lock in a
// DIY backend, and every later run fails with "the stack is currently locked" until someone runs
// `pulumi cancel`. hostnet's runners remove such a lock themselves when it provably belongs to a
// dead run: a file backend, a lock written on THIS machine, by a process that no longer exists.
// Anything else — another machine's lock, a live process, a backend that is not a directory
// (Postgres, S3) — is left alone, and the engine's own message tells the operator what to do.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

interface LockContent {
  pid?: number;
  hostname?: string;
  timestamp?: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The lock files of `stack` in a file:// backend (project-scoped layout). */
function lockFiles(
  backendUrl: string,
  project: string,
  stack: string,
): string[] {
  if (!backendUrl.startsWith("file://")) return [];
  const dir = path.join(
    backendUrl.slice("file://".length),
    ".pulumi",
    "locks",
    "organization",
    project,
    stack,
  );
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => path.join(dir, f));
}

/**
 * Remove the locks of `stack` left by dead runs on this machine; returns one line per lock
 * removed, for the operator's terminal.
 */
export function clearDeadRunLocks(
  backendUrl: string,
  project: string,
  stack: string,
): string[] {
  const removed: string[] = [];
  for (const file of lockFiles(backendUrl, project, stack)) {
    let lock: LockContent;
    try {
      lock = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      continue; // being written, or not a lock we understand: leave it to the engine
    }
    if (
      lock.hostname !== os.hostname() ||
      typeof lock.pid !== "number" ||
      alive(lock.pid)
    )
      continue;
    fs.rmSync(file, { force: true });
    removed.push(
      `hostnet: removed the lock of stack ${stack} left by a run that died (pid ${lock.pid} on this machine, started ${lock.timestamp ?? "at an unknown time"}); ` +
        `the next refresh reconciles what it left on the hosts.`,
    );
  }
  return removed;
}
