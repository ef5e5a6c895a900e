// Coalescing: operations that many resources issue concurrently against one host are merged into
// one round trip, one `ip -batch` / `bridge -batch` / `nft -f` per (namespace, tool), and every
// result is attributed back to the operation that caused it. Pure planning (buildFlushScript,
// attributeResults) is separate from the I/O (HostQueue) so it can be unit-tested.
import { Argv, argvToShell, heredoc, shellQuote } from "../transport";

export type HostOp =
  | {
      kind: "batch";
      tool: "ip" | "bridge";
      netns?: string;
      lines: string[];
      what: string;
    }
  /** checkOnly: `nft -c -f -` (validate against the live kernel, change nothing). */
  | {
      kind: "nft";
      netns?: string;
      script: string;
      what: string;
      checkOnly?: boolean;
    }
  | { kind: "sh"; netns?: string; commands: Argv[]; what: string }
  /**
   * Replace a text file atomically (temp file + rename; parent directories created). Files are not
   * per namespace. `content` must end with a newline (it travels in a here-document, which adds one).
   */
  | {
      kind: "writeFile";
      netns?: undefined;
      path: string;
      content: string;
      mode: string;
      what: string;
    };

/** Absolute paths a writeFile op accepts: no shell or glob characters, no `.`/`..` segments. */
const SAFE_ABSOLUTE_PATH = /^(\/[A-Za-z0-9_@+,.-]+)+$/;

/** Why `path` is not an acceptable file path for a writeFile op, or undefined when it is. */
export function filePathProblem(path: string): string | undefined {
  if (typeof path !== "string" || !SAFE_ABSOLUTE_PATH.test(path)) {
    return "must be an absolute path of letters, digits and _ @ + , . - between slashes (no trailing slash)";
  }
  if (path.split("/").some((seg) => seg === "." || seg === ".."))
    return "must not contain . or .. segments";
  if (path.length > 1024) return "must be at most 1024 characters";
  return undefined;
}

export class HostOpError extends Error {
  constructor(
    readonly host: string,
    readonly op: HostOp,
    readonly command: string,
    readonly output: string,
  ) {
    super(
      `${host} (${op.netns ? `netns ${op.netns}` : "root namespace"}): could not ${op.what}\n` +
        `  command: ${command}\n  error: ${output.trim() || "(no output)"}`,
    );
    this.name = "HostOpError";
  }
}

/** One group of the flush script: ops run by one tool invocation, in order. */
export interface FlushGroup {
  ops: number[];
  tool: "ip" | "bridge" | "nft" | "sh" | "writeFile";
  netns?: string;
  /** nft groups only: `nft -c` (check-only ops never share a transaction with real ones). */
  checkOnly?: boolean;
  /** Line ranges [first, last] (1-based) of each op inside a batch group. */
  ranges?: Array<[number, number]>;
}

export interface FlushPlan {
  script: string;
  groups: FlushGroup[];
}

const MARK = "@@hn";

function toolPrefix(tool: "ip" | "bridge", netns?: string): string {
  return netns ? `${tool} -n ${shellQuote(netns)}` : tool;
}

function inNetns(netns: string | undefined, argv: Argv): Argv {
  return netns ? ["ip", "netns", "exec", netns, ...argv] : argv;
}

/** Describe the command an op ran, for error messages. */
export function describeCommand(op: HostOp): string {
  switch (op.kind) {
    case "batch":
      return `${toolPrefix(op.tool, op.netns)} -batch - <<< ${JSON.stringify(op.lines.join("\n"))}`;
    case "nft":
      return `${op.netns ? `ip netns exec ${op.netns} ` : ""}nft${op.checkOnly ? " -c" : ""} -f - (${op.script.split("\n").length} lines)`;
    case "sh":
      return op.commands
        .map((c) => argvToShell(inNetns(op.netns, c)))
        .join(" && ");
    case "writeFile":
      return `write ${op.path} (${Buffer.byteLength(op.content)} bytes, mode ${op.mode})`;
  }
}

/** Namespaces whose groups a flush runs at once on the host, unless the caller says otherwise. */
export const DEFAULT_FLUSH_LANES = 4;

/**
 * Group ops by (tool, namespace) keeping first-seen order. `isolate` lists ops that must run
 * alone (a previous merged attempt failed in a way that could not be attributed).
 *
 * Groups of different namespaces run concurrently on the host, in up to `lanes` background
 * workers: the ops of one flush come from resources the engine runs at the same time, which it
 * only does for resources that do not depend on each other, and the kernel objects of different
 * namespaces are distinct. Each namespace's groups stay in one worker, in order (root ops and
 * file writes form the root's chain). Each worker writes its own temp file, concatenated at the
 * end, so every group's section stays whole and results are attributed exactly as when run one
 * by one; without mktemp the workers' chains run one after the other.
 */
