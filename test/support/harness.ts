// Shared machinery for resource lifecycle tests on lab hosts: a stack whose inline program reads a
// mutable config (so one test can up, change, preview and destroy), the engine's own account of
// each step (op and changed properties per resource), and an independent view of a host's state
// through a separate OpenSSH session for before/after comparisons.
import type {
  EngineEvent,
  Stack,
  StepEventMetadata,
} from "@pulumi/pulumi/automation";
import * as fs from "fs";
import * as path from "path";
import {
  ENGINE_PARALLEL,
  inlineStack,
  PROJECT_NAME,
  STATE_DIR,
} from "../../scripts/engine";
import { changedProperties } from "../../scripts/stacks";
import { LabHost, sshRun } from "./lab";

export interface StepReport {
  /** URN name → op ("create" | "update" | "replace" | "same" | "delete" | "refresh" ...). */
  ops: Record<string, string>;
  /** URN name → property keys the engine says changed. */
  diffs: Record<string, string[]>;
  stdout: string;
}

function nameOf(urn: string): string {
  return urn.split("::").pop() ?? urn;
}

function collector() {
  const report: StepReport = { ops: {}, diffs: {}, stdout: "" };
  const onEvent = (e: EngineEvent) => {
    const md = e.resourcePreEvent?.metadata;
    if (!md || md.type === "pulumi:pulumi:Stack") return;
    const n = nameOf(md.urn);
    // A replace is reported as several steps (delete-replaced, create-replacement, replace);
    // keep the most telling one.
    if (report.ops[n] !== "replace")
      report.ops[n] =
        md.op === "create-replacement" || md.op === "delete-replaced"
          ? "replace"
          : md.op;
    const diffs = md.diffs?.length
      ? md.diffs
      : md.op === "same"
        ? []
        : changedProperties(md.old?.outputs, md.new?.inputs);
    if (diffs.length)
      report.diffs[n] = [...new Set([...(report.diffs[n] ?? []), ...diffs])];
  };
  const onOutput = (s: string) => (report.stdout += s);
  return { report, onEvent, onOutput };
}

/** A test stack whose program is `program(config)`; change `config` between steps. */
/** A listener, though nothing is reported: the summary then comes from the events, not one more CLI run (scripts/engine.ts). */
const DESTROY_OPTS = {
  color: "never" as const,
  parallel: ENGINE_PARALLEL,
  onEvent: () => undefined,
};

export class TestStack<C> {
  config: C;
  private stack?: Stack;
  constructor(
    readonly name: string,
    initial: C,
    private readonly program: (
      config: C,
    ) => Promise<Record<string, unknown> | void>,
  ) {
    this.config = initial;
  }

  private async get(): Promise<Stack> {
    if (!this.stack) {
      this.stack = await inlineStack(
        this.name,
        async () => this.program(this.config) as Promise<Record<string, any>>,
      );
    }
    return this.stack;
  }

