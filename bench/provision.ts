// Provisioning benchmark: one lab host (lab3), N VMs in the isolated-netns + managed-fdb topology
// (per VM: namespace, inner bridge, tap, veth to the host bridge with learning/flood off, static
// fdb entry, FilterChain), measured three ways in one run:
//   hostnet      deployFleet in stack bench-prov-<N>: up from empty, no-op up, preview --refresh, destroy
//   lower bound  bench/lowerbound.sh: the same end state from one generated script over one ssh session
//   engine floor the same number of no-op dynamic resources (same dependency shape) in bench-floor-<N>
// SSH round trips and connections are counted from the provider's HOSTNET_TRACE_FILE (one line per
// exec), peak memory and CPU of the engine and provider processes are sampled from /proc.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { OpMap, Stack } from "@pulumi/pulumi/automation";
import { inlineStack, LAB_PASSPHRASE, PROJECT_ROOT } from "../scripts/engine";
import { deployFleet } from "../stacks/index";
import { parseStackConfig, StackConfig } from "../stacks/config";
import { FilterChainProps, ownedScript } from "../providers/kinds/filterChain";
import {
  isHostnetMark,
  parseSnapshot,
  snapshotScript,
} from "../providers/state";
import { inventory, LabHost, labUp, sshArgs } from "../test/support/lab";

export const LAB_HOST = "lab3";
export const HOST_BRIDGE = "br-bp";
const VM_PREFIX = "bp";
const WORK_DIR = path.join(PROJECT_ROOT, ".hostnet", "bench");
const LOWERBOUND_SH = path.join(PROJECT_ROOT, "bench", "lowerbound.sh");

// ---------------------------------------------------------------------------------------
// The topology
// ---------------------------------------------------------------------------------------

export interface BenchVm {
  name: string;
  mac: string;
  ipv4: string;
}

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

export function benchVms(n: number): BenchVm[] {
  return Array.from({ length: n }, (_, i) => {
    const k = i + 1;
    return {
      name: `${VM_PREFIX}${String(k).padStart(3, "0")}`,
      mac: `02:00:00:b0:${hex2(k >> 8)}:${hex2(k & 255)}`,
      ipv4: `198.19.${100 + Math.floor(k / 200)}.${(k % 200) + 1}`,
    };
  });
}

export function hostnetConfig(n: number, h: LabHost): StackConfig {
  return parseStackConfig({
    hosts: [
      { name: LAB_HOST, address: h.address, port: h.port, hostKey: h.hostKey },
    ],
    bridges: [{ name: HOST_BRIDGE }],
    vms: benchVms(n).map((v) => ({
      name: v.name,
      host: LAB_HOST,
      mac: v.mac,
      ipv4: [`${v.ipv4}/16`],
      attachment: "isolated-netns",
      bridge: HOST_BRIDGE,
      managedFdb: true,
      simulate: false,
    })),
    rollout: { serial: [1], maxFailures: 0, healthCheck: false },
  });
}

// The floor: trivial dynamic resources in the same tree and dependency shape as the hostnet
// stack, so what is left is the engine's own per-resource cost. One provider object for all of
// them, as a user would write it (the SDK serializes a given provider object once).
const noopProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: any) {
    return { id: String(inputs.name), outs: inputs };
  },
  async read(id: string, props: any) {
    return { id, props };
  },
  async diff() {
    return { changes: false };
  },
  async delete() {
    return;
  },
};

class Noop extends pulumi.dynamic.Resource {
  constructor(name: string, opts?: pulumi.CustomResourceOptions) {
    super(noopProvider, name, { name }, opts, "bench", "Noop");
  }
}

export function floorProgram(
  n: number,
): () => Promise<Record<string, unknown>> {
  return async () => {
    const host = new pulumi.ComponentResource("bench:floor:Host", LAB_HOST);
    const br = new Noop(`${LAB_HOST}-${HOST_BRIDGE}`, { parent: host });
    for (const vm of benchVms(n)) {
      const name = `${LAB_HOST}-${vm.name}`;
      const c = new pulumi.ComponentResource(
        "bench:floor:Vm",
        name,
        {},
        { parent: host, dependsOn: [br] },
      );
      const ns = new Noop(`${name}-ns`, { parent: c });
      const inner = new Noop(`${name}-br`, { parent: c, dependsOn: [ns] });
      const uplink = new Noop(`${name}-uplink`, {
        parent: c,
        dependsOn: [inner],
      });
      new Noop(`${name}-tap`, { parent: c, dependsOn: [inner] });
      new Noop(`${name}-filter`, { parent: c, dependsOn: [ns] });
      new Noop(`${name}-fdb`, { parent: c, dependsOn: [uplink] });
    }
    return {};
  };
}

// ---------------------------------------------------------------------------------------
// Measuring one engine operation
// ---------------------------------------------------------------------------------------

export type ProcRole = "engine" | "provider";

export interface RoleStats {
  /** Largest VmHWM (the kernel's peak RSS) of any process in the role, MiB. */
  peakRssMb: number;
  /** user+system CPU seconds over the role's processes (last sample before each exited). */
  cpuS: number;
  processes: number;
}

export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** Fields of /proc/<pid>/stat after the comm, which may itself hold spaces and parentheses. */
export function statFields(pid: number | string): string[] | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(")") + 2).split(" ") : undefined;
}

/** Children of every thread of `pid` (Go starts child processes from any of its threads). */
function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((t) =>
    (readText(`/proc/${pid}/task/${t}/children`) ?? "")
      .split(" ")
      .filter((x) => x !== "")
      .map(Number),
  );
}

/** Walks the children lists rather than all of /proc, so a poll costs a few reads, not hundreds. */
export function descendantsOf(root: number): number[] {
  const out: number[] = [];
  const todo = childrenOf(root);
  while (todo.length > 0) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...childrenOf(pid));
  }
  return out;
}

function roleOf(argv: string[]): ProcRole | undefined {
  if (argv.some((a) => a.includes("dynamic-provider"))) return "provider";
  if (path.basename(argv[0] ?? "") === "pulumi") return "engine";
  return undefined;
}

