// Safe apply (commit-confirm) for changes that can cut the SSH path hostnet reaches a host by:
// enslaving the uplink that carries the management address, moving that address, changing the
// device it sits on. The host is told how to undo the change and arms a detached timer that undoes
// it unless confirmed; the change itself also runs detached, so it completes even when it kills
// the session that started it. hostnet then proves the path still works by opening NEW SSH
// sessions (an old TCP connection can outlive a change that breaks new ones) and confirms over
// one of them. If none can be made in time, the host reverts by itself.
//
// Host-side state, one directory per change id under /run/hostnet/safe-apply/<id>/:
//   token        which run owns the directory (a later run's files are never mistaken for ours)
//   apply.sh     the change (stops at its first failing command); apply.log, apply.rc
//   revert.sh    its exact inverse (every command runs, failing ones are skipped); revert.log, revert.rc
//   timer.sh     sleeps the confirm timeout, then reverts unless decided; timer.pid
//   decided/     created atomically (mkdir) by whoever decides first; decided/by says who:
//                "confirmed" (hostnet), "timer" (the host reverted by itself), "failed" (apply failed,
//                hostnet reverted it). The timer and the confirmation can never both win.
import { randomBytes } from "crypto";
import type { Host } from "./host";
import { argvToShell, batchLine, heredoc, shellQuote } from "../transport";
import { TransportError } from "../transport";
import { HostSession } from "../transport";

const BASE = "/run/hostnet/safe-apply";
const ID = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,99}$/;
/**
 * How long the start step waits on the host for the apply to finish (at most a quarter of the
 * confirm timeout). Its answer must come back soon after: one that arrives late crossed a cut
 * path that the revert restored.
 */
const APPLY_WATCH_MS = 2000;
const START_SLACK_MS = 2000;
/** Per attempt: a cut path shows up as a handshake that never completes. */
const CONNECT_TIMEOUT_MS = 2500;
const PROBE_TIMEOUT_MS = 5000;
const RETRY_PAUSE_MS = 400;
/** After the confirm timeout, keep trying this long to see (and report) the host's own revert. */
const REVERT_WATCH_MS = 8000;

/** A command of a commit-confirm script. Only the builders below make one: no raw string reaches the host. */
export type ScriptLine = string & { readonly __scriptLine: unique symbol };

/** One `ip -batch` run of token lines; force: run every line even after one fails (for reverts). */
export function ipBatchLine(
  netns: string | undefined,
  lines: ReadonlyArray<readonly string[]>,
  opts: { force?: boolean } = {},
): ScriptLine {
  const argv = [
    "ip",
    ...(netns ? ["-n", netns] : []),
    ...(opts.force ? ["-force"] : []),
    "-batch",
    "-",
  ];
  return `${argvToShell(argv)} ${heredoc(lines.map((t) => batchLine(t)).join("\n"))}` as ScriptLine;
}

export interface CommitConfirmSpec {
  /** Names the host-side directory: [A-Za-z0-9_.@-], at most 100 characters. */
  id: string;
  /** Words for the operator: "enslave mgmt0 to bridge br0 and move 10.0.0.5/24 onto br0". */
  what: string;
  apply: ScriptLine[];
  revert: ScriptLine[];
  confirmTimeoutSeconds: number;
}

export interface CommitConfirmResult {
  /** New SSH sessions tried until one confirmed (1 when the path never broke). */
  attempts: number;
  elapsedMs: number;
}

// ------------------------------------------------------------------ host-side scripts

function dirOf(id: string): string {
  return `${BASE}/${id}`;
}

/** Shell functions shared by the start and probe scripts. */
function helpers(d: string): string {
  const q = (f: string) => shellQuote(`${d}/${f}`);
  return [
    `say() { echo "@@cc $*"; }`,
    `timer_alive() { p=$(cat ${q("timer.pid")} 2>/dev/null) && [ -n "$p" ] && tr '\\0' ' ' </proc/"$p"/cmdline 2>/dev/null | grep -qF ${q("timer.sh")}; }`,
    // The timer is a session leader (setsid): its group holds the shell and its sleep.
    `kill_timer() { if timer_alive; then kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; fi; return 0; }`,
    `show() { echo "@@cc log $1"; head -c 3000 ${shellQuote(d)}/"$1" 2>/dev/null | sed 's/^/| /'; echo; }`,
  ].join("\n");
}

function timerScript(d: string, seconds: number): string {
  const q = (f: string) => shellQuote(`${d}/${f}`);
  return [
    `echo $$ > ${q("timer.pid")}`,
    `sleep ${seconds}`,
    `if mkdir ${q("decided")} 2>/dev/null; then`,
    `  echo timer > ${q("decided/by")}`,
    `  sh ${q("revert.sh")} > ${q("revert.log")} 2>&1; echo $? > ${q("revert.rc")}`,
    `fi`,
    `rm -f ${q("timer.pid")}`,
  ].join("\n");
}

function writeFile(path: string, body: string): string {
  return `cat > ${shellQuote(path)} ${heredoc(body)}`;
}