  /** refresh: read the live state first (`up --refresh`), so drift is repaired. */
  async up(
    opts: { refresh?: boolean } = {},
  ): Promise<StepReport & { outputs: Record<string, unknown> }> {
    const c = collector();
    const res = await (
      await this.get()
    ).up({
      onEvent: c.onEvent,
      onOutput: c.onOutput,
      color: "never",
      parallel: ENGINE_PARALLEL,
      refresh: opts.refresh,
    });
    const outputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(res.outputs)) outputs[k] = v.value;
    return { ...c.report, outputs };
  }

  async preview(
    opts: { refresh?: boolean; expectNoChanges?: boolean } = {},
  ): Promise<StepReport> {
    const c = collector();
    await (
      await this.get()
    ).preview({
      onEvent: c.onEvent,
      onOutput: c.onOutput,
      color: "never",
      parallel: ENGINE_PARALLEL,
      refresh: opts.refresh,
      expectNoChanges: opts.expectNoChanges,
      diff: true,
    });
    return c.report;
  }

  async refresh(): Promise<StepReport> {
    const c = collector();
    await (
      await this.get()
    ).refresh({
      onEvent: c.onEvent,
      onOutput: c.onOutput,
      color: "never",
      parallel: ENGINE_PARALLEL,
    });
    return c.report;
  }

  async destroy(): Promise<void> {
    await (await this.get()).destroy(DESTROY_OPTS);
  }

  /**
   * Destroy (ignoring errors) what an interrupted earlier run left in this stack's state: for
   * before() hooks. No engine run when the state lists no resource (a fresh clone).
   */
  async clearLeftovers(): Promise<void> {
    if (mayHoldResources(this.name))
      await this.destroy().catch(() => undefined);
  }

  /**
   * Destroy (ignoring errors) and remove the stack: for after() hooks. The destroy, an engine run
   * of its own, is skipped when the state holds no resource (a stack only previewed, or already
   * destroyed by the test).
   */
  async dispose(): Promise<void> {
    if (!this.stack) return;
    if (mayHoldResources(this.name))
      await this.stack.destroy(DESTROY_OPTS).catch(() => undefined);
    await this.stack.workspace.removeStack(this.name).catch(() => undefined);
  }

  /** Remove the stack, which must hold no resources (after a successful destroy). */
  async remove(): Promise<void> {
    await (await this.get()).workspace.removeStack(this.name);
  }

  async exportState(): Promise<string> {
    return JSON.stringify(await (await this.get()).exportStack());
  }
}

/**
 * Whether the engine's backend may hold a stack whose name `match`es. For the project's file backend
 * (the default) that is whether such a stack's checkpoint file exists, so a before() hook that
 * clears what an interrupted earlier run left can skip its engine runs (seconds each) on a fresh
 * clone. For any other backend (PULUMI_BACKEND_URL) it cannot tell without the engine: true.
 */
export function stackMayExist(match: (stack: string) => boolean): boolean {
  const dir = fileBackendStacks();
  if (dir === undefined) return true;
  if (!fs.existsSync(dir)) return false;
  return fs.readdirSync(dir).some((f) => {
    const m = /^(.+)\.json(\.gz)?$/.exec(f);
    return m !== null && match(m[1]);
  });
}

/** The project's stack directory in the default file backend; undefined on any other backend. */
function fileBackendStacks(): string | undefined {
  const url = process.env.PULUMI_BACKEND_URL;
  if (url && url !== `file://${STATE_DIR}`) return undefined;
  return path.join(STATE_DIR, ".pulumi", "stacks", PROJECT_NAME);
}

/** Whether stack `name`'s state may list resources: false only when its plain checkpoint lists none. */
function mayHoldResources(name: string): boolean {
  const dir = fileBackendStacks();
  if (dir === undefined) return true;
  const file = path.join(dir, `${name}.json`);
  if (!fs.existsSync(file)) return fs.existsSync(`${file}.gz`);
  try {
    const cp = JSON.parse(fs.readFileSync(file, "utf8"));
    return (cp.checkpoint?.latest?.resources ?? []).length > 0;
  } catch {
    return true;
  }
}

/**
 * Previews `stack` and lists its steps other than same and in-place update (create, delete,
 * replace...), one line each: the op, the resource's name, and what `detail` adds (if anything).
 */
export async function previewNonUpdates(
  stack: Stack,
  detail?: (md: StepEventMetadata) => string,
): Promise<string[]> {
  const seen: string[] = [];
  await stack.preview({
    color: "never",
    onEvent: (e) => {
      const md = e.resourcePreEvent?.metadata;
      if (md && md.op !== "same" && md.op !== "update")
        seen.push(
          [
            md.op,
            md.urn.split("::").pop(),
            ...(detail ? [detail(md)] : []),
          ].join(" "),
        );
    },
  });
  return seen;
}