/**
 * Polls /proc every 200 ms for descendants of this process: the `pulumi` engine the Automation
 * API starts and the dynamic-provider node process the engine starts. VmHWM is a high-water
 * mark, so a poll only has to see a process once near its end, not at its peak.
 */
export class ProcSampler {
  private seen = new Map<
    number,
    { role: ProcRole; hwmKb: number; ticks: number }
  >();
  private roles = new Map<number, ProcRole | null>();
  private timer?: NodeJS.Timeout;

  start(): this {
    this.timer = setInterval(() => this.sample(), 200);
    return this;
  }

  stop(): Record<ProcRole, RoleStats> {
    clearInterval(this.timer);
    this.sample();
    const out: Record<ProcRole, RoleStats> = {
      engine: { peakRssMb: 0, cpuS: 0, processes: 0 },
      provider: { peakRssMb: 0, cpuS: 0, processes: 0 },
    };
    for (const s of this.seen.values()) {
      const r = out[s.role];
      r.peakRssMb = Math.max(r.peakRssMb, s.hwmKb / 1024);
      r.cpuS += s.ticks / 100; // USER_HZ
      r.processes++;
    }
    return out;
  }

  private sample(): void {
    for (const pid of descendantsOf(process.pid)) {
      let role = this.roles.get(pid);
      if (role === undefined) {
        const cmd = readText(`/proc/${pid}/cmdline`);
        if (cmd === undefined) continue;
        role = roleOf(cmd.split("\0")) ?? null;
        // Between fork and exec a child still shows node's command line: look again next time.
        if (role !== null || !cmd.includes("node")) this.roles.set(pid, role);
      }
      if (role === null) continue;
      const hwm = Number(
        /^VmHWM:\s+(\d+)/m.exec(readText(`/proc/${pid}/status`) ?? "")?.[1] ??
          0,
      );
      const f = statFields(pid);
      if (!f || hwm === 0) continue;
      const ticks = Number(f[11]) + Number(f[12]);
      const prev = this.seen.get(pid);
      this.seen.set(pid, {
        role,
        hwmKb: Math.max(hwm, prev?.hwmKb ?? 0),
        ticks: Math.max(ticks, prev?.ticks ?? 0),
      });
    }
  }
}

export interface TraceRow {
  t: number;
  pid: number;
  host: string;
  what: string;
  conn: number;
}

export interface SshStats {
  /** SSH execs (each is one round trip on an open connection). */
  roundTrips: number;
  /** SSH connections opened (per provider process and host). */
  connections: number;
  /** Round trips by purpose, digits folded ("apply N change(s)"). */
  byWhat: Record<string, number>;
  /** Kernel operations carried by the coalesced "apply N change(s)" round trips. */
  opsApplied: number;
  /** ms from the phase's start to its first and last round trip. */
  firstMs?: number;
  lastMs?: number;
}

export function readTrace(file: string): TraceRow[] {
  const text = readText(file) ?? "";
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as TraceRow);
}

export function sshStats(rows: TraceRow[], t0: number, t1: number): SshStats {
  const inPhase = rows.filter((r) => r.t >= t0 && r.t <= t1);
  const maxConn = new Map<string, number>();
  const byWhat: Record<string, number> = {};
  let opsApplied = 0;
  for (const r of inPhase) {
    const key = `${r.pid} ${r.host}`;
    maxConn.set(key, Math.max(maxConn.get(key) ?? 0, r.conn));
    const what = r.what.replace(/\d+/g, "N");
    byWhat[what] = (byWhat[what] ?? 0) + 1;
    opsApplied += Number(/^apply (\d+) change/.exec(r.what)?.[1] ?? 0);
  }
  const times = inPhase.map((r) => r.t);
  return {
    roundTrips: inPhase.length,
    connections: [...maxConn.values()].reduce((a, b) => a + b, 0),
    byWhat,
    opsApplied,
    ...(times.length > 0
      ? { firstMs: Math.min(...times) - t0, lastMs: Math.max(...times) - t0 }
      : {}),
  };
}

export type Phase = "up" | "noop-up" | "preview-refresh" | "destroy";
export const PHASES: Phase[] = ["up", "noop-up", "preview-refresh", "destroy"];

export interface PhaseResult {
  phase: Phase;
  wallS: number;
  /** The engine's summary of steps by op. */
  summary: OpMap;
  /** Steps that were not "same" (0 is required of the no-op up and the drift-free preview). */
  changed: number;
  ssh?: SshStats;
  engine: RoleStats;
  provider: RoleStats;
  /** CPU of this process: the Automation API, the language runtime and the inline program. */
  programCpuS: number;
}

function changedSteps(summary: OpMap | undefined): number {
  return Object.entries(summary ?? {})
    .filter(([op]) => op !== "same")
    .reduce((a, [, n]) => a + (n ?? 0), 0);
}

