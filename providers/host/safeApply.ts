// Safe apply (commit-confirm): the runner side. The scripts it runs on the host and the meaning of
// the host-side files are in commitConfirmScripts.ts.
import { randomBytes } from "crypto";
import type { Host } from "./host";
import {
  applyWatchMs,
  CommitConfirmResult,
  CommitConfirmSpec,
  CONNECT_TIMEOUT_MS,
  dirOf,
  ID,
  parseReport,
  PROBE_TIMEOUT_MS,
  probeScript,
  Report,
  RETRY_PAUSE_MS,
  REVERT_WATCH_MS,
  START_SLACK_MS,
  startScript,
} from "./commitConfirmScripts";
import { TransportError, HostSession } from "../transport";

export {
  ipBatchLine,
  parseReport,
  probeScript,
  startScript,
} from "./commitConfirmScripts";
export type {
  CommitConfirmResult,
  CommitConfirmSpec,
  ScriptLine,
} from "./commitConfirmScripts";

export class CommitConfirmError extends Error {
  override name = "CommitConfirmError";
}

class CommitConfirm {
  private readonly d: string;
  private readonly token = randomBytes(8).toString("hex");
  private started = 0;
  private attempts = 0;
  private lastError = "";
  /** Some attempt to reach the host after the apply failed (the start step's own session included). */
  private cutSeen = false;

  constructor(
    private readonly host: Host,
    private readonly spec: CommitConfirmSpec,
  ) {
    this.d = dirOf(spec.id);
  }

  private get T(): number {
    return this.spec.confirmTimeoutSeconds * 1000;
  }

  private at(ms: number): string {
    return new Date(this.started + ms).toISOString().replace(/\.\d+Z$/, "Z");
  }

  async run(): Promise<CommitConfirmResult> {
    await this.host.ensureLocked(); // another deployment must not write to this host mid-change
    this.started = Date.now();
    const first = await this.start();
    try {
      await this.confirm(first === "applied");
      return { attempts: this.attempts, elapsedMs: Date.now() - this.started };
    } finally {
      this.host.invalidate();
      await this.checkSharedSession();
    }
  }

  /** Returns whether the host reported the apply finished cleanly; throws when nothing was armed. */
  private async start(): Promise<"applied" | "unknown"> {
    let r;
    try {
      r = await this.host.session.exec(startScript(this.spec, this.token), {
        timeoutMs: applyWatchMs(this.spec) + START_SLACK_MS,
        what: `start the commit-confirm of ${this.spec.what}`,
      });
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      [this.lastError, this.cutSeen] = [this.reason(err), true];
      return "unknown"; // the apply may have cut this very session: the probes will tell
    } finally {
      this.host.invalidate();
    }
    const rep = parseReport(r.stdout);
    if (rep.state === "busy") throw this.busyError(rep.args[0]);
    if (rep.state === "applied" || rep.state === "running")
      return rep.state === "applied" && rep.args[0] === "0"
        ? "applied"
        : "unknown";
    throw new CommitConfirmError(
      `${this.host.label}: could not arm the revert timer for ${this.spec.what} (${rep.state === "notimer" ? "the timer did not start" : `exit ${r.code}`}), ` +
        `so nothing was applied. ${r.stderr.trim()} Check that setsid (util-linux) exists on the host and /run/hostnet is writable.`,
    );
  }

  private async confirm(appliedSeen: boolean): Promise<void> {
    let seen = appliedSeen;
    while (Date.now() < this.started + this.T + REVERT_WATCH_MS) {
      const rep = await this.probe(seen);
      if (!rep) continue;
      if (rep.state === "gone") throw this.goneError();
      if (rep.state === "decided" && this.settled(rep)) return;
      if (rep.state === "applied")
        seen = true; // confirm at once, over the next new session
      else if (rep.state !== "raced") await sleep(RETRY_PAUSE_MS); // still applying, or the revert still running
    }
    throw this.cutError();
  }

  /** One attempt over a brand-new SSH session; undefined when none could be made. */
  private async probe(confirm: boolean): Promise<Report | undefined> {
    this.attempts++;
    const session = new HostSession(
      { ...this.host.session.conn, connectTimeoutMs: CONNECT_TIMEOUT_MS },
      [], // this loop is the retry: each attempt is a brand-new session
    );
    const began = Date.now();
    const what = `confirm ${this.spec.what}`;
    try {
      const exec = session.exec(
        probeScript(this.spec.id, this.token, confirm),
        { timeoutMs: PROBE_TIMEOUT_MS, what },
      );
      const r = await within(
        exec,
        CONNECT_TIMEOUT_MS + PROBE_TIMEOUT_MS,
        `${this.host.label}: no answer while trying to ${what}`,
      );
      const rep = parseReport(r.stdout);
      if (rep.state === "")
        throw new Error(
          `${this.host.label}: could not ${what} (exit ${r.code}): ${r.stderr.trim() || "no output"}`,
        );
      return rep;
    } catch (err) {
      this.lastError = this.reason(err);
      this.cutSeen ||= err instanceof TransportError || err instanceof NoAnswer;
      await sleep(Math.max(0, RETRY_PAUSE_MS - (Date.now() - began)));
      return undefined;
    } finally {
      session.drop();
    }
  }

  /** A decision is final: confirmed returns, the rest throw; a revert still running is waited for. */
  private settled(rep: Report): boolean {
    const [by, revertRc] = rep.args;
    if (by === "confirmed") return true;
    if (by === "failed") throw this.failedError(rep);
    if (by === "timer" && revertRc !== undefined) throw this.revertedError(rep);
    return false;
  }

