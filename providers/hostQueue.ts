// Coalescing: operations that many resources issue concurrently against one host are merged into
// one round trip, one `ip -batch` / `bridge -batch` / `nft -f` per (namespace, tool), and every
// result is attributed back to the operation that caused it. Pure planning (buildFlushScript,
// attributeResults) is separate from the I/O (HostQueue) so it can be unit-tested.
import { Argv, argvToShell, heredoc, shellQuote } from "./shell";

export type HostOp =
  | { kind: "batch"; tool: "ip" | "bridge"; netns?: string; lines: string[]; what: string }
  /** checkOnly: `nft -c -f -` (validate against the live kernel, change nothing). */
  | { kind: "nft"; netns?: string; script: string; what: string; checkOnly?: boolean }
  | { kind: "sh"; netns?: string; commands: Argv[]; what: string };

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
  tool: "ip" | "bridge" | "nft" | "sh";
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
      return op.commands.map((c) => argvToShell(inNetns(op.netns, c))).join(" && ");
  }
}

/**
 * Group ops by (tool, namespace) keeping first-seen order. `isolate` lists ops that must run
 * alone (a previous merged attempt failed in a way that could not be attributed).
 */
export function buildFlushScript(ops: HostOp[], isolate: Set<number> = new Set()): FlushPlan {
  const groups: FlushGroup[] = [];
  const byKey = new Map<string, FlushGroup>();
  ops.forEach((op, i) => {
    const tool = op.kind === "batch" ? op.tool : op.kind;
    const mergeable = tool !== "sh" && !isolate.has(i);
    const checkOnly = op.kind === "nft" && op.checkOnly === true;
    const key = `${tool}${checkOnly ? " -c" : ""}\u0000${op.netns ?? ""}`;
    let g = mergeable ? byKey.get(key) : undefined;
    if (!g) {
      g = { ops: [], tool, netns: op.netns, ...(checkOnly ? { checkOnly } : {}) };
      groups.push(g);
      if (mergeable) byKey.set(key, g);
    }
    g.ops.push(i);
  });
  const parts = ["set +e"];
  groups.forEach((g, gi) => {
    parts.push(`echo '${MARK} group ${gi}'`);
    parts.push(groupCommand(g, ops));
    parts.push(`echo "${MARK} rc ${gi} $?"`);
  });
  parts.push(`echo '${MARK} end'`);
  return { script: parts.join("\n") + "\n", groups };
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
    const body = g.ops.map((i) => (ops[i] as Extract<HostOp, { kind: "nft" }>).script).join("\n");
    const nft = argvToShell(inNetns(g.netns, ["nft", ...(g.checkOnly ? ["-c"] : []), "-f", "-"]));
    return `${nft} 2>&1 ${heredoc(body)}`;
  }
  const op = ops[g.ops[0]] as Extract<HostOp, { kind: "sh" }>;
  return `( set -e\n${op.commands.map((c) => argvToShell(inNetns(op.netns, c))).join("\n")}\n) 2>&1 </dev/null`;
}

export type OpOutcome = { status: "ok"; output: string } | { status: "failed"; output: string } | { status: "retry"; isolate: boolean };

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
      else if (first <= line) outcomes[i] = { status: "failed", output: message };
      else outcomes[i] = { status: "retry", isolate: false }; // batch stopped before it
    });
  });
  return outcomes;
}

function parseSections(stdout: string): Map<number, { rc: number; output: string }> {
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