async function measure(
  phase: Phase,
  traceFile: string | undefined,
  op: () => Promise<OpMap | undefined>,
): Promise<PhaseResult> {
  const sampler = new ProcSampler().start();
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  let summary: OpMap | undefined;
  let procs: Record<ProcRole, RoleStats>;
  try {
    summary = await op();
  } finally {
    procs = sampler.stop();
  }
  const t1 = Date.now();
  const cpu = process.cpuUsage(cpu0);
  return {
    phase,
    wallS: (t1 - t0) / 1000,
    summary: summary ?? {},
    changed: changedSteps(summary),
    ...(traceFile ? { ssh: sshStats(readTrace(traceFile), t0, t1) } : {}),
    engine: procs.engine,
    provider: procs.provider,
    programCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

export interface EngineSettings {
  parallel: number;
  /** Extra engine environment (tuning switches), recorded with the results. */
  env: Record<string, string>;
}

interface Lifecycle {
  phases: PhaseResult[];
  resources: number;
  stateBytes: number;
}

/** up from empty, no-op up, preview --refresh, destroy; `afterUp` runs untimed between them. */
async function lifecycle(
  stack: Stack,
  s: EngineSettings,
  traceFile: string | undefined,
  afterUp: () => Promise<void>,
): Promise<Lifecycle> {
  const common = { parallel: s.parallel, color: "never" as const };
  const phases: PhaseResult[] = [];
  phases.push(
    await measure(
      "up",
      traceFile,
      async () => (await stack.up(common)).summary.resourceChanges,
    ),
  );
  const state = await stack.exportStack();
  const resources = (state.deployment?.resources ?? []).length;
  await afterUp();
  phases.push(
    await measure(
      "noop-up",
      traceFile,
      async () => (await stack.up(common)).summary.resourceChanges,
    ),
  );
  phases.push(
    await measure(
      "preview-refresh",
      traceFile,
      async () =>
        (await stack.preview({ ...common, refresh: true })).changeSummary,
    ),
  );
  phases.push(
    await measure(
      "destroy",
      traceFile,
      async () => (await stack.destroy(common)).summary.resourceChanges,
    ),
  );
  return { phases, resources, stateBytes: JSON.stringify(state).length };
}

// ---------------------------------------------------------------------------------------
// The lab host: cleanup, the lower bound, end-state comparison, a snapshot probe
// ---------------------------------------------------------------------------------------

/**
 * A script on the lab host over its own OpenSSH session (stdin of `sh -s`). Exit 255 is ssh's own
 * failure (on this shared machine: sshd too busy to finish the handshake): tried again, 3 times.
 */
function sshScript(
  h: LabHost,
  script: string,
  what: string,
): { out: string; seconds: number } {
  for (let attempt = 1; ; attempt++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync("ssh", [...sshArgs(h), "sh -s"], {
      input: script,
      encoding: "utf8",
      maxBuffer: 512 << 20,
    });
    if (r.status === 0)
      return {
        out: r.stdout,
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      };
    if (r.status !== 255 || attempt >= 3) {
      throw new Error(
        `${h.name} (${h.address}): could not ${what} (exit ${r.status}): ${(r.stderr || r.stdout || "").trim().slice(0, 1000)}`,
      );
    }
    spawnSync("sleep", [String(5 * attempt)]);
  }
}

/** Removes every object of this benchmark's prefix from lab3 (after an interrupted run). */
function cleanupLab(h: LabHost): void {
  sshScript(
    h,
    [
      `for ns in $(ip netns list | cut -d' ' -f1 | grep -E '^vm-${VM_PREFIX}[0-9]{3}$'); do`,
      '  ip link del "hv-${ns#vm-}" 2>/dev/null; ip netns del "$ns"; done',
      `for l in $(ip -o link show | grep -oE 'hv-${VM_PREFIX}[0-9]{3}' | sort -u); do ip link del "$l" 2>/dev/null; done`,
      `ip link del ${HOST_BRIDGE} 2>/dev/null; true`,
    ].join("\n") + "\n",
    `remove the benchmark's vm-${VM_PREFIX}*/hv-${VM_PREFIX}*/${HOST_BRIDGE} objects`,
  );
}

/** The compiled table of one VM with @MAC@/@IPV4@ placeholders, checked against every VM's own compile. */
export function nftTemplate(vms: BenchVm[]): string {
  const compile = (mac: string, ip: string) =>
    ownedScript(
      FilterChainProps.parse({
        netns: "vm-x",
        table: "hostnet",
        ports: [{ port: "tap0", policy: "clean-traffic", mac, ipv4: [ip] }],
      }),
    ).script;
  const sentinel = { mac: "02:00:00:ee:ee:ee", ip: "198.19.254.254" };
  const template = compile(sentinel.mac, sentinel.ip)
    .split(sentinel.mac)
    .join("@MAC@")
    .split(sentinel.ip)
    .join("@IPV4@");
  for (const vm of vms) {
    const fromTemplate = template
      .split("@MAC@")
      .join(vm.mac)
      .split("@IPV4@")
      .join(vm.ipv4);
    if (fromTemplate !== compile(vm.mac, vm.ipv4))
      throw new Error(
        `internal: the nft template does not reproduce ${vm.name}'s compiled table`,
      );
  }
  return template;
}

function lowerBoundStep(
  h: LabHost,
  step: "build" | "teardown",
  vmsFile: string,
  nftFile: string,
): number {
  const inv = inventory();
  const args = [
    LOWERBOUND_SH,
    step,
    "--vms",
    vmsFile,
    "--nft",
    nftFile,
    "--bridge",
    HOST_BRIDGE,
    "--host",
    h.address,
    "--port",
    String(h.port),
    "--key",
    inv.privateKeyPath,
    "--known-hosts",
    inv.knownHostsPath,
  ];
  const r = spawnSync("bash", args, { encoding: "utf8", maxBuffer: 64 << 20 });
  const ms = new RegExp(`^${step}_ms=(\\d+)$`, "m").exec(r.stdout ?? "");
  if (r.status !== 0 || !ms)
    throw new Error(
      `lower bound ${step} on ${h.name} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 2000)}`,
    );
  return Number(ms[1]) / 1000;
}

/**
 * Everything of ours on the host in comparable form (no MACs of veths/bridges, no ifindexes):
 * links with kind, master, admin state, alias, MTU, port flags and tap flags; static fdb entries
 * on the host bridge; each namespace's ruleset text and IPv6 switch.
 */
export function endState(h: LabHost): Record<string, unknown> {
  const script = [
    `echo "@@root"; ip -j -d link show; echo "@@fdb"; bridge -j fdb show br ${HOST_BRIDGE} 2>/dev/null || echo "[]"`,
    `for ns in $(ip netns list | cut -d' ' -f1 | grep -E '^vm-${VM_PREFIX}[0-9]{3}$' | sort); do`,
    `  echo "@@ns $ns"; ip netns exec "$ns" sh -c 'ip -j -d link show; echo "@@nft"; nft list ruleset; echo "@@v6"; cat /proc/sys/net/ipv6/conf/all/disable_ipv6'`,
    "done",
  ].join("\n");
  const { out } = sshScript(
    h,
    script + "\n",
    "read the end state of the benchmark's objects",
  );
  const [rootPart, ...nsParts] = out.split("\n@@ns ");
  const [rootLinks, fdb] = rootPart.replace(/^@@root\n/, "").split("@@fdb\n");
  const mine = (l: any) =>
    l.ifname === HOST_BRIDGE ||
    new RegExp(`^hv-${VM_PREFIX}\\d{3}$`).test(l.ifname);
  const state: Record<string, unknown> = {
    root: linkView(JSON.parse(rootLinks).filter(mine)),
    // "permanent" rows are the ports' own (random) addresses; static rows are the managed fdb.
    fdb: (JSON.parse(fdb || "[]") as any[])
      .filter((e) => e.state === "static")
      .map((e) => `${e.mac} ${e.ifname} ${e.state}`)
      .sort(),
  };
  for (const part of nsParts) {
    const ns = part.slice(0, part.indexOf("\n"));
    const [links, rest] = part.slice(ns.length + 1).split("@@nft\n");
    const [nft, v6] = rest.split("@@v6\n");
    state[ns] = {
      links: linkView(JSON.parse(links)),
      nft: nft
        .trim()
        .replace(/counter packets \d+ bytes \d+/g, "counter")
        // The table's comment carries the owner token like a link's alias does (see linkView).
        .replace(/comment "([^"]*)"/g, (all, mark: string) =>
          isHostnetMark(mark) ? 'comment "hostnet"' : all,
        ),
      disableIpv6: v6.trim(),
    };
  }
  return state;
}

