// Commit-confirm, the host side: the scripts a safe apply runs on the host (start, probe, timer,
// revert) and the parser of their report; pure, driven by safeApply.ts.
//
// Safe apply is for changes that can cut the SSH path hostnet reaches a host by:
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
import { argvToShell, batchLine, heredoc, shellQuote } from "../transport";

const BASE = "/run/hostnet/safe-apply";
export const ID = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,99}$/;
/**
 * How long the start step waits on the host for the apply to finish (at most a quarter of the
 * confirm timeout). Its answer must come back soon after: one that arrives late crossed a cut
 * path that the revert restored.
 */
const APPLY_WATCH_MS = 2000;
export const START_SLACK_MS = 2000;
/** Per attempt: a cut path shows up as a handshake that never completes. */
export const CONNECT_TIMEOUT_MS = 2500;
export const PROBE_TIMEOUT_MS = 5000;
export const RETRY_PAUSE_MS = 400;
/** After the confirm timeout, keep trying this long to see (and report) the host's own revert. */
export const REVERT_WATCH_MS = 8000;

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

export function dirOf(id: string): string {
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

export function applyWatchMs(spec: CommitConfirmSpec): number {
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

export interface Report {
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