export function buildFlushScript(
  ops: HostOp[],
  isolate: Set<number> = new Set(),
  lanes: number = DEFAULT_FLUSH_LANES,
): FlushPlan {
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 64)
    throw new RangeError(
      `buildFlushScript: lanes must be an integer 1–64, got ${String(lanes)}`,
    );
  const groups: FlushGroup[] = [];
  const byKey = new Map<string, FlushGroup>();
  ops.forEach((op, i) => {
    const tool = op.kind === "batch" ? op.tool : op.kind;
    const mergeable = tool !== "sh" && tool !== "writeFile" && !isolate.has(i);
    const checkOnly = op.kind === "nft" && op.checkOnly === true;
    const key = `${tool}${checkOnly ? " -c" : ""}\u0000${op.netns ?? ""}`;
    let g = mergeable ? byKey.get(key) : undefined;
    if (!g) {
      g = {
        ops: [],
        tool,
        netns: op.netns,
        ...(checkOnly ? { checkOnly } : {}),
      };
      groups.push(g);
      if (mergeable) byKey.set(key, g);
    }
    g.ops.push(i);
  });
  const sections = groups.map((g, gi) =>
    [
      `echo '${MARK} group ${gi}'`,
      groupCommand(g, ops),
      `echo "${MARK} rc ${gi} $?"`,
    ].join("\n"),
  );
  const workers = laneSections(groups, lanes);
  const body =
    workers.length <= 1
      ? sections
      : concurrentLanes(workers.map((w) => w.map((gi) => sections[gi])));
  const parts = ["set +e", ...body, `echo '${MARK} end'`];
  return { script: parts.join("\n") + "\n", groups };
}

/** Group indices per worker: each namespace's chain, in order, dealt round-robin to `lanes` workers. */
function laneSections(groups: FlushGroup[], lanes: number): number[][] {
  const chains = new Map<string, number[]>();
  groups.forEach((g, gi) => {
    const key = g.netns ?? "";
    const chain = chains.get(key) ?? [];
    chain.push(gi);
    chains.set(key, chain);
  });
  const workers: number[][] = [];
  [...chains.values()].forEach((chain, k) => {
    const w = k % lanes;
    workers[w] = [...(workers[w] ?? []), ...chain];
  });
  return workers;
}

/**
 * Workers as shell functions, so the shell has read the whole script (it arrives on stdin) before
 * any of them starts; each writes to its own file in a temp directory, removed on every exit.
 */
function concurrentLanes(workers: string[][]): string[] {
  const call = (w: number) => `hn_lane${w}`;
  return [
    ...workers.map((w, i) => `${call(i)}() {\n${w.join("\n")}\n}`),
    "hn_flush() {",
    "  hn_d=$(mktemp -d 2>/dev/null) || hn_d=",
    `  if [ -z "$hn_d" ]; then ${workers.map((_, i) => `${call(i)} </dev/null;`).join(" ")} return; fi`,
    `  trap 'rm -rf "$hn_d"' EXIT`,
    "  trap 'exit 1' HUP INT TERM",
    ...workers.map((_, i) => `  ${call(i)} >"$hn_d/${i}" 2>&1 </dev/null &`),
    "  wait",
    `  cat ${workers.map((_, i) => `"$hn_d/${i}"`).join(" ")}`,
    `  rm -rf "$hn_d"; trap - EXIT HUP INT TERM`,
    "}",
    "hn_flush",
  ];
}

/**
 * One op as a stand-alone shell command (what a flush runs for it alone): its output goes to
 * stdout, its exit status is the op's. The boot restore script is made of these.
 */
export function opCommand(op: HostOp): string {
  const tool = op.kind === "batch" ? op.tool : op.kind;
  const checkOnly = op.kind === "nft" && op.checkOnly === true;
  return groupCommand(
    { ops: [0], tool, netns: op.netns, ...(checkOnly ? { checkOnly } : {}) },
    [op],
  );
}