const PORT_KEYS = [
  "state",
  "learning",
  "flood",
  "mcast_flood",
  "bcast_flood",
  "neigh_suppress",
  "isolated",
  "hairpin",
];
const TUN_KEYS = ["type", "pi", "vnet_hdr", "multi_queue", "persist"];

function pick(
  o: Record<string, unknown> | undefined,
  keys: string[],
): Record<string, unknown> | undefined {
  return o
    ? Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]))
    : undefined;
}

function linkView(links: any[]): unknown[] {
  return links
    .map((l) => ({
      name: l.ifname,
      kind: l.linkinfo?.info_kind ?? "",
      master: l.master ?? "",
      mtu: l.mtu,
      up: (l.flags ?? []).includes("UP"),
      // Which resource made an object (hostnet:<owner token>) is hostnet's bookkeeping; the lower
      // bound writes the plain mark. Both say "hostnet made this", which is what is compared.
      alias: isHostnetMark(l.ifalias) ? "hostnet" : (l.ifalias ?? ""),
      port: pick(l.linkinfo?.info_slave_data, PORT_KEYS),
      tun:
        l.linkinfo?.info_kind === "tun"
          ? pick(l.linkinfo?.info_data, TUN_KEYS)
          : undefined,
      stp:
        l.linkinfo?.info_kind === "bridge"
          ? l.linkinfo?.info_data?.stp_state
          : undefined,
    }))
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

/** First path at which two end states differ, or undefined when they are the same. */
export function firstDifference(
  a: unknown,
  b: unknown,
  at = "",
): string | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (a && b && typeof a === "object" && typeof b === "object") {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference((a as any)[k], (b as any)[k], `${at}/${k}`);
      if (d) return d;
    }
  }
  return `${at}: hostnet ${JSON.stringify(a)?.slice(0, 300)} vs lower bound ${JSON.stringify(b)?.slice(0, 300)}`;
}

export interface SnapshotProbe {
  /** One snapshot round trip (the one hostnet's refresh needs) over a fresh OpenSSH session, s. */
  roundTripS: number;
  outputBytes: number;
  namespaces: number;
  /** CPU time to parse it with hostnet's parser here (what the provider process pays per snapshot), s. */
  parseS: number;
}

function snapshotProbe(h: LabHost): SnapshotProbe {
  const { out, seconds } = sshScript(
    h,
    snapshotScript(),
    "read a hostnet snapshot",
  );
  const t0 = process.hrtime.bigint();
  const snap = parseSnapshot(out);
  const parseS = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    roundTripS: seconds,
    outputBytes: out.length,
    namespaces: Object.keys(snap.namespaces).length,
    parseS,
  };
}

// ---------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------

export interface RunResult {
  n: number;
  rep: number;
  settings: EngineSettings;
  hostnet: Lifecycle & { snapshot: SnapshotProbe };
  lowerBound: {
    buildS: number;
    teardownS: number;
    sameEndState: boolean;
    difference?: string;
  };
  floor: Lifecycle;
  loadavg: number[];
}

export interface Variant {
  label: string;
  settings: EngineSettings;
  sizes: number[];
}

export interface ProvisionOptions {
  sizes: number[];
  reps: (n: number) => number;
  settings: EngineSettings;
  /** Other engine settings, each run once per listed size for hostnet and the floor (no lower bound). */
  variants: Variant[];
  log: (line: string) => void;
  /** Called after every measurement with the report so far (a partial file survives a crash). */
  save?: (report: ProvisionReport) => void;
  /** A partial report of an interrupted run with the same settings: its measurements are kept, not repeated. */
  resume?: ProvisionReport;
}

export interface ProvisionReport {
  startedAt: string;
  finishedAt: string;
  machine: {
    cpus: number;
    loadavgStart: number[];
    loadavgEnd: number[];
    note: string;
  };
  host: string;
  settings: EngineSettings;
  runs: RunResult[];
  /** Measurements that failed once and were repeated. */
  failures: Array<{ at: string; message: string }>;
  /** The same lifecycles with other engine settings, for comparison. */
  variants: Array<{
    n: number;
    label: string;
    settings: EngineSettings;
    hostnet: Lifecycle;
    floor: Lifecycle;
  }>;
}

async function benchStack(
  name: string,
  program: () => Promise<Record<string, unknown>>,
  env: Record<string, string>,
): Promise<Stack> {
  const open = () =>
    inlineStack(name, program as any, {
      env: { PULUMI_CONFIG_PASSPHRASE: LAB_PASSPHRASE, ...env },
    });
  const stack = await open();
  // State left by an interrupted run: destroy it with the provider, so the host is cleaned too.
  // If that fails (the lab host was rebuilt under it), drop the state; cleanupLab removes the rest by name.
  const left = ((await stack.exportStack()).deployment?.resources ?? []).length;
  if (left === 0) return stack;
  const destroyed = await stack.destroy({ color: "never", parallel: 64 }).then(
    () => true,
    () => false,
  );
  if (destroyed) return stack;
  await stack.workspace.removeStack(name, { force: true });
  return open();
}