function applyWatchMs(spec: CommitConfirmSpec): number {
  return Math.min(APPLY_WATCH_MS, (spec.confirmTimeoutSeconds * 1000) / 4);
}

/** Arms the timer, then (only once it runs) starts the apply detached and watches it briefly. */
export function startScript(spec: CommitConfirmSpec, token: string): string {
  const d = dirOf(spec.id);
  const q = (f: string) => shellQuote(`${d}/${f}`);
  const applyJob = `sh ${q("apply.sh")} > ${q("apply.log")} 2>&1; echo $? > ${q("apply.rc.tmp")}; mv ${q("apply.rc.tmp")} ${q("apply.rc")}`;
  return [
    "set -e",
    "umask 077",
    helpers(d),
    `mkdir -p ${shellQuote(BASE)}`,
    `if timer_alive; then say busy "$p"; exit 0; fi`,
    `rm -rf ${shellQuote(d)}`,
    `mkdir ${shellQuote(d)}`,
    `echo ${shellQuote(token)} > ${q("token")}`,
    writeFile(`${d}/apply.sh`, ["set -e", ...spec.apply].join("\n")),
    writeFile(`${d}/revert.sh`, ["set +e", ...spec.revert].join("\n")),
    writeFile(`${d}/timer.sh`, timerScript(d, spec.confirmTimeoutSeconds)),
    `${argvToShell(["setsid", "-f", "sh", `${d}/timer.sh`])} </dev/null >/dev/null 2>&1`,
    `i=0; while [ ! -s ${q("timer.pid")} ]; do i=$((i+1)); if [ $i -gt 50 ]; then say notimer; exit 0; fi; sleep 0.1; done`,
    `say armed`,
    `${argvToShell(["setsid", "-f", "sh", "-c", applyJob])} </dev/null >/dev/null 2>&1`,
    `i=0; while [ ! -e ${q("apply.rc")} ] && [ $i -lt ${Math.ceil(applyWatchMs(spec) / 100)} ]; do i=$((i+1)); sleep 0.1; done`,
    `if [ -e ${q("apply.rc")} ]; then say applied "$(cat ${q("apply.rc")})"; show apply.log; else say running; fi`,
    "",
  ].join("\n");
}

/**
 * What one new session does: report the state, revert a failed apply at once, and (confirm) claim
 * the decision for hostnet. Confirming is only asked of a session opened after the apply was seen
 * finished, so the session that confirms is one the changed host accepted.
 */
export function probeScript(
  id: string,
  token: string,
  confirm: boolean,
): string {
  const d = dirOf(id);
  const q = (f: string) => shellQuote(`${d}/${f}`);
  const claim = (by: string) =>
    `mkdir ${q("decided")} 2>/dev/null || { say raced; exit 0; }; echo ${by} > ${q("decided/by")}; kill_timer`;
  return [
    helpers(d),
    `[ "$(cat ${q("token")} 2>/dev/null)" = ${shellQuote(token)} ] || { say gone; exit 0; }`,
    `if [ -d ${q("decided")} ]; then say decided "$(cat ${q("decided/by")} 2>/dev/null)" "$(cat ${q("revert.rc")} 2>/dev/null)"; show apply.log; show revert.log; exit 0; fi`,
    `[ -e ${q("apply.rc")} ] || { say pending; exit 0; }`,
    `rc=$(cat ${q("apply.rc")})`,
    `if [ "$rc" != 0 ]; then`,
    `  ${claim("failed")}`,
    `  sh ${q("revert.sh")} > ${q("revert.log")} 2>&1; echo $? > ${q("revert.rc")}`,
    `  say decided failed "$(cat ${q("revert.rc")})"; show apply.log; show revert.log; exit 0`,
    `fi`,
    confirm
      ? `${claim("confirmed")}; rm -f ${q("apply.sh")} ${q("revert.sh")} ${q("timer.sh")}; say decided confirmed`
      : `say applied 0`,
    "",
  ].join("\n");
}

// ------------------------------------------------------------------ parsing

interface Report {
  state: string;
  args: string[];
  logs: Record<string, string>;
}

export function parseReport(stdout: string): Report {
  const r: Report = { state: "", args: [], logs: {} };
  let log: string | undefined;
  for (const line of stdout.split("\n")) {
    const m = /^@@cc (\S+)(.*)$/.exec(line);
    if (m && m[1] === "log") log = m[2].trim();
    else if (m)
      [r.state, r.args, log] = [
        m[1],
        m[2].trim().split(/\s+/).filter(Boolean),
        undefined,
      ];
    else if (log !== undefined && line.startsWith("| "))
      r.logs[log] = (r.logs[log] ?? "") + line.slice(2) + "\n";
  }
  return r;
}

// ------------------------------------------------------------------ the protocol

/**
 * Every failure of a commit-confirm after the start is settled on the host (it reverted, or will
 * by itself): nothing is half-applied as far as the caller's state is concerned.
 */
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
    const session = new HostSession({
      ...this.host.session.conn,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    });
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