function groupCommand(g: FlushGroup, ops: HostOp[]): string {
  if (g.tool === "ip" || g.tool === "bridge") {
    const lines: string[] = [];
    g.ranges = [];
    for (const i of g.ops) {
      const op = ops[i] as Extract<HostOp, { kind: "batch" }>;
      g.ranges.push([lines.length + 1, lines.length + op.lines.length]);
      lines.push(...op.lines);
    }
    return `${toolPrefix(g.tool, g.netns)} -batch - 2>&1 ${heredoc(lines.join("\n"))}`;
  }
  if (g.tool === "nft") {
    const body = g.ops
      .map((i) => (ops[i] as Extract<HostOp, { kind: "nft" }>).script)
      .join("\n");
    const nft = argvToShell(
      inNetns(g.netns, ["nft", ...(g.checkOnly ? ["-c"] : []), "-f", "-"]),
    );
    return `${nft} 2>&1 ${heredoc(body)}`;
  }
  if (g.tool === "writeFile")
    return writeFileCommand(
      ops[g.ops[0]] as Extract<HostOp, { kind: "writeFile" }>,
    );
  const op = ops[g.ops[0]] as Extract<HostOp, { kind: "sh" }>;
  return `( set -e\n${op.commands.map((c) => argvToShell(inNetns(op.netns, c))).join("\n")}\n) 2>&1 </dev/null`;
}

/**
 * Checked here too (ops are built by code, but the path reaches a shell). A refused op fails on
 * the host with the reason instead of throwing here, which would strand the whole flush.
 */
function writeFileCommand(op: Extract<HostOp, { kind: "writeFile" }>): string {
  const problem = writeFileProblem(op);
  if (problem)
    return `( echo ${shellQuote(`hostnet refused to write ${JSON.stringify(op.path)}: ${problem}`)}; exit 1 )`;
  const tmp = `${op.path}.hostnet-tmp`;
  const dir = op.path.slice(0, op.path.lastIndexOf("/")) || "/";
  return [
    "( set -e",
    "umask 077",
    argvToShell(["mkdir", "-p", "--", dir]),
    `cat > ${shellQuote(tmp)} ${heredoc(op.content.slice(0, -1))}`,
    argvToShell(["chmod", op.mode, "--", tmp]),
    argvToShell(["mv", "-f", "--", tmp, op.path]),
    ") 2>&1 </dev/null",
  ].join("\n");
}

function writeFileProblem(
  op: Extract<HostOp, { kind: "writeFile" }>,
): string | undefined {
  const path = filePathProblem(op.path);
  if (path) return `the path ${path}`;
  if (!/^[0-7]{3,4}$/.test(op.mode))
    return `mode ${JSON.stringify(op.mode)} must be octal like 0644`;
  if (typeof op.content !== "string" || !op.content.endsWith("\n"))
    return "the content must be text ending with a newline";
  if (op.content.includes("\0")) return "the content contains a NUL byte";
  return undefined;
}

export type OpOutcome =
  | { status: "ok"; output: string }
  | { status: "failed"; output: string }
  | { status: "retry"; isolate: boolean };

/** Split the flush output into groups and decide each op's fate. */
export function attributeResults(plan: FlushPlan, stdout: string): OpOutcome[] {
  const outcomes: OpOutcome[] = [];
  const sections = parseSections(stdout);
  plan.groups.forEach((g, gi) => {
    const sec = sections.get(gi);
    if (!sec) {
      // The script died before this group ran: nothing of it was applied.
      for (const i of g.ops) outcomes[i] = { status: "retry", isolate: false };
      return;
    }
    if (sec.rc === 0) {
      for (const i of g.ops) outcomes[i] = { status: "ok", output: sec.output };
      return;
    }
    if (g.ops.length === 1) {
      outcomes[g.ops[0]] = { status: "failed", output: sec.output };
      return;
    }
    const failedLine = /Command failed -:(\d+)/.exec(sec.output);
    if (!g.ranges || !failedLine) {
      // A merged nft transaction is atomic (nothing applied), and an unattributed batch failure
      // gets each op retried alone so exactly the guilty one fails.
      for (const i of g.ops) outcomes[i] = { status: "retry", isolate: true };
      return;
    }
    const line = Number(failedLine[1]);
    const message = sec.output.replace(/^Command failed -:\d+\s*$/m, "").trim();
    g.ops.forEach((i, k) => {
      const [first, last] = g.ranges![k];
      if (last < line) outcomes[i] = { status: "ok", output: "" };
      else if (first <= line)
        outcomes[i] = { status: "failed", output: message };
      else outcomes[i] = { status: "retry", isolate: false }; // batch stopped before it
    });
  });
  return outcomes;
}

function parseSections(
  stdout: string,
): Map<number, { rc: number; output: string }> {
  const out = new Map<number, { rc: number; output: string }>();
  let current: number | undefined;
  let buf: string[] = [];
  for (const line of stdout.split("\n")) {
    const g = /^@@hn group (\d+)$/.exec(line);
    const r = /^@@hn rc (\d+) (\d+)$/.exec(line);
    if (g) {
      current = Number(g[1]);
      buf = [];
    } else if (r && current === Number(r[1])) {
      out.set(current, { rc: Number(r[2]), output: buf.join("\n") });
      current = undefined;
    } else if (current !== undefined) {
      buf.push(line);
    }
  }
  return out;
}