async function disposeStack(
  stack: Stack | undefined,
  name: string,
): Promise<void> {
  if (!stack) return;
  const left = await stack.exportStack().then(
    (s) => (s.deployment?.resources ?? []).length,
    () => 1,
  );
  if (left > 0)
    await stack
      .destroy({ color: "never", parallel: 64 })
      .catch(() => undefined);
  await stack.workspace.removeStack(name).catch(() => undefined);
}

export async function hostnetLifecycle(
  n: number,
  h: LabHost,
  s: EngineSettings,
  suffix: string,
  log: (l: string) => void,
): Promise<{
  life: Lifecycle;
  snapshot: SnapshotProbe;
  state: Record<string, unknown>;
}> {
  const name = `bench-prov-${n}${suffix}`;
  const trace = path.join(WORK_DIR, `trace-${n}${suffix}.jsonl`);
  fs.rmSync(trace, { force: true });
  const config = hostnetConfig(n, h);
  let stack: Stack | undefined;
  let snapshot: SnapshotProbe | undefined;
  let state: Record<string, unknown> = {};
  try {
    stack = await benchStack(
      name,
      // The key by reference, as the stack program passes it (never stored per resource).
      async () =>
        deployFleet(config, { privateKeyFile: inventory().privateKeyPath }),
      { ...s.env, HOSTNET_TRACE_FILE: trace },
    );
    const life = await lifecycle(stack, s, trace, async () => {
      state = endState(h);
      snapshot = snapshotProbe(h);
    });
    for (const p of life.phases)
      log(
        `  hostnet ${p.phase.padEnd(15)} ${p.wallS.toFixed(1).padStart(7)} s  ${p.ssh?.roundTrips ?? 0} round trips, changed ${p.changed}`,
      );
    return { life, snapshot: snapshot!, state };
  } finally {
    await disposeStack(stack, name);
  }
}

export async function floorLifecycle(
  n: number,
  s: EngineSettings,
  suffix: string,
  log: (l: string) => void,
): Promise<Lifecycle> {
  const name = `bench-floor-${n}${suffix}`;
  let stack: Stack | undefined;
  try {
    stack = await benchStack(name, floorProgram(n), s.env);
    const life = await lifecycle(stack, s, undefined, async () => undefined);
    for (const p of life.phases)
      log(
        `  floor   ${p.phase.padEnd(15)} ${p.wallS.toFixed(1).padStart(7)} s`,
      );
    return life;
  } finally {
    await disposeStack(stack, name);
  }
}

function lowerBound(
  n: number,
  h: LabHost,
  hostnetState: Record<string, unknown>,
  log: (l: string) => void,
): RunResult["lowerBound"] {
  const vms = benchVms(n);
  const vmsFile = path.join(WORK_DIR, `vms-${n}.txt`);
  const nftFile = path.join(WORK_DIR, "vm-table.nft");
  fs.writeFileSync(
    vmsFile,
    vms.map((v) => `${v.name} ${v.mac} ${v.ipv4}`).join("\n") + "\n",
  );
  fs.writeFileSync(nftFile, nftTemplate(vms));
  let built = false;
  try {
    const buildS = lowerBoundStep(h, "build", vmsFile, nftFile);
    built = true;
    const difference = firstDifference(hostnetState, endState(h));
    const teardownS = lowerBoundStep(h, "teardown", vmsFile, nftFile);
    built = false;
    log(
      `  lower bound build ${buildS.toFixed(1)} s, teardown ${teardownS.toFixed(1)} s, end state ${difference ? "DIFFERS" : "identical to hostnet's"}`,
    );
    return {
      buildS,
      teardownS,
      sameEndState: difference === undefined,
      ...(difference ? { difference } : {}),
    };
  } finally {
    if (built) cleanupLab(h);
  }
}

/** lab3 as the inventory has it now (another engineer may rebuild the lab, with new host keys). */
function labHost(): LabHost {
  const h = inventory().hosts.find((x) => x.name === LAB_HOST);
  if (!h)
    throw new Error(
      `the lab inventory has no ${LAB_HOST}; run 'npm run lab -- up 3'`,
    );
  return h;
}

/**
 * One measurement, tried a second time after a failure (on this shared machine, mostly an sshd
 * too busy to answer); the failure is kept in the report. A second failure ends the run.
 */
async function onceMore(
  report: ProvisionReport,
  log: (l: string) => void,
  measure: (h: LabHost) => Promise<void>,
): Promise<void> {
  try {
    await measure(labHost());
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    report.failures.push({ at: new Date().toISOString(), message });
    log(`  FAILED, trying once more in 30 s: ${message.split("\n")[0]}`);
    await new Promise((r) => setTimeout(r, 30_000));
    try {
      cleanupLab(labHost());
    } catch (again) {
      log(
        `  cleanup before the second try failed too (${(again as Error).message.split("\n")[0]}); trying anyway`,
      );
    }
    await measure(labHost());
  }
}