  /** After the change the pooled connection may be dead; better to reconnect than to hang on it. */
  private async checkSharedSession(): Promise<void> {
    try {
      const r = await within(
        this.host.session.exec("true\n", {
          timeoutMs: 3000,
          what: "check the connection",
        }),
        3000,
        "no answer",
      );
      if (r.code !== 0) this.host.session.drop();
    } catch {
      this.host.session.drop();
    }
  }

  // ---------------------------------------------------------------- operator messages

  /**
   * A failed attempt in a few words, without the transport's own phrasing: every outcome of a
   * commit-confirm is settled by the host, and must not read as "connection lost mid-change".
   */
  private reason(err: unknown): string {
    return String((err as Error)?.message ?? err)
      .replace(`${this.host.label}: `, "")
      .replace(/^cannot connect: /, "connecting failed: ")
      .replace(
        /^timed out after (\d+) ms while trying to .*/s,
        "no answer within $1 ms",
      )
      .replace(
        /^connection lost while trying to .*/s,
        "the connection dropped",
      );
  }

  private get files(): string {
    return `${this.d}/{apply,revert}.log`;
  }

  private busyError(pid: string | undefined): Error {
    return new CommitConfirmError(
      `${this.host.label}: a previous commit-confirm of the same object (${this.d}) is still waiting for its confirmation ` +
        `(timer pid ${pid ?? "?"}); it will revert that change by itself when its timeout ends. Nothing was applied now. ` +
        `Wait for it (see ${this.d}/revert.log afterwards), then run again.`,
    );
  }

  private goneError(): Error {
    return new CommitConfirmError(
      `${this.host.label}: the commit-confirm state for ${this.spec.what} (${this.d}) is missing or belongs to another run: ` +
        `the start step never reached the host (${this.lastError || "no error reported"}) or something removed it. Nothing is ` +
        `recorded as applied. Check the host by hand (ip -d link, ip addr, ip route) before running again.`,
    );
  }

  private failedError(rep: Report): Error {
    return new CommitConfirmError(
      `${this.host.label}: applying ${this.spec.what} failed on the host, so hostnet reverted it at once ` +
        `(revert exit ${rep.args[1] ?? "?"}). Nothing is recorded as applied.\n` +
        `  apply log: ${oneLine(rep.logs["apply.log"])}\n  revert log: ${oneLine(rep.logs["revert.log"])}\n` +
        `  Files: ${this.files}. Fix the cause in the apply log and run again.`,
    );
  }

  private revertedError(rep: Report): Error {
    const why = !this.cutSeen
      ? `hostnet could not confirm it in time${this.lastError ? ` (last error: ${this.lastError})` : ""}`
      : `the change cut SSH to ${this.host.session.conn.host}: no new SSH session could be made within ${this.spec.confirmTimeoutSeconds} s after applying it (last error: ${this.lastError})`;
    return new CommitConfirmError(
      `${this.host.label}: ${why}. The host reverted ${this.spec.what} by itself at about ${this.at(this.T)} (revert exit ` +
        `${rep.args[1]}), and SSH works again. Nothing is recorded as applied.\n` +
        `  apply log: ${oneLine(rep.logs["apply.log"])}\n  revert log: ${oneLine(rep.logs["revert.log"])}\n` +
        `  Files: ${this.files}. Check why the changed host was unreachable (is the bridge up, did the addresses and routes ` +
        `move, does the management VLAN/MTU still fit) before running again; a larger confirmTimeoutSeconds helps only a slow link.`,
    );
  }

  private cutError(): Error {
    return new CommitConfirmError(
      `${this.host.label}: the change cut SSH to ${this.host.session.conn.host}: ${this.spec.what} was applied, and no new SSH session could ` +
        `be made within ${this.spec.confirmTimeoutSeconds} s after it (last error: ${this.lastError || "none"}). The host ` +
        `reverts it by itself at about ${this.at(this.T)} (${this.spec.confirmTimeoutSeconds} s after the apply); hostnet could not ` +
        `reach it afterwards to see that happen. Nothing is recorded as applied. Check from a console: that the revert ran ` +
        `(${this.d}/revert.log, revert.rc), that the management address is back where it was (ip addr, ip route), and why ` +
        `the change cut the path, before running again.`,
    );
  }
}

function oneLine(s: string | undefined): string {
  const t = (s ?? "").trim().replace(/\n+/g, " | ");
  return t === "" ? "(empty)" : t;
}

class NoAnswer extends Error {}

/** A channel that never opens has no timeout of its own (the exec timer starts once it is open). */
function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(() => reject(new NoAnswer(message)), ms)),
  );
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One commit-confirm at a time per host: two at once would judge each other's cuts. */
const inFlight = new WeakMap<Host, Promise<unknown>>();

/**
 * Apply `spec.apply` on the host so that it reverts by itself (`spec.revert`) unless hostnet can
 * confirm over a new SSH session within `confirmTimeoutSeconds`. Resolves once confirmed; throws
 * (after the host reverted, or with the time it will) otherwise.
 */
export function commitConfirm(
  host: Host,
  spec: CommitConfirmSpec,
): Promise<CommitConfirmResult> {
  if (!ID.test(spec.id))
    throw new Error(
      `commitConfirm: id ${JSON.stringify(spec.id)} must match ${ID}`,
    );
  if (
    !Number.isInteger(spec.confirmTimeoutSeconds) ||
    spec.confirmTimeoutSeconds < 5
  ) {
    throw new Error(
      `commitConfirm: confirmTimeoutSeconds must be an integer of at least 5, got ${spec.confirmTimeoutSeconds}`,
    );
  }
  if (spec.apply.length === 0)
    throw new Error("commitConfirm: nothing to apply");
  const prev = inFlight.get(host) ?? Promise.resolve();
  const next = prev
    .catch(() => undefined)
    .then(() => new CommitConfirm(host, spec).run());
  inFlight.set(host, next);
  return next;
}
