// Lab hosts for integration tests: bring them up (idempotent), read their inventory, build hostnet
// connections for them, and run commands over a SEPARATE OpenSSH session (the `ssh` client, not
// hostnet's ssh2 layer) so what hostnet did is verified independently.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { labDir } from "../../stacks/config";

export const ROOT = path.resolve(__dirname, "..", "..", "..");
/** This lab's directory: .hostnet/lab, or .hostnet/lab-J for HOSTNET_LAB_ID=J (scripts/lab.sh). */
export const LAB_DIR = labDir();

export interface LabHost {
  name: string;
  address: string;
  port: number;
  user: string;
  hostKey: string;
  hostKeyFingerprint: string;
  netns: string;
  rootVeth: string;
  machineId: string;
}

export interface LabInventory {
  /** The lab's bridge in the root namespace (hnlabJ) and its address there (198.18.J.1). */
  bridge: string;
  gateway: string;
  privateKeyPath: string;
  knownHostsPath: string;
  sudoUser: string;
  hosts: LabHost[];
}

export function labUp(n: number): LabInventory {
  execFileSync(
    "bash",
    [path.join(ROOT, "scripts", "lab.sh"), "up", String(n)],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  return inventory();
}

export function inventory(): LabInventory {
  return JSON.parse(
    fs.readFileSync(path.join(LAB_DIR, "inventory.json"), "utf8"),
  );
}

export function privateKey(): string {
  return fs.readFileSync(inventory().privateKeyPath, "utf8");
}

/** A hostnet connection input for a lab host (root by default, or the sudo user). */
export function labConnection(h: LabHost, opts: { sudo?: boolean } = {}) {
  const inv = inventory();
  return {
    host: h.address,
    port: h.port,
    user: opts.sudo ? inv.sudoUser : "root",
    sudo: opts.sudo ?? false,
    hostKey: h.hostKey,
    privateKey: privateKey(),
  };
}

/** Run a command on a lab host through its own OpenSSH session. */
/**
 * The shell commands that break a lab host behind hostnet's back: a foreign bridge-family nft table
 * `table` whose forward chain drops every frame any bridge of the host forwards (so its VMs cannot
 * reach each other; nothing hostnet manages changes). The throwaway bridge comes first because of
 * a kernel quirk seen on 6.18: in a network namespace that never had a bridge, a bridge-family base
 * chain created before the first bridge does not see that bridge's frames; once any bridge has
 * existed in the namespace, it does. A fresh lab host (test lanes bring labs up fresh) is such a
 * namespace, and the break then did nothing.
 */
export function breakBridging(table: string): { brk: string; fix: string } {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(table))
    throw new Error(`breakBridging: bad table name '${table}'`);
  return {
    brk:
      "ip link add hnbrk0 type bridge && ip link del hnbrk0 && nft -f - <<'EOF'\n" +
      `table bridge ${table} {\n chain forward { type filter hook forward priority 0; policy drop; }\n}\nEOF`,
    fix: `nft delete table bridge ${table} 2>/dev/null; true`,
  };
}

/** The ssh client's options for a lab host: the lab key and known_hosts, nothing from ~/.ssh. */
export function sshArgs(h: LabHost, user = "root"): string[] {
  const inv = inventory();
  return [
    "-i",
    inv.privateKeyPath,
    "-o",
    `UserKnownHostsFile=${inv.knownHostsPath}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    // A 2-core CI machine running three lanes can take seconds to fork sshd and send its banner;
    // the old 5 s made an independent check fail a test that had passed (CI, keyRef).
    "-o",
    "ConnectTimeout=20",
    "-p",
    String(h.port),
    `${user}@${h.address}`,
  ];
}

// What the client prints when no session was ever opened, so the command never ran and running
// it again is safe. Anything else (the command's own failure, a dropped session) is not retried.
// ("Connection reset" alone is not enough: it is also how a session dies after its command ran.)
const NOT_CONNECTED =
  /^ssh: connect to host .*: Connection (timed out|refused)|banner exchange|kex_exchange_identification/m;
const CONNECT_ATTEMPTS = 4;

/** ssh to a lab host, trying again (1, 2, 4 s apart) only when the connection was never made. */
export function sshExec(
  h: LabHost,
  args: string[],
  opts: { user?: string; input?: string; maxBuffer?: number } = {},
): string {
  for (let attempt = 1; ; attempt++) {
    try {
      return execFileSync("ssh", [...sshArgs(h, opts.user), ...args], {
        encoding: "utf8",
        input: opts.input,
        stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        maxBuffer: opts.maxBuffer ?? 64 << 20, // a full snapshot of many namespaces is several MB
      });
    } catch (err) {
      const e = err as { status?: number; stderr?: string };
      const retry =
        attempt < CONNECT_ATTEMPTS &&
        e.status === 255 &&
        NOT_CONNECTED.test(String(e.stderr ?? ""));
      if (!retry) throw err;
      process.stderr.write(
        `lab: ssh to ${h.name} (${h.address}) not connected, attempt ${attempt}: ${String(e.stderr).trim()}\n`,
      );
      execFileSync("sleep", [String(2 ** (attempt - 1))]);
    }
  }
}

export function sshRun(
  h: LabHost,
  command: string,
  opts: { allowFail?: boolean; user?: string } = {},
): string {
  try {
    return sshExec(h, [command], { user: opts.user });
  } catch (err) {
    if (opts.allowFail) return (err as { stdout?: string }).stdout ?? "";
    throw err;
  }
}

export function sshJson<T = any>(h: LabHost, command: string): T {
  const out = sshRun(h, command).trim();
  return JSON.parse(out === "" ? "[]" : out) as T;
}

/** `s` matched literally inside a RegExp (for messages that name a lab address). */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