export async function runProvisioningBench(
  opts: ProvisionOptions,
): Promise<ProvisionReport> {
  fs.mkdirSync(WORK_DIR, { recursive: true });
  labUp(3);
  const h = labHost();
  const report: ProvisionReport = opts.resume ?? {
    startedAt: new Date().toISOString(),
    finishedAt: "",
    machine: {
      cpus: os.cpus().length,
      loadavgStart: os.loadavg(),
      loadavgEnd: [],
      note:
        // The bench cannot see what else runs on the machine; only the operator can say (the load
        // averages at start and end are recorded either way).
        process.env.HOSTNET_BENCH_NOTE ??
        "other work on the machine not recorded (set HOSTNET_BENCH_NOTE to describe it)",
    },
    host: `${h.name} (${h.address})`,
    settings: opts.settings,
    runs: [],
    variants: [],
    failures: [],
  };
  if (
    opts.resume &&
    JSON.stringify(opts.resume.settings) !== JSON.stringify(opts.settings)
  ) {
    throw new Error(
      `cannot resume: the saved report was measured with ${JSON.stringify(opts.resume.settings)}, this run uses ${JSON.stringify(opts.settings)}`,
    );
  }
  const save = () => opts.save?.(report);
  cleanupLab(h);
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ");
  for (const n of opts.sizes) {
    for (let rep = 1; rep <= opts.reps(n); rep++) {
      if (report.runs.some((r) => r.n === n && r.rep === rep)) continue;
      opts.log(`N=${n} rep ${rep}/${opts.reps(n)} (load ${load()})`);
      await onceMore(report, opts.log, async (h) => {
        const hn = await hostnetLifecycle(n, h, opts.settings, "", opts.log);
        cleanupLab(h);
        const lb = lowerBound(n, h, hn.state, opts.log);
        const floor = await floorLifecycle(n, opts.settings, "", opts.log);
        report.runs.push({
          n,
          rep,
          settings: opts.settings,
          hostnet: { ...hn.life, snapshot: hn.snapshot },
          lowerBound: lb,
          floor,
          loadavg: os.loadavg(),
        });
      });
      save();
    }
  }
  for (const { label, settings, sizes } of opts.variants) {
    for (const n of sizes) {
      if (report.variants.some((v) => v.label === label && v.n === n)) continue;
      opts.log(`N=${n} with ${label} (load ${load()})`);
      await onceMore(report, opts.log, async (h) => {
        const hn = await hostnetLifecycle(n, h, settings, "-variant", opts.log);
        cleanupLab(h);
        const floor = await floorLifecycle(n, settings, "-variant", opts.log);
        report.variants.push({ n, label, settings, hostnet: hn.life, floor });
      });
      save();
    }
  }
  report.machine.loadavgEnd = os.loadavg();
  report.finishedAt = new Date().toISOString();
  return report;
}

// ---------------------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------------------

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface SizeSummary {
  n: number;
  reps: number;
  resources: number;
  floorResources: number;
  /** Bytes of the exported state after up (0 in reports older than this field). */
  stateBytes: number;
  hostnet: Record<Phase, PhaseResult>;
  floor: Record<Phase, PhaseResult>;
  lbBuildS: number;
  lbTeardownS: number;
  sameEndState: boolean;
  snapshot: SnapshotProbe;
}

/** Medians over repetitions, field by field (round trips are deterministic up to retries). */
export function summarize(report: ProvisionReport): SizeSummary[] {
  const sizes = [...new Set(report.runs.map((r) => r.n))].sort((a, b) => a - b);
  return sizes.map((n) => {
    const runs = report.runs.filter((r) => r.n === n);
    const phaseMedian = (
      pick: (r: RunResult) => Lifecycle,
      phase: Phase,
    ): PhaseResult =>
      medianPhase(
        runs.map((r) => pick(r).phases.find((p) => p.phase === phase)!),
      );
    const by = (pick: (r: RunResult) => Lifecycle) =>
      Object.fromEntries(
        PHASES.map((p) => [p, phaseMedian(pick, p)]),
      ) as Record<Phase, PhaseResult>;
    return {
      n,
      reps: runs.length,
      resources: runs[0].hostnet.resources,
      floorResources: runs[0].floor.resources,
      stateBytes: median(runs.map((r) => r.hostnet.stateBytes ?? 0)),
      hostnet: by((r) => r.hostnet),
      floor: by((r) => r.floor),
      lbBuildS: median(runs.map((r) => r.lowerBound.buildS)),
      lbTeardownS: median(runs.map((r) => r.lowerBound.teardownS)),
      sameEndState: runs.every((r) => r.lowerBound.sameEndState),
      snapshot: {
        roundTripS: median(runs.map((r) => r.hostnet.snapshot.roundTripS)),
        outputBytes: median(runs.map((r) => r.hostnet.snapshot.outputBytes)),
        namespaces: median(runs.map((r) => r.hostnet.snapshot.namespaces)),
        parseS: median(runs.map((r) => r.hostnet.snapshot.parseS)),
      },
    };
  });
}