/** The error text (message, engine stdout and stderr) of an engine run that must fail. */
export async function failureOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    const e = err as {
      message?: string;
      commandResult?: { stdout?: string; stderr?: string };
    };
    return [e.message, e.commandResult?.stdout, e.commandResult?.stderr].join(
      "\n",
    );
  }
  throw new Error("expected the engine run to fail, but it succeeded");
}

/** The bridge port flags worth comparing (timers and STP bookkeeping change on their own). */
function portFlagsOf(d: any): Record<string, unknown> | null {
  if (!d) return null;
  const keys = [
    "learning",
    "flood",
    "mcast_flood",
    "bcast_flood",
    "neigh_suppress",
    "isolated",
    "hairpin",
  ];
  return Object.fromEntries(keys.filter((k) => k in d).map((k) => [k, d[k]]));
}

/**
 * What a host looks like, read over a separate OpenSSH session: namespaces, and per namespace the
 * links (name, kind, master, mtu, mac, admin state, alias, port flags), static fdb entries and nft
 * tables. Used to assert "destroy leaves nothing" and "bad input changes nothing".
 */
export function independentSnapshot(h: LabHost): Record<string, unknown> {
  const script = [
    'for ns in "" $(ip netns list | cut -d" " -f1); do',
    '  if [ -z "$ns" ]; then X=""; else X="ip netns exec $ns"; fi',
    '  echo "@@ns $ns"; $X ip -j -d link show',
    '  echo "@@fdb"; $X bridge -j fdb show 2>/dev/null || echo "[]"',
    '  echo "@@nft"; $X nft list tables 2>/dev/null | sort',
    "done",
  ].join("\n");
  const out = sshRun(h, `sh -c '${script.replace(/'/g, "'\\''")}'`);
  const result: Record<string, unknown> = {};
  for (const chunk of out.split("@@ns ").slice(1)) {
    const [head, rest] = [
      chunk.slice(0, chunk.indexOf("\n")),
      chunk.slice(chunk.indexOf("\n") + 1),
    ];
    const [links, afterLinks] = rest.split("@@fdb\n");
    const [fdb, nft] = afterLinks.split("@@nft\n");
    result[head || "(root)"] = {
      links: (JSON.parse(links || "[]") as any[])
        .map((l) => ({
          name: l.ifname,
          kind: l.linkinfo?.info_kind ?? "",
          master: l.master ?? "",
          mtu: l.mtu,
          mac: l.address,
          up: (l.flags ?? []).includes("UP"),
          alias: l.ifalias ?? "",
          port: portFlagsOf(l.linkinfo?.info_slave_data),
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      fdb: (JSON.parse(fdb || "[]") as any[])
        .filter(
          (e) =>
            (e.state === "static" || e.state === "permanent") &&
            !(e.flags ?? []).includes("self"),
        )
        .map((e) => `${e.mac} ${e.ifname ?? ""} ${e.master ?? ""} ${e.state}`)
        .sort(),
      nft: nft.trim().split("\n").filter(Boolean),
    };
  }
  return result;
}

/** independentSnapshot of these namespaces only, without bridge port timers (they tick by themselves). */
export function namespacesSnapshot(
  h: LabHost,
  names: readonly string[],
): Record<string, unknown> {
  const mine = Object.fromEntries(
    Object.entries(independentSnapshot(h)).filter(([k]) => names.includes(k)),
  );
  return JSON.parse(
    JSON.stringify(mine, (k, v) => (k.endsWith("_timer") ? undefined : v)),
  );
}

// ---------------------------------------------------------------------------------------
// The full snapshot: everything hostnet can leave behind on a host (issue 12, class 4)
// ---------------------------------------------------------------------------------------

/** Carrier follows the peer and the wire, not anything hostnet set; the rest of the flags count. */
const CARRIER_FLAGS = new Set(["LOWER_UP", "NO-CARRIER", "M-DOWN"]);

function fullLink(l: any): Record<string, unknown> {
  return {
    name: l.ifname,
    kind: l.linkinfo?.info_kind ?? "",
    master: l.master ?? "",
    mtu: l.mtu,
    mac: l.address,
    flags: (l.flags ?? []).filter((f: string) => !CARRIER_FLAGS.has(f)),
    promiscuity: l.promiscuity,
    alias: l.ifalias ?? "",
    port: portFlagsOf(l.linkinfo?.info_slave_data),
    addresses: (l.addr_info ?? [])
      .map((a: any) => `${a.local}/${a.prefixlen}`)
      .sort(),
  };
}

const routeLine = (r: any): string =>
  [
    r.type ?? "unicast",
    r.dst,
    r.gateway ? `via ${r.gateway}` : "",
    `dev ${r.dev ?? "-"}`,
    `table ${r.table ?? "main"}`,
    r.protocol ?? "",
    r.scope ?? "",
    r.prefsrc ? `src ${r.prefsrc}` : "",
  ]
    .filter(Boolean)
    .join(" ");

/** One namespace's sections, in the order the script prints them. */
const NS_SECTIONS = [
  "links",
  "fdb",
  "nft",
  "routes",
  "routes6",
  "neigh",
  "sysctl",
] as const;

/**
 * Everything hostnet can leave behind on `h`, read over a separate OpenSSH session: per namespace
 * the links (kind, master, mtu, mac, flags, promiscuity, alias, port flags, addresses), static fdb
 * entries, the whole nft ruleset (counters masked), routes of every table (IPv4 and IPv6),
 * permanent neighbours and every net.* sysctl; and for the host ("@host", which no namespace can be
 * called) the files under /run/hostnet, /var/lib/hostnet and /etc/systemd/system/hostnet* with a
 * checksum of their content, and the commit-confirm processes (safe-apply) living in the host's
 * mount namespace (the host lock's own two files are left out). Compare two with
 * `snapshotDiff`; `independentSnapshot` above is the older, narrower view.
 */
export function fullSnapshot(h: LabHost): Record<string, any> {
  const script = [
    'for ns in "" $(ip netns list | cut -d" " -f1); do',
    '  if [ -z "$ns" ]; then X=""; else X="ip netns exec $ns"; fi',
    '  echo "@@ns $ns"; $X ip -j -d addr show',
    '  echo "@@fdb"; $X bridge -j fdb show 2>/dev/null || echo "[]"',
    "  echo \"@@nft\"; $X nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/; s/ expires [0-9hms.]+//'",
    '  echo "@@routes"; $X ip -j route show table all 2>/dev/null || echo "[]"',
    '  echo "@@routes6"; $X ip -j -6 route show table all 2>/dev/null || echo "[]"',
    '  echo "@@neigh"; $X ip -j neigh show nud permanent 2>/dev/null || echo "[]"',
    "  echo \"@@sysctl\"; $X sysctl -a 2>/dev/null | grep '^net\\.' | grep -v 'nf_conntrack_count'",
    "done",
    'echo "@@host"',
    "find /run/hostnet /var/lib/hostnet /etc/systemd/system -maxdepth 4 \\( -path '/etc/systemd/system/*' -a ! -name 'hostnet*' \\) -prune -o -type f -print 2>/dev/null | sort | while read -r f; do echo \"file $f $(md5sum < \"$f\" | cut -c1-12)\"; done",
    // The pattern is split so that this script's own command line does not match it.
    'me=$(readlink /proc/self/ns/mnt); pat="safe""-apply"',
    'for p in /proc/[0-9]*; do [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$me" ] || continue; a=$(tr "\\0" " " < $p/cmdline 2>/dev/null); case "$a" in *"$pat"*) echo "proc $a";; esac; done',
  ].join("\n");
  const out = sshRun(h, `sh -c '${script.replace(/'/g, "'\\''")}'`);
  const [nsPart, hostPart] = out.split("@@host\n");
  const result: Record<string, any> = {};
  for (const chunk of nsPart.split("@@ns ").slice(1)) {
    const name = chunk.slice(0, chunk.indexOf("\n")) || "(root)";
    const parts: Record<string, string> = {};
    let rest = chunk.slice(chunk.indexOf("\n") + 1);
    NS_SECTIONS.forEach((section, i) => {
      const next = NS_SECTIONS[i + 1];
      const cut =
        next === undefined ? rest.length : rest.indexOf(`@@${next}\n`);
      parts[section] = rest.slice(0, cut);
      rest = next === undefined ? "" : rest.slice(cut + next.length + 3);
    });
    const json = (s: string): any[] => JSON.parse(s.trim() || "[]");
    result[name] = {
      links: json(parts.links)
        .map(fullLink)
        .sort((a, b) => String(a.name).localeCompare(String(b.name))),
      fdb: json(parts.fdb)
        .filter(
          (e) =>
            (e.state === "static" || e.state === "permanent") &&
            !(e.flags ?? []).includes("self"),
        )
        .map(
          (e) =>
            `${e.mac} ${e.ifname ?? ""} ${e.master ?? ""} ${e.vlan ?? ""} ${e.state}`,
        )
        .sort(),
      nft: parts.nft.split("\n").filter((l) => l.trim() !== ""),
      routes: [...json(parts.routes), ...json(parts.routes6)]
        .map(routeLine)
        .sort(),
      neigh: json(parts.neigh)
        .map(
          (n) =>
            `${n.dst} dev ${n.dev} ${n.lladdr ?? ""} ${(n.state ?? []).join(",")}`,
        )
        .sort(),
      sysctl: parts.sysctl.split("\n").filter(Boolean).sort(),
    };
  }
  const hostLines = (hostPart ?? "").split("\n").filter(Boolean);
  result["@host"] = {
    // The host lock (/run/hostnet/lock, lock.owner) stays on purpose once hostnet has written to the
    // host (it names its last holder): it is not an object hostnet leaves behind, so it is not listed.
    files: hostLines
      .filter(
        (l) =>
          l.startsWith("file ") &&
          !/^file \/run\/hostnet\/lock(\.owner)? /.test(l),
      )
      .map((l) => l.slice(5)),
    processes: hostLines
      .filter((l) => l.startsWith("proc "))
      .map((l) => l.slice(5).trim())
      .sort(),
  };
  return result;
}

/**
 * The differences between two snapshots as readable lines ("ns/section: + item" / "- item"), empty
 * when they are equal. Lists compare as sets of their JSON items, so a message names the very
 * link, route or sysctl that changed. `only` restricts it to some top-level keys (namespaces).
 */
export function snapshotDiff(
  before: Record<string, any>,
  after: Record<string, any>,
  only?: (key: string) => boolean,
): string[] {
  const out: string[] = [];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => !only || only(k))
    .sort();
  for (const key of keys) {
    if (!(key in before)) out.push(`${key}: + the whole namespace`);
    else if (!(key in after)) out.push(`${key}: - the whole namespace`);
    else {
      for (const section of Object.keys({ ...before[key], ...after[key] })) {
        const [b, a] = [
          before[key][section] ?? [],
          after[key][section] ?? [],
        ].map((xs: unknown[]) =>
          xs.map((x) => (typeof x === "string" ? x : JSON.stringify(x))),
        );
        for (const x of a)
          if (!b.includes(x)) out.push(`${key}/${section}: + ${x}`);
        for (const x of b)
          if (!a.includes(x)) out.push(`${key}/${section}: - ${x}`);
      }
    }
  }
  return out;
}

/** An independent snapshot's entries for just these namespaces, and its root namespace apart. */
export function namespacesOf(
  h: LabHost,
  namespaces: readonly string[],
): {
  own: Record<string, unknown>;
  root: { links: Array<{ name: string }>; fdb: string[]; nft: string[] };
} {
  const snap = independentSnapshot(h) as Record<string, any>;
  const own: Record<string, unknown> = {};
  for (const [ns, state] of Object.entries(snap))
    if (namespaces.includes(ns)) own[ns] = state;
  return { own, root: snap["(root)"] };
}