function medianPhase(ps: PhaseResult[]): PhaseResult {
  const m = (f: (p: PhaseResult) => number) => median(ps.map(f));
  const role = (f: (p: PhaseResult) => RoleStats): RoleStats => ({
    peakRssMb: m((p) => f(p).peakRssMb),
    cpuS: m((p) => f(p).cpuS),
    processes: m((p) => f(p).processes),
  });
  const base = ps[Math.floor((ps.length - 1) / 2)];
  return {
    ...base,
    wallS: m((p) => p.wallS),
    changed: Math.max(...ps.map((p) => p.changed)),
    engine: role((p) => p.engine),
    provider: role((p) => p.provider),
    programCpuS: m((p) => p.programCpuS),
    ...(base.ssh
      ? {
          ssh: {
            ...base.ssh,
            roundTrips: m((p) => p.ssh!.roundTrips),
            connections: m((p) => p.ssh!.connections),
            opsApplied: m((p) => p.ssh!.opsApplied),
          },
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------
// The table: one row per metric, one column per N
// ---------------------------------------------------------------------------------------

export interface BenchSection {
  title: string;
  columns: string[];
  rows: string[][];
  notes?: string[];
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const ratio = (a: number, b: number) => (b > 0 ? `${f1(a / b)}×` : "-");
const PHASE_LABEL: Record<Phase, string> = {
  up: "up from empty",
  "noop-up": "no-op up",
  "preview-refresh": "preview --refresh",
  destroy: "destroy",
};

export interface TargetVerdict {
  target: string;
  measured: string;
  pass: boolean;
}

/** What the targets need at one N: the lower bound and hostnet's wall time (and refresh round trips) per phase. */
export interface TargetPoint {
  n: number;
  lbBuildS: number;
  lbTeardownS: number;
  wallS: Record<Phase, number>;
  /** The engine floor's wall time for the same resource count, same settings. */
  floorS: Record<Phase, number>;
  refreshRoundTrips: number;
}

/** The targets, judged at the largest N given (and its growth from the next smaller N). */
export function targets(points: TargetPoint[]): TargetVerdict[] {
  const big = points[points.length - 1];
  const prev = points.length > 1 ? points[points.length - 2] : undefined;
  const out: TargetVerdict[] = [];
  const up = big.wallS.up / big.lbBuildS;
  out.push({
    target: `converge of ${big.n} VMs ≤ 3× the lower bound`,
    measured: `${f1(up)}×`,
    pass: up <= 3,
  });
  const pr = big.wallS["preview-refresh"] / big.lbBuildS;
  out.push({
    target: `no-op preview --refresh of ${big.n} VMs ≤ 2× the lower bound`,
    measured: `${f1(pr)}×`,
    pass: pr <= 2,
  });
  const down = big.wallS.destroy / big.lbTeardownS;
  out.push({
    target: `destroy of ${big.n} VMs ≤ 3× the lower bound's teardown`,
    measured: `${f1(down)}×`,
    pass: down <= 3,
  });
  const noop = big.wallS["noop-up"] / big.floorS["noop-up"];
  out.push({
    target: `no-op up of ${big.n} VMs ≤ 1.5× the engine floor's no-op up`,
    measured: `${f2(noop)}×`,
    pass: noop <= 1.5,
  });
  const trips = points.map((p) => p.refreshRoundTrips);
  out.push({
    target:
      "round trips per refresh independent of the resource count (1 host)",
    measured: `${trips.join(" / ")} for N = ${points.map((p) => p.n).join(" / ")}`,
    pass: trips.every((t) => t === trips[0]),
  });
  if (prev) {
    const limit = 3.3 * (big.n / prev.n / 3); // the 3.3 for 300/100, scaled for other size pairs
    for (const p of PHASES) {
      const g = big.wallS[p] / prev.wallS[p];
      out.push({
        target: `${PHASE_LABEL[p]}: t(${big.n})/t(${prev.n}) ≤ ${f2(limit)} (linear)`,
        measured: f2(g),
        pass: g <= limit,
      });
    }
  }
  return out;
}

const phaseWalls = (wall: (p: Phase) => number) =>
  Object.fromEntries(PHASES.map((p) => [p, wall(p)])) as Record<Phase, number>;

function mainPoints(sums: SizeSummary[]): TargetPoint[] {
  return sums.map((s) => ({
    n: s.n,
    lbBuildS: s.lbBuildS,
    lbTeardownS: s.lbTeardownS,
    refreshRoundTrips: s.hostnet["preview-refresh"].ssh?.roundTrips ?? NaN,
    wallS: phaseWalls((p) => s.hostnet[p].wallS),
    floorS: phaseWalls((p) => s.floor[p].wallS),
  }));
}

function variantPoints(
  report: ProvisionReport,
  label: string,
  sums: SizeSummary[],
): TargetPoint[] {
  return report.variants
    .filter((v) => v.label === label)
    .sort((a, b) => a.n - b.n)
    .flatMap((v) => {
      const base = sums.find((s) => s.n === v.n);
      if (!base) return [];
      const phase = (l: Lifecycle, p: Phase) =>
        l.phases.find((x) => x.phase === p)!;
      return [
        {
          n: v.n,
          lbBuildS: base.lbBuildS,
          lbTeardownS: base.lbTeardownS,
          refreshRoundTrips:
            phase(v.hostnet, "preview-refresh").ssh?.roundTrips ?? NaN,
          wallS: phaseWalls((p) => phase(v.hostnet, p).wallS),
          floorS: phaseWalls((p) => phase(v.floor, p).wallS),
        },
      ];
    });
}

function cpuTotal(p: PhaseResult): number {
  return p.engine.cpuS + p.provider.cpuS + p.programCpuS;
}

function envText(env: Record<string, string>): string {
  const e = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return e ? `; ${e}` : "";
}

/** Host-state reads of a phase: whole-host snapshots + scoped ones (root and named namespaces). */
function stateReads(phase: {
  ssh?: { byWhat: Record<string, number> };
}): string {
  const byWhat = phase.ssh?.byWhat ?? {};
  const scoped = Object.entries(byWhat)
    .filter(([w]) => w.startsWith("read the network state of "))
    .reduce((n, [, c]) => n + c, 0);
  return `${byWhat["read the network state"] ?? 0} + ${scoped}`;
}

export function provisioningSection(report: ProvisionReport): BenchSection {
  const sums = summarize(report);
  const col = (f: (s: SizeSummary, i: number) => string) =>
    sums.map((s, i) => f(s, i));
  const rows: string[][] = [];
  const row = (label: string, f: (s: SizeSummary, i: number) => string) =>
    rows.push([label, ...col(f)]);
  row(
    "resources in state: hostnet / floor",
    (s) => `${s.resources} / ${s.floorResources}`,
  );
  row("state bytes per resource (hostnet)", (s) =>
    s.stateBytes ? String(Math.round(s.stateBytes / s.resources)) : "-",
  );
  for (const p of PHASES)
    row(`hostnet ${PHASE_LABEL[p]} (s)`, (s) => f1(s.hostnet[p].wallS));
  row(
    "lower bound build / teardown (s)",
    (s) => `${f1(s.lbBuildS)} / ${f1(s.lbTeardownS)}`,
  );
  for (const p of PHASES)
    row(`engine floor ${PHASE_LABEL[p]} (s)`, (s) => f1(s.floor[p].wallS));
  row("hostnet / lower bound: up", (s) =>
    ratio(s.hostnet.up.wallS, s.lbBuildS),
  );
  row("hostnet / lower bound: preview --refresh", (s) =>
    ratio(s.hostnet["preview-refresh"].wallS, s.lbBuildS),
  );
  row("hostnet / lower bound: destroy / teardown", (s) =>
    ratio(s.hostnet.destroy.wallS, s.lbTeardownS),
  );
  row(
    "floor / lower bound: up / preview --refresh",
    (s) =>
      `${ratio(s.floor.up.wallS, s.lbBuildS)} / ${ratio(s.floor["preview-refresh"].wallS, s.lbBuildS)}`,
  );
  row(
    "hostnet − floor per resource: up / refresh (ms)",
    (s) =>
      `${f1(((s.hostnet.up.wallS - s.floor.up.wallS) / s.resources) * 1000)} / ${f1(((s.hostnet["preview-refresh"].wallS - s.floor["preview-refresh"].wallS) / s.resources) * 1000)}`,
  );
  row("growth vs previous N: hostnet up / refresh", (s, i) =>
    i === 0
      ? "-"
      : `${f2(s.hostnet.up.wallS / sums[i - 1].hostnet.up.wallS)} / ${f2(s.hostnet["preview-refresh"].wallS / sums[i - 1].hostnet["preview-refresh"].wallS)}`,
  );
  row("SSH round trips: up / no-op / refresh / destroy", (s) =>
    PHASES.map((p) => s.hostnet[p].ssh?.roundTrips ?? "-").join(" / "),
  );
  row("SSH connections: up / no-op / refresh / destroy", (s) =>
    PHASES.map((p) => s.hostnet[p].ssh?.connections ?? "-").join(" / "),
  );
  row("host-state reads, whole host + scoped: up / refresh / destroy", (s) =>
    (["up", "preview-refresh", "destroy"] as const)
      .map((p) => stateReads(s.hostnet[p]))
      .join(" / "),
  );
  row("kernel ops per apply round trip (up)", (s) =>
    f1(
      (s.hostnet.up.ssh?.opsApplied ?? 0) /
        (s.hostnet.up.ssh?.byWhat["apply N change(s)"] ?? 1),
    ),
  );
  // An upper estimate: the host grows from empty during up, the probe reads it full.
  row("up: whole-host reads × one whole-host read (s)", (s) =>
    f1(
      (s.hostnet.up.ssh?.byWhat["read the network state"] ?? 0) *
        s.snapshot.roundTripS,
    ),
  );
  row(
    "one snapshot: round trip (s) / parse (s) / MB",
    (s) =>
      `${f2(s.snapshot.roundTripS)} / ${f2(s.snapshot.parseS)} / ${f1(s.snapshot.outputBytes / 1e6)}`,
  );
  row(
    "peak RSS MiB up: engine / provider (floor)",
    (s) =>
      `${Math.round(s.hostnet.up.engine.peakRssMb)} / ${Math.round(s.hostnet.up.provider.peakRssMb)} (${Math.round(s.floor.up.engine.peakRssMb)} / ${Math.round(s.floor.up.provider.peakRssMb)})`,
  );
  row(
    "peak RSS MiB refresh: engine / provider",
    (s) =>
      `${Math.round(s.hostnet["preview-refresh"].engine.peakRssMb)} / ${Math.round(s.hostnet["preview-refresh"].provider.peakRssMb)}`,
  );
  const cpu = (p: PhaseResult) =>
    [p.engine.cpuS, p.provider.cpuS, p.programCpuS].map(f1).join(" / ");
  for (const p of PHASES)
    row(
      `CPU s ${PHASE_LABEL[p]}: engine / provider / program`,
      (s) => `${cpu(s.hostnet[p])} (floor ${cpu(s.floor[p])})`,
    );
  row(
    "CPU s up, all processes: hostnet / floor",
    (s) => `${f1(cpuTotal(s.hostnet.up))} / ${f1(cpuTotal(s.floor.up))}`,
  );
  row(
    "no-op up / refresh changed steps (must be 0)",
    (s) =>
      `${s.hostnet["noop-up"].changed} / ${s.hostnet["preview-refresh"].changed}`,
  );
  row("end state identical to the lower bound's", (s) =>
    s.sameEndState ? "yes" : "NO",
  );
  const verdicts = (label: string, ts: TargetVerdict[]) => {
    for (const t of ts)
      rows.push([
        `target${label}: ${t.target}`,
        ...sums.map((_, i) =>
          i === sums.length - 1
            ? `${t.measured} ${t.pass ? "PASS" : "MISS"}`
            : "",
        ),
      ]);
  };
  verdicts("", targets(mainPoints(sums)));
  for (const label of [...new Set(report.variants.map((v) => v.label))]) {
    const at = (s: SizeSummary) =>
      report.variants.find((v) => v.label === label && v.n === s.n);
    const ph = (l: Lifecycle, p: Phase) => l.phases.find((x) => x.phase === p)!;
    const cell = (l: Lifecycle | undefined) =>
      l ? PHASES.map((p) => f1(ph(l, p).wallS)).join(" / ") : "-";
    row(`${label}: hostnet up / no-op / refresh / destroy (s)`, (s) =>
      cell(at(s)?.hostnet),
    );
    row(`${label}: floor up / no-op / refresh / destroy (s)`, (s) =>
      cell(at(s)?.floor),
    );
    row(`${label}: hostnet / lower bound: up / refresh`, (s) => {
      const v = at(s);
      return v
        ? `${ratio(ph(v.hostnet, "up").wallS, s.lbBuildS)} / ${ratio(ph(v.hostnet, "preview-refresh").wallS, s.lbBuildS)}`
        : "-";
    });
    row(`${label}: SSH round trips up / destroy; snapshots in up`, (s) => {
      const v = at(s);
      return v
        ? `${ph(v.hostnet, "up").ssh?.roundTrips} / ${ph(v.hostnet, "destroy").ssh?.roundTrips}; ${stateReads(ph(v.hostnet, "up"))}`
        : "-";
    });
    row(`${label}: CPU s up, all processes: hostnet / floor`, (s) => {
      const v = at(s);
      return v
        ? `${f1(cpuTotal(ph(v.hostnet, "up")))} / ${f1(cpuTotal(ph(v.floor, "up")))}`
        : "-";
    });
    const pts = variantPoints(report, label, sums);
    if (pts.length > 0 && pts[pts.length - 1].n === sums[sums.length - 1].n)
      verdicts(` (${label})`, targets(pts));
  }
  const reps = sums.map((s) => `${s.reps}× N=${s.n}`).join(", ");
  return {
    title: `Provisioning on ${report.host}, one host bridge, N isolated-netns + managed-fdb VMs (medians of ${reps}; --parallel ${report.settings.parallel}${envText(report.settings.env)})`,
    columns: ["metric", ...sums.map((s) => `N = ${s.n}`)],
    rows,
    notes: [
      `load average ${report.machine.loadavgStart.map(f1).join(" ")} at start, ${report.machine.loadavgEnd.map(f1).join(" ")} at end on ${report.machine.cpus} CPUs: ${report.machine.note}`,
    ],
  };
}
