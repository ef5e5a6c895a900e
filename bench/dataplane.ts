/**
 * Data-plane benchmark: CPU time per broadcast ARP frame on a Linux bridge with N VM ports, for the
 * topologies hostnet builds (see bench/README.md, section "Data plane", and ../shared/DESIGN.md).
 *
 *   (a) no filter                     (b) libvirt-style ebtables: one jump per port in POSTROUTING,
 *   (c) hostnet FilterChain (vmap)        3-rule chain per port      (d) isolated-netns per VM
 *   (e) managed fdb + ARP suppression (+ the same FilterChain as (c))
 *   diagnostics, only on request: c0 dispatch only, c1 from-vm in prerouting, c2 empty nft hook,
 *   c3 maps keyed by ifindex, c4 (c) without its broadcast-ARP fast paths, c6 (c) without the one
 *   in the forward base chain
 *   only on request: (e1) (e) + ARP answered at the asking port's ingress (compileArpAnswer);
 *   (f) a 3-host VXLAN segment as hostnet programs it, always measured together with (f0), the same
 *   segment flooding with learning on; (f1) (f) + neigh_suppress on the VM ports; (f2) (f) + ARP
 *   answered at host 1's VM ports (N = VM ports per host)
 *   only on request, the frames the ARP answer table does NOT answer (what its ingress hook costs
 *   them), each on a plain bridge with static fdb entries, without it and with it (…1) on all N
 *   VM ports and the sender's port: (g)/(g1) unicast IPv4 UDP to a VM, (h)/(h1) broadcast DHCP
 *   discover, (i)/(i1) unicast ARP request to a VM (--cases g,g1,h,h1,i,i1)
 *
 * Everything is built on THIS machine inside throwaway network namespaces named hnbd-*; nothing is
 * created in the root namespace. Frames come from a namespace through an AF_PACKET socket (a small
 * Python sender, pinned to one CPU). Usage: node dist/bench/dataplane.js [--quick] [--ns 100,300]
 * [--frames 2000] [--rate 200] [--reps 3 (rounds)] [--cases a,b,c,e,d] [--cpu N]
 * [--profile auto|always|off] [--no-readme]   (e.g. --cases f --ns 100: (f) and (f0) at 100 VMs per host)
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { derivedNames, VmSpec } from "../components/spec";
import { hostPortFlags } from "../components/vmPort";
import { compileArpAnswer } from "../providers/kinds/arpAnswer";
import {
  BROADCAST_ARP_ACCEPT,
  BROADCAST_ARP_RETURN,
  compileFilterChain,
} from "../providers/kinds/filterChain";
import { portFlagLines } from "../providers/kinds/portFlags";
import { fdbEntryPlanner, FdbEntryProps } from "../providers/kinds/fdbEntry";
import type { Step } from "../providers/kinds/plan";
import {
  vxlanDevicePlanner,
  VxlanDeviceProps,
} from "../providers/kinds/vxlanDevice";
import { batchLine } from "../providers/transport";

/**
 * Diagnostics, not run by default: c0 = (c)'s verdict-map dispatch with empty per-port chains;
 * c1 = (c) with the from-vm dispatch moved from the per-clone forward hook to prerouting (once per frame);
 * c2 = an empty nft forward base chain: the floor any per-clone nft filter pays;
 * c3 = (c) with its maps keyed by interface index (iif/oif) instead of name (iifname/oifname);
 * c4 = (c) without the broadcast-ARP fast path of its to-vm chains (the table until 2026-11-30);
 * c6 = (c) without the broadcast-ARP fast path of its forward base chain (to-vm chains' fast path only).
 */
export type CaseId =
  | "a"
  | "b"
  | "c"
  | "c0"
  | "c1"
  | "c2"
  | "c3"
  | "c4"
  | "c6"
  | "d"
  | "e"
  | "e1"
  | "f"
  | "f0"
  | "f1"
  | "f2"
  | "g"
  | "g1"
  | "h"
  | "h1"
  | "i"
  | "i1";

/**
 * The full run: every case hostnet builds ((c) FilterChain, (e1) ARP suppression with the answer
 * table) and the references they are judged against. (e) stays in it so its growth, the kernel
 * bridge's own, is measured beside (e1)'s in the same rounds.
 */
export const DEFAULT_CASES: CaseId[] = ["a", "b", "c", "e", "e1", "d"];

export const CASES: Record<CaseId, string> = {
  a: "no filter",
  b: "libvirt-style ebtables (linear jumps)",
  c: "hostnet FilterChain (verdict map)",
  c0: "FilterChain dispatch only (accept-all)",
  c1: "FilterChain, from-vm in prerouting (proposal)",
  c2: "empty nft forward chain (floor)",
  c3: "FilterChain keyed by ifindex (proposal)",
  c4: "FilterChain without the broadcast-ARP fast paths (until 2026-11-30)",
  c6: "FilterChain without the forward-hook fast path",
  d: "isolated-netns per VM",
  e: "managed fdb + ARP suppression",
  e1: "(e) + ARP answered at the port's ingress",
  f: "3-host VXLAN segment, hostnet",
  f0: "3-host VXLAN segment, flooding + learning",
  f1: "(f) + neigh_suppress on the VM ports",
  f2: "(f) + ARP answered at host 1's VM ports' ingress",
  g: "unicast IPv4 UDP to a VM",
  g1: "(g) + ARP answer table on every port",
  h: "broadcast DHCP discover",
  h1: "(h) + ARP answer table on every port",
  i: "unicast ARP request to a VM",
  i1: "(i) + ARP answer table on every port",
};

/** The segment cases: three hosts, N VM ports on each. */
const isSegment = (c: CaseId): c is "f" | "f0" | "f1" | "f2" =>
  c === "f" || c === "f0" || c === "f1" || c === "f2";

/**
 * The ingress-cost cases: frames the ARP answer table must let through, each without (g, h, i) and
 * with (g1, h1, i1) the table on every port. What each sends is `ingressFrames`.
 */
export const INGRESS_CASES = ["g", "g1", "h", "h1", "i", "i1"] as const;
export type IngressCase = (typeof INGRESS_CASES)[number];
const isIngress = (c: CaseId): c is IngressCase =>
  (INGRESS_CASES as readonly CaseId[]).includes(c);
/** The ingress cases that load the ARP answer table. */
const withArpTable = (c: CaseId): boolean =>
  c === "g1" || c === "h1" || c === "i1";

/** The cases that load hostnet's FilterChain (its to_vm map is checked). */
const FILTERED: readonly CaseId[] = [
  "c",
  "c0",
  "c1",
  "c3",
  "c4",
  "c6",
  "e",
  "e1",
];

export interface DataplaneOptions {
  /** Port counts to measure (default [100, 300]; quick: [20, 40]). */
  ns?: number[];
  cases?: CaseId[];
  /** Frames per measured repetition and the fixed send rate (frames/s). */
  frames?: number;
  rate?: number;
  reps?: number;
  /** CPU the sender is pinned to (default: the last one). */
  cpu?: number;
  quick?: boolean;
  /** perf profile: "auto" profiles the cases of a missed target. Default auto (quick: off). */
  profile?: "auto" | "always" | "off";
  /** Write bench/results/*.json and the SVG chart (default true). */
  write?: boolean;
  /** Rewrite the generated block of bench/README.md (default: true unless quick). */
  readme?: boolean;
  /** Directory holding results/ and README.md (default: this package's bench/). */
  benchDir?: string;
  log?: (line: string) => void;
}

export interface RepResult {
  sent: number;
  wallS: number;
  /** Sender thread CPU inside send() (syscall + the softirq work it runs) + ksoftirqd excess when squeezed. */
  attributedUs: number;
  sendCpuUs: number;
  ksoftirqdUs: number;
  /** Tick-sampled softirq time on the sender's CPU, minus baseline (cross-check). */
  softirqUs: number;
  /** The /proc/stat method: busy time of all CPUs minus a baseline window of the same length. */
  procStatUs: number;
  procStatCpuUs: number;
  /** false when the sender's CPU was saturated, so busy time cannot see our work. */
  procStatValid: boolean;
  idleFractionCpu: number;
  softnetDrops: number;
  /** net_rx_action budget exhaustions on the sender's CPU during the send window. */
  squeezes: number;
  lateMaxMs: number;
}

export interface CaseResult {
  case: CaseId;
  label: string;
  n: number;
  buildS: number;
  reps: RepResult[];
  median: {
    attributedUs: number;
    softirqUs: number;
    procStatUs: number;
    procStatValid: boolean;
  };
  verify: Record<string, number | string | boolean>;
}

export interface ProfileResult {
  case: CaseId;
  n: number;
  reason: string;
  top: { pct: number; sym: string }[];
  /**
   * Ingress cases: the sender's samples in nftables' own symbols (nft_*), and what they come to per
   * frame sent (samples × sample period / frames): a lower bound of the ingress hook's cost.
   */
  nftSamples?: number;
  nftUsPerFrame?: number;
  /** All the sender's kernel samples per frame, the same way: should come near the case's µs per frame, or the profile missed work. */
  kernelUsPerFrame?: number;
  error?: string;
}

export interface TargetResult {
  name: string;
  value: number | null;
  limit: number;
  met: boolean | null;
  detail: string;
}

/** The shape bench/run.ts prints as one section of its combined table. */
export interface BenchSection {
  title: string;
  columns: string[];
  rows: string[][];
  notes?: string[];
}

export interface DataplaneResults {
  date: string;
  quick: boolean;
  machine: Record<string, string | number>;
  options: Required<
    Pick<DataplaneOptions, "ns" | "cases" | "frames" | "rate" | "reps" | "cpu">
  >;
  method: string;
  results: CaseResult[];
  ratios: Record<string, number | null>;
  /** Ingress cases: µs per frame with the ARP answer table minus without (median over rounds of the difference within a round), e.g. "g1-g@300". */
  deltas?: Record<string, number>;
  targets: TargetResult[];
  profiles: ProfileResult[];
  files: string[];
  section: BenchSection;
}

/* ----------------------------------------------------------------------------------------- */
/* Names and addresses                                                                        */
/* ----------------------------------------------------------------------------------------- */

const PREFIX = "hnbd-";
const BR_NS = "hnbd-br";
const SND_NS = "hnbd-snd";
const BRIDGE = "hnbd-br";
const SND_PORT = "hnbd-snd";
const SND_IF = "snd0";
const SND_MAC = "02:48:4e:42:ff:fe";
const SND_IP = "198.19.199.254";
const MAX_N = 1000;
const LOCK = "/run/hnbd-dataplane.lock";
/** Frames sent before each measured window (the bridge learns the sender, caches warm up). */
const WARM = 20;

const port = (i: number): string => `hnbd-p${i}`;
const peer = (i: number): string => `hnbd-g${i}`;
const vmNs = (i: number): string => `hnbd-vm${i}`;
const hostPort = (i: number): string => `hnbd-hv${i}`;
const hex2 = (v: number): string => v.toString(16).padStart(2, "0");
const vmMac = (i: number): string =>
  `02:48:4e:42:${hex2(i >> 8)}:${hex2(i & 255)}`;
const vmIp = (i: number): string =>
  `198.19.${200 + Math.floor(i / 250)}.${(i % 250) + 1}`;
/** The stand-in for the VM behind its tap: a veth peer, up, with ARP off (drops clones early). */
const TAP_PEER = "vm0";
const INNER = derivedNames("x");

/** A VmSpec as hostnet's components see it (for the port flags hostnet would set). */
function vmSpec(i: number, managed: boolean, arpSuppress = managed): VmSpec {
  return VmSpec.parse({
    name: `v${i}`,
    host: "bench",
    mac: vmMac(i),
    ipv4: [`${vmIp(i)}/22`],
    attachment: "bridged",
    managedFdb: managed,
    arpSuppress,
    filter: "clean-traffic",
  });
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k + 1);
}

/* ----------------------------------------------------------------------------------------- */
/* Running commands                                                                           */
/* ----------------------------------------------------------------------------------------- */

const children = new Set<ChildProcess>();

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  what: string,
  input?: string,
  allowFail = false,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e) => {
      children.delete(child);
      reject(
        new Error(
          `dataplane bench: cannot start ${cmd} (${what}): ${e.message}; run 'npm run setup' to install what is missing`,
        ),
      );
    });
    child.on("close", (code) => {
      children.delete(child);
      const r = { code: code ?? -1, stdout, stderr };
      if (r.code !== 0 && !allowFail) {
        reject(
          new Error(
            `dataplane bench: ${what} failed (${cmd} exit ${r.code}): ${stderr.trim().split("\n").slice(-5).join(" | ")}`,
          ),
        );
      } else resolve(r);
    });
    child.stdin.on("error", () => undefined); // a child that exits without reading its stdin is not an error
    child.stdin.end(input ?? "");
  });
}

const ipBatch = (
  ns: string | undefined,
  lines: string[],
  what: string,
): Promise<RunResult> =>
  run(
    "ip",
    [...(ns ? ["-n", ns] : []), "-batch", "-"],
    what,
    lines.join("\n") + "\n",
  );
const bridgeBatch = (
  ns: string,
  lines: string[],
  what: string,
): Promise<RunResult> =>
  run("bridge", ["-n", ns, "-batch", "-"], what, lines.join("\n") + "\n");
const inNs = (
  ns: string,
  argv: string[],
  what: string,
  input?: string,
): Promise<RunResult> => run("ip", ["netns", "exec", ns, ...argv], what, input);

const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, ms));

/* ----------------------------------------------------------------------------------------- */
/* Cleanup (always: try/finally and signal handlers)                                          */
/* ----------------------------------------------------------------------------------------- */

function ourNamespaces(): string[] {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return (r.stdout ?? "")
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(PREFIX));
}

/** Deletes every hnbd-* namespace; links, bridges, fdb, neighbours and nft/ebtables rules go with them. */
export function cleanupSync(): number {
  const names = ourNamespaces();
  if (names.length > 0) {
    spawnSync("ip", ["-force", "-batch", "-"], {
      input: names.map((n) => `netns del ${n}`).join("\n") + "\n",
    });
  }
  return names.length;
}

function killChildren(): void {
  for (const c of children)
    if (c.pid !== undefined)
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        /* gone */
      }
}

function acquireLock(): void {
  try {
    fs.writeFileSync(LOCK, String(process.pid), { flag: "wx" });
    return;
  } catch {
    /* exists */
  }
  const pid = Number(fs.readFileSync(LOCK, "utf8"));
  let alive = false;
  try {
    process.kill(pid, 0);
    alive = true;
  } catch {
    /* stale */
  }
  if (alive && pid !== process.pid) {
    throw new Error(
      `dataplane bench: another run (pid ${pid}) owns the hnbd-* namespaces; wait for it to finish, or if it is not a bench, remove ${LOCK}`,
    );
  }
  fs.writeFileSync(LOCK, String(process.pid));
}

function releaseLock(): void {
  try {
    if (fs.readFileSync(LOCK, "utf8") === String(process.pid))
      fs.unlinkSync(LOCK);
  } catch {
    /* none */
  }
}

/** Signals and a crash (uncaught exception, process.exit) must not leave hnbd-* namespaces behind. */
function installSignalHandlers(tmp: string): () => void {
  const onExit = (): void => {
    killChildren();
    cleanupSync();
    fs.rmSync(tmp, { recursive: true, force: true });
    releaseLock();
  };
  process.on("exit", onExit);
  const handler = (sig: NodeJS.Signals): void => {
    killChildren();
    const n = cleanupSync();
    fs.rmSync(tmp, { recursive: true, force: true });
    releaseLock();
    process.stderr.write(
      `\ndataplane bench: ${sig}: removed ${n} hnbd-* namespace(s)\n`,
    );
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  };
  const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of sigs) process.on(s, handler);
  return () => {
    for (const s of sigs) process.off(s, handler);
    process.off("exit", onExit);
  };
}

/* ----------------------------------------------------------------------------------------- */
/* Topologies                                                                                 */
/* ----------------------------------------------------------------------------------------- */

const NO_IPV6 =
  "echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6";

/** Bridge namespace with the host bridge, and the sender namespace with its veth into the bridge. */
async function buildBase(): Promise<void> {
  await ipBatch(
    undefined,
    [`netns add ${BR_NS}`, `netns add ${SND_NS}`],
    "create namespaces hnbd-br, hnbd-snd",
  );
  for (const ns of [BR_NS, SND_NS])
    await inNs(ns, ["sh", "-c", NO_IPV6], `disable IPv6 in ${ns}`);
  await ipBatch(
    BR_NS,
    [
      "link set lo up",
      batchLine(["link", "add", BRIDGE, "type", "bridge", "stp_state", "0"]),
      batchLine(["link", "set", BRIDGE, "up"]),
      batchLine([
        "link",
        "add",
        SND_PORT,
        "type",
        "veth",
        "peer",
        "name",
        SND_IF,
        "netns",
        SND_NS,
      ]),
      batchLine(["link", "set", SND_PORT, "master", BRIDGE, "up"]),
    ],
    "create bridge hnbd-br and the sender port in netns hnbd-br",
  );
  await ipBatch(
    SND_NS,
    [
      "link set lo up",
      batchLine([
        "link",
        "set",
        SND_IF,
        "address",
        SND_MAC,
        "arp",
        "off",
        "up",
      ]),
    ],
    "bring up snd0 in netns hnbd-snd",
  );
}

/**
 * N VM ports on the host bridge: veth pairs whose peers (the "VMs") stay in the bridge's namespace,
 * up, ARP off. Port i carries VM first + i (the segment cases number VMs across hosts).
 */
async function buildPorts(n: number, ns = BR_NS, first = 0): Promise<void> {
  const lines: string[] = [];
  for (const i of range(n)) {
    lines.push(
      batchLine([
        "link",
        "add",
        port(i),
        "type",
        "veth",
        "peer",
        "name",
        peer(i),
        "address",
        vmMac(first + i),
      ]),
    );
    lines.push(batchLine(["link", "set", port(i), "master", BRIDGE, "up"]));
    lines.push(batchLine(["link", "set", peer(i), "arp", "off", "up"]));
  }
  await ipBatch(ns, lines, `create ${n} VM ports on hnbd-br in netns ${ns}`);
}

/** (b) libvirt nwfilter's shape: POSTROUTING holds one `-o port -j chain` per port; 3 rules per port. */
export function libvirtEbtables(n: number): string {
  const chain = (i: number): string => `libvirt-O-${port(i)}`;
  const out = [
    "*nat",
    ":PREROUTING ACCEPT",
    ":OUTPUT ACCEPT",
    ":POSTROUTING ACCEPT",
  ];
  for (const i of range(n)) out.push(`:${chain(i)} RETURN`);
  for (const i of range(n))
    out.push(`-A POSTROUTING -o ${port(i)} -j ${chain(i)}`);
  for (const i of range(n)) {
    out.push(
      `-A ${chain(i)} -d ${vmMac(i)} -j ACCEPT`,
      `-A ${chain(i)} -p ARP -d Broadcast -j ACCEPT`,
      `-A ${chain(i)} -j DROP`,
    );
  }
  return out.join("\n") + "\n";
}

/** (c)/(e) exactly what hostnet's FilterChain loads for clean-traffic on every VM port (c0: accept-all). */
export function hostnetFilter(
  n: number,
  policy: "clean-traffic" | "accept-all" = "clean-traffic",
): string {
  return compileFilterChain({
    table: "hostnet",
    ports: range(n).map((i) => ({
      port: port(i),
      policy,
      mac: vmMac(i),
      ipv4: [vmIp(i)],
    })),
  }).script;
}

/**
 * c1: the same table, but frames entering from a VM are dispatched to their from-vm chain once, in
 * prerouting (which also covers local delivery), instead of once per clone in forward plus input.
 */
export function fromVmInPrerouting(script: string): string {
  const fwd =
    "\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname vmap @from_vm\n";
  const input =
    "\tchain input_hook {\n\t\ttype filter hook input priority filter; policy accept;\n";
  if (!script.includes(fwd) || !script.includes(input)) {
    throw new Error(
      "dataplane bench: compileFilterChain's base chains changed shape; update fromVmInPrerouting (case c1)",
    );
  }
  return script
    .replace(
      fwd,
      "\t\ttype filter hook forward priority filter; policy accept;\n",
    )
    .replace(
      input,
      "\tchain input_hook {\n\t\ttype filter hook prerouting priority filter; policy accept;\n",
    );
}

const FLOOR_TABLE =
  "table bridge hnbd_floor {\n\tchain forward_hook {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n}\n";

/**
 * c3: the same table with `iif`/`oif` maps (4-byte interface index) instead of `iifname`/`oifname`
 * (a 16-byte name copied per lookup). nft resolves the names when the table is loaded, so such a
 * table must be reloaded whenever a port is recreated: a cost in operations, measured here in CPU.
 */
export function keyedByIndex(script: string): string {
  const out = script
    .replace(/type ifname : verdict/g, "type iface_index : verdict")
    .replace(/\biifname vmap @/g, "iif vmap @")
    .replace(/\boifname vmap @/g, "oif vmap @");
  if (out === script)
    throw new Error(
      "dataplane bench: compileFilterChain's maps changed shape; update keyedByIndex (case c3)",
    );
  return out;
}

/** `script` without each of `lines` (a rule line of the compiled table), which must be there. */
function withoutRules(script: string, lines: string[], what: string): string {
  let out = script;
  for (const l of lines) {
    const line = `\t\t${l}\n`;
    if (!out.includes(line))
      throw new Error(
        `dataplane bench: compileFilterChain no longer emits "${l}"; update ${what}`,
      );
    out = out.split(line).join("");
  }
  return out;
}

/**
 * c4: (c)'s table without its broadcast-ARP fast paths (the to-vm chains' `return`, the forward
 * hook's `accept`): the table compileFilterChain emitted until 2026-11-30.
 */
export const withoutArpFastPaths = (script: string): string =>
  withoutRules(
    script,
    [BROADCAST_ARP_RETURN, BROADCAST_ARP_ACCEPT],
    "withoutArpFastPaths (case c4)",
  );

/** c6: (c)'s table without the forward hook's fast path (the to-vm chains keep theirs). */
export const withoutBaseFastPath = (script: string): string =>
  withoutRules(script, [BROADCAST_ARP_ACCEPT], "withoutBaseFastPath (case c6)");

/** (e1)/(f2): the netdev table that answers ARP at the ingress of `ports` (arpAnswer.ts). */
export function arpAnswerTable(
  ports: string[],
  entries: { ip: string; mac: string }[],
): string {
  return compileArpAnswer({ table: ARP_TABLE, ports, entries }).script;
}
const ARP_TABLE = "hnbd_arp";

/* ----------------------------------------------------------------------------------------- */
/* Frames of the ingress-cost cases (g, h, i): built here, sent as bytes by the sender          */
/* ----------------------------------------------------------------------------------------- */

const macBytes = (m: string): Buffer =>
  Buffer.from(m.split(":").map((x) => parseInt(x, 16)));
const ipBytes = (ip: string): Buffer => Buffer.from(ip.split(".").map(Number));
const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
/** The shortest Ethernet frame without its FCS: shorter ones are padded, as a NIC would. */
const MIN_FRAME = 60;

/** RFC 791 header checksum: the one's complement of the one's-complement sum of its 16-bit words. */
export function ipv4Checksum(header: Buffer): number {
  let sum = 0;
  for (let k = 0; k + 1 < header.length; k += 2) sum += header.readUInt16BE(k);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ethernet(dst: string, type: number, payload: Buffer): Buffer {
  const f = Buffer.concat([
    macBytes(dst),
    macBytes(SND_MAC),
    u16(type),
    payload,
  ]);
  return f.length >= MIN_FRAME
    ? f
    : Buffer.concat([f, Buffer.alloc(MIN_FRAME - f.length)]);
}

/** IPv4 (no options, DF, TTL 64) + UDP (checksum 0: none, allowed over IPv4). */
function udpIpv4(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  data: Buffer,
): Buffer {
  const udp = Buffer.concat([
    u16(sport),
    u16(dport),
    u16(8 + data.length),
    u16(0),
    data,
  ]);
  const ip = Buffer.concat([
    Buffer.from([0x45, 0]),
    u16(20 + udp.length),
    u16(0), // identification
    u16(0x4000), // don't fragment
    Buffer.from([64, 17]), // TTL, UDP
    u16(0), // checksum, filled below
    ipBytes(src),
    ipBytes(dst),
  ]);
  ip.writeUInt16BE(ipv4Checksum(ip), 10);
  return Buffer.concat([ip, udp]);
}

/** (g): a datagram from the sender (a VM) to VM i's discard port: unicast to VM i's MAC. */
export function unicastUdpFrame(i: number): Buffer {
  return ethernet(
    vmMac(i),
    0x0800,
    udpIpv4(SND_IP, vmIp(i), 40000, 9, Buffer.alloc(18)),
  );
}

/** (h): the sender's DHCPDISCOVER (BOOTP padded to its 300-byte minimum, broadcast flag set). */
export function dhcpDiscoverFrame(): Buffer {
  const bootp = Buffer.alloc(300);
  bootp.set([1, 1, 6, 0]); // op request, htype Ethernet, hlen 6, hops 0
  bootp.write("HNBD", 4, "latin1"); // xid
  bootp.writeUInt16BE(0x8000, 10); // flags: broadcast
  macBytes(SND_MAC).copy(bootp, 28); // chaddr
  bootp.set([99, 130, 83, 99, 53, 1, 1, 255], 236); // magic cookie, option 53 = DISCOVER, end
  return ethernet(
    "ff:ff:ff:ff:ff:ff",
    0x0800,
    udpIpv4("0.0.0.0", "255.255.255.255", 68, 67, bootp),
  );
}

/**
 * (i): an ARP request for VM i sent to VM i's MAC, as Linux sends when it rechecks a neighbour it
 * knows (target hardware address zero). The answer table lets it through: only the VM may answer.
 */
export function unicastArpFrame(i: number): Buffer {
  return ethernet(
    vmMac(i),
    0x0806,
    Buffer.concat([
      Buffer.from([0, 1, 8, 0, 6, 4, 0, 1]), // Ethernet, IPv4, hlen 6, plen 4, request
      macBytes(SND_MAC),
      ipBytes(SND_IP),
      Buffer.alloc(6),
      ipBytes(vmIp(i)),
    ]),
  );
}

/** What the sender sends in an ingress case, round robin (unicast: one frame per VM). */
export function ingressFrames(c: IngressCase, n: number): Buffer[] {
  if (c === "h" || c === "h1") return [dhcpDiscoverFrame()];
  return range(n).map(
    c === "g" || c === "g1" ? unicastUdpFrame : unicastArpFrame,
  );
}

async function loadNft(
  ns: string,
  script: string,
  what: string,
): Promise<void> {
  await inNs(ns, ["nft", "-f", "-"], what, script);
}

/** VM i's MAC at its port, static (`bridge -batch` line). */
const staticFdbLine = (i: number): string =>
  batchLine(["fdb", "replace", vmMac(i), "dev", port(i), "master", "static"]);

/** (e1), (g1), (h1), (i1): the ARP answer table on the N VM ports and the sender's, entries = the N VMs. */
const loadArpTable = (n: number): Promise<void> =>
  loadNft(
    BR_NS,
    arpAnswerTable(
      [SND_PORT, ...range(n).map(port)],
      range(n).map((i) => ({ ip: vmIp(i), mac: vmMac(i) })),
    ),
    `load the ARP answer table on ${n} VM ports and the sender's port`,
  );

/**
 * (g), (h), (i): a plain bridge with a static fdb entry per VM (so a unicast frame goes to its one
 * port, never flooded as unknown); (g1), (h1), (i1): plus the ARP answer table.
 */
async function buildIngress(c: IngressCase, n: number): Promise<void> {
  await bridgeBatch(
    BR_NS,
    range(n).map(staticFdbLine),
    `add ${n} static fdb entries on hnbd-br`,
  );
  if (withArpTable(c)) await loadArpTable(n);
}

/** (e) seed 002 + ARP suppression: the port flags hostnet sets, static fdb, permanent neighbours. */
async function buildSuppression(n: number): Promise<void> {
  const br: string[] = [];
  const neigh: string[] = [];
  for (const i of range(n)) {
    br.push(...portFlagLines(port(i), hostPortFlags(vmSpec(i, true))));
    br.push(staticFdbLine(i));
    neigh.push(
      batchLine([
        "neigh",
        "replace",
        vmIp(i),
        "lladdr",
        vmMac(i),
        "dev",
        BRIDGE,
        "nud",
        "permanent",
      ]),
    );
  }
  await bridgeBatch(
    BR_NS,
    br,
    `set learning/flood off, neigh_suppress on and static fdb on ${n} ports`,
  );
  await ipBatch(BR_NS, neigh, `add ${n} permanent neighbours on hnbd-br`);
}

/** (d) per VM what components/isolatedNetns.ts makes: netns, br0, up0<->host port, tap0, own FilterChain. */
async function buildIsolated(n: number, tmp: string): Promise<void> {
  await ipBatch(
    undefined,
    range(n).map((i) => batchLine(["netns", "add", vmNs(i)])),
    `create ${n} VM namespaces`,
  );
  const script: string[] = ["set -e"];
  for (const i of range(n)) {
    const dir = path.join(tmp, `vm${i}`);
    fs.writeFileSync(
      `${dir}.ip`,
      [
        "link set lo up",
        batchLine([
          "link",
          "add",
          INNER.innerBridge,
          "type",
          "bridge",
          "stp_state",
          "0",
        ]),
        batchLine(["link", "set", INNER.innerBridge, "up"]),
        batchLine([
          "link",
          "add",
          INNER.innerTap,
          "type",
          "veth",
          "peer",
          "name",
          TAP_PEER,
          "address",
          vmMac(i),
        ]),
        batchLine([
          "link",
          "set",
          INNER.innerTap,
          "master",
          INNER.innerBridge,
          "up",
        ]),
        batchLine(["link", "set", TAP_PEER, "arp", "off", "up"]),
        batchLine([
          "link",
          "add",
          INNER.innerUplink,
          "type",
          "veth",
          "peer",
          "name",
          hostPort(i),
          "netns",
          BR_NS,
        ]),
        batchLine([
          "link",
          "set",
          INNER.innerUplink,
          "master",
          INNER.innerBridge,
          "up",
        ]),
      ].join("\n") + "\n",
    );
    fs.writeFileSync(
      `${dir}.nft`,
      compileFilterChain({
        table: "hostnet",
        ports: [
          {
            port: INNER.innerTap,
            policy: "clean-traffic",
            mac: vmMac(i),
            ipv4: [vmIp(i)],
          },
        ],
      }).script,
    );
    script.push(
      `ip netns exec ${vmNs(i)} sh -c '${NO_IPV6} && ip -batch ${dir}.ip && nft -f ${dir}.nft'`,
    );
  }
  await run("sh", ["-c", script.join("\n")], `build ${n} isolated-netns VMs`);
  const flags = hostPortFlags(vmSpec(1, false));
  const lines = range(n).map((i) =>
    batchLine(["link", "set", hostPort(i), "master", BRIDGE, "up"]),
  );
  await ipBatch(BR_NS, lines, `attach ${n} host ports to hnbd-br`);
  if (flags !== undefined)
    await bridgeBatch(
      BR_NS,
      range(n).flatMap((i) => portFlagLines(hostPort(i), flags)),
      "host port flags",
    );
}

/* ----------------------------------------------------------------------------------------- */
/* (f)/(f0): one L2 segment over three hosts (VXLAN)                                          */
/* ----------------------------------------------------------------------------------------- */

/**
 * Host 1 is hnbd-br (the sender's host, built by buildBase), hosts 2 and 3 are hnbd-h2/hnbd-h3,
 * each with bridge hnbd-br and N VM ports; VM (h - 1) * N + i sits on port i of host h. The
 * underlay is bridge hnbd-ul in netns hnbd-ul, one veth per host (ul0 in the host, 198.19.250.h/24).
 */
export const SEG_HOSTS = [1, 2, 3];
const UL_NS = "hnbd-ul";
const UL_BRIDGE = "hnbd-ul";
const UL_IF = "ul0";
const VXLAN = "hnbd-vx";
const VNI = 4242;
const hostNs = (h: number): string => (h === 1 ? BR_NS : `hnbd-h${h}`);
const ulPort = (h: number): string => `hnbd-u${h}`;
export const underlayIp = (h: number): string => `198.19.250.${h}`;
/** Global VM index of port i on host h. */
const segVm = (n: number, h: number, i: number): number => (h - 1) * n + i;

/** One `ip -batch` or `bridge -batch` run. */
export interface Batch {
  tool: "ip" | "bridge";
  lines: string[];
}

/** Consecutive batches of one tool merged into one run (order kept). */
export function mergeBatches(bs: readonly Batch[]): Batch[] {
  const out: Batch[] = [];
  for (const b of bs) {
    const last = out[out.length - 1];
    if (last?.tool === b.tool) last.lines.push(...b.lines);
    else out.push({ tool: b.tool, lines: [...b.lines] });
  }
  return out;
}

/** The plan's host operations as batches, consecutive operations of one tool merged (order kept). */
export function stepBatches(steps: readonly Step[]): Batch[] {
  return mergeBatches(
    steps.map(({ op }) => {
      if (op.kind !== "batch")
        throw new Error(
          `dataplane bench: a planner produced a ${op.kind} operation (${op.what}); the segment case runs only ip/bridge batches`,
        );
      return { tool: op.tool, lines: op.lines };
    }),
  );
}

/** A member VM of the segment as hostnet's FdbEntry sees it on host h. */
interface SegMember {
  mac: string;
  ip: string;
  host: number;
  port: string;
}

function segMembers(n: number): SegMember[] {
  const vms = SEG_HOSTS.flatMap((h) =>
    range(n).map((i) => ({
      mac: vmMac(segVm(n, h, i)),
      ip: vmIp(segVm(n, h, i)),
      host: h,
      port: port(i),
    })),
  );
  // the sender is a VM of host 1 too
  return [{ mac: SND_MAC, ip: SND_IP, host: 1, port: SND_PORT }, ...vms];
}

/**
 * What one host of the segment runs after its VM ports exist. (f), hostnet's segment: the
 * VxlanDevice and FdbEntry planners' own creation plans (vxlan learning off; learning/flood off and
 * neigh_suppress on its port; per VM of the segment a static fdb entry, at its port where local and
 * at the vxlan device with the remote host's underlay address elsewhere, plus its permanent
 * neighbour), and on the VM ports the flags hostPortFlags() sets for managedFdb without
 * arpSuppress (stacks/config.ts refuses arpSuppress for a segment VM: the bridge does not answer
 * requests that arrive on a neigh_suppress port). (f1): (f) with neigh_suppress on the VM ports
 * too (managedFdb + arpSuppress), which also spares host 1's own VMs the request; the sender's
 * port keeps the kernel defaults there, as in (e). (f0), the baseline: the device with learning on and the
 * kernel's port flags, plus head-end replication, an all-zeros entry per remote host (no hostnet
 * kind writes those: the one hand-written command here).
 */
export function segmentHostBatches(
  c: "f" | "f0" | "f1",
  h: number,
  n: number,
): Batch[] {
  const flooding = c === "f0";
  const device = VxlanDeviceProps.parse({
    name: VXLAN,
    vni: VNI,
    local: underlayIp(h),
    bridge: BRIDGE,
    learning: flooding,
    ...(flooding ? { portFlags: {} } : {}),
  });
  const steps: Step[] = [...vxlanDevicePlanner.plan(device, undefined, {})];
  if (flooding) {
    const heads = SEG_HOSTS.filter((x) => x !== h).map((x) =>
      batchLine([
        "fdb",
        "append",
        "00:00:00:00:00:00",
        "dev",
        VXLAN,
        "dst",
        underlayIp(x),
      ]),
    );
    return mergeBatches([
      ...stepBatches(steps),
      { tool: "bridge", lines: heads },
    ]);
  }
  const flags = range(n).flatMap((i) =>
    portFlagLines(
      port(i),
      hostPortFlags(vmSpec(segVm(n, h, i), true, c === "f1")),
    ),
  );
  const entries = segMembers(n).flatMap((m) =>
    fdbEntryPlanner.plan(
      FdbEntryProps.parse({
        bridge: BRIDGE,
        mac: m.mac,
        neighbours: [m.ip],
        ...(m.host === h
          ? { port: m.port }
          : { port: VXLAN, remote: { dst: underlayIp(m.host), vni: VNI } }),
      }),
      undefined,
      {},
    ),
  );
  // Each entry's plan alternates bridge (fdb) and ip (neighbour) steps, and the neighbours do not
  // depend on the fdb entries: all fdb lines in one batch, then all neighbours (2 runs, not 3 per VM).
  const ofTool = (tool: Batch["tool"]): Step[] =>
    entries.filter((s) => s.op.kind === "batch" && s.op.tool === tool);
  return mergeBatches([
    ...stepBatches(steps),
    { tool: "bridge", lines: flags },
    ...stepBatches([...ofTool("bridge"), ...ofTool("ip")]),
  ]);
}

async function runBatches(
  ns: string,
  batches: Batch[],
  what: string,
): Promise<void> {
  for (const b of batches)
    if (b.lines.length > 0)
      await (b.tool === "ip" ? ipBatch : bridgeBatch)(ns, b.lines, what);
}

async function buildSegment(
  c: "f" | "f0" | "f1" | "f2",
  n: number,
): Promise<void> {
  await buildBase(); // host 1 = hnbd-br, with the sender
  const others = SEG_HOSTS.filter((h) => h !== 1).map(hostNs);
  await ipBatch(
    undefined,
    [UL_NS, ...others].map((ns) => batchLine(["netns", "add", ns])),
    `create namespaces ${UL_NS}, ${others.join(", ")}`,
  );
  for (const ns of [UL_NS, ...others])
    await inNs(ns, ["sh", "-c", NO_IPV6], `disable IPv6 in ${ns}`);
  const bridgeUp = (name: string): string[] => [
    "link set lo up",
    batchLine(["link", "add", name, "type", "bridge", "stp_state", "0"]),
    batchLine(["link", "set", name, "up"]),
  ];
  await ipBatch(
    UL_NS,
    [
      ...bridgeUp(UL_BRIDGE),
      ...SEG_HOSTS.flatMap((h) => [
        batchLine([
          "link",
          "add",
          ulPort(h),
          "type",
          "veth",
          "peer",
          "name",
          UL_IF,
          "netns",
          hostNs(h),
        ]),
        batchLine(["link", "set", ulPort(h), "master", UL_BRIDGE, "up"]),
      ]),
    ],
    "create the underlay bridge hnbd-ul and one veth per host",
  );
  for (const h of SEG_HOSTS) {
    await ipBatch(
      hostNs(h),
      [
        ...(h === 1 ? [] : bridgeUp(BRIDGE)),
        batchLine(["addr", "add", `${underlayIp(h)}/24`, "dev", UL_IF]),
        batchLine(["link", "set", UL_IF, "up"]),
      ],
      `underlay address and bridge of host ${h} (${hostNs(h)})`,
    );
    await buildPorts(n, hostNs(h), segVm(n, h, 0));
    await runBatches(
      hostNs(h),
      segmentHostBatches(c === "f2" ? "f" : c, h, n),
      `(${c}) segment on host ${h} (${hostNs(h)})`,
    );
  }
  // (f2): host 1 answers its VMs' requests for any segment member at their ports' ingress
  if (c === "f2")
    await loadNft(
      BR_NS,
      arpAnswerTable(
        [SND_PORT, ...range(n).map(port)],
        segMembers(n).map((m) => ({ ip: m.ip, mac: m.mac })),
      ),
      `load the ARP answer table on host 1's ${n} VM ports and the sender's port`,
    );
}

/**
 * What the sender sends: broadcast ARP requests for `targets` (its own builder), or, in the ingress
 * cases, the given frames (hex).
 */
type SenderLoad = { targets: string[] } | { hexFrames: string[] };

/** (f)/(f0): the sender on host 1 asks for the VMs of host 3; (g)–(i1): ingressFrames; otherwise ARP for the bridge's N VMs. */
function loadOf(c: CaseId, n: number): SenderLoad {
  if (isIngress(c))
    return { hexFrames: ingressFrames(c, n).map((f) => f.toString("hex")) };
  return {
    targets: isSegment(c)
      ? range(n).map((i) => vmIp(segVm(n, 3, i)))
      : range(n).map(vmIp),
  };
}

async function buildCase(c: CaseId, n: number, tmp: string): Promise<void> {
  if (isSegment(c)) return buildSegment(c, n);
  await buildBase();
  if (c === "d") return buildIsolated(n, tmp);
  await buildPorts(n);
  if (c === "b")
    await inNs(
      BR_NS,
      ["ebtables-nft-restore"],
      `load ${n} libvirt-style ebtables chains into netns hnbd-br`,
      libvirtEbtables(n),
    );
  if (c === "c" || c === "e" || c === "e1")
    await loadNft(
      BR_NS,
      hostnetFilter(n),
      `load hostnet FilterChain for ${n} ports into netns hnbd-br`,
    );
  if (c === "c4")
    await loadNft(
      BR_NS,
      withoutArpFastPaths(hostnetFilter(n)),
      `load FilterChain without the broadcast-ARP fast paths for ${n} ports`,
    );
  if (c === "c6")
    await loadNft(
      BR_NS,
      withoutBaseFastPath(hostnetFilter(n)),
      `load FilterChain without the forward hook's fast path for ${n} ports`,
    );
  if (c === "c1")
    await loadNft(
      BR_NS,
      fromVmInPrerouting(hostnetFilter(n)),
      `load FilterChain (from-vm in prerouting) for ${n} ports`,
    );
  if (c === "c3")
    await loadNft(
      BR_NS,
      keyedByIndex(hostnetFilter(n)),
      `load FilterChain keyed by ifindex for ${n} ports`,
    );
  if (c === "c2")
    await loadNft(BR_NS, FLOOR_TABLE, "load an empty forward chain");
  if (c === "c0")
    await loadNft(
      BR_NS,
      withoutBaseFastPath(hostnetFilter(n, "accept-all")), // dispatch only: every clone is dispatched
      `load accept-all FilterChain for ${n} ports into netns hnbd-br`,
    );
  if (c === "e" || c === "e1") await buildSuppression(n);
  if (c === "e1") await loadArpTable(n);
  if (isIngress(c)) await buildIngress(c, n);
}

/**
 * Every port must be forwarding before frames are sent. STP is off, but a veth's carrier reaches
 * the bridge through linkwatch, which batches events for up to a second.
 */
async function awaitForwarding(expected: number, ns = BR_NS): Promise<void> {
  let fwd = 0;
  for (let k = 0; k < 50; k++) {
    const r = await run(
      "bridge",
      ["-n", ns, "-j", "link", "show"],
      `read bridge ports in netns ${ns}`,
    );
    fwd = (JSON.parse(r.stdout) as { state?: string }[]).filter(
      (p) => p.state === "forwarding",
    ).length;
    if (fwd >= expected) return;
    await sleep(200);
  }
  throw new Error(
    `dataplane bench: after 10 s only ${fwd} of ${expected} bridge ports in netns ${ns} are forwarding; check 'bridge -n ${ns} link'`,
  );
}

/** Every bridge of the case forwards: N VM ports + the sender (+ the vxlan device on each segment host). */
async function awaitCase(c: CaseId, n: number): Promise<void> {
  if (!isSegment(c)) return awaitForwarding(n + 1);
  await awaitForwarding(SEG_HOSTS.length, UL_NS);
  for (const h of SEG_HOSTS)
    await awaitForwarding(n + (h === 1 ? 2 : 1), hostNs(h));
}

/* ----------------------------------------------------------------------------------------- */
/* Measuring                                                                                  */
/* ----------------------------------------------------------------------------------------- */

/**
 * The sender: AF_PACKET raw socket on snd0, pinned to one CPU, broadcast ARP requests for the VMs'
 * addresses (or, in the ingress cases, the frames it is given) round robin at a fixed rate. It times its own send() calls with the thread CPU clock
 * (includes the bridge work the kernel runs in softirq on return from the syscall) and snapshots
 * /proc/stat and ksoftirqd's schedstat right around the send window.
 */
const SENDER = String.raw`import json, os, socket, struct, sys, time
a = json.loads(sys.argv[1])
with open("/proc/self/comm", "w") as f:
    f.write("hnbd-send")
os.sched_setaffinity(0, {a["cpu"]})
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind((a["ifname"], 0))
mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
src = mac(a["srcMac"])
arp = lambda t: (b"\xff" * 6 + src + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src
                 + socket.inet_aton(a["srcIp"]) + b"\x00" * 6 + socket.inet_aton(t)).ljust(60, b"\x00")
if "framesFile" in a:
    with open(a["framesFile"]) as f:
        frames = [bytes.fromhex(h) for h in f.read().split()]
else:
    frames = [arp(t) for t in a["targets"]]
def snap():
    with open("/proc/stat") as f:
        stat = [l for l in f.read().split("\n") if l.startswith("cpu")]
    with open("/proc/%d/schedstat" % a["ksoftirqd"]) as f:
        ks = int(f.read().split()[0])
    with open("/proc/net/softnet_stat") as f:
        sn = f.read()
    return {"t": time.monotonic_ns(), "stat": stat, "ksoft": ks, "softnet": sn}
tt = time.thread_time_ns
c = 0
for _ in range(5000):
    c0 = tt(); c += tt() - c0
calib = c / 5000
for i in range(a["warm"]):
    s.send(frames[i % len(frames)])
time.sleep(0.2)
n, rate, acc, late = a["frames"], a["rate"], 0, 0.0
ctl = open(a["perfCtl"], "w", buffering=1) if a.get("perfCtl") else None
if ctl:
    ctl.write("enable\n")
s0 = snap()
t0 = time.monotonic()
for i in range(n):
    d = t0 + i / rate - time.monotonic()
    if d > 0:
        time.sleep(d)
    else:
        late = max(late, -d)
    c0 = tt(); s.send(frames[i % len(frames)]); acc += tt() - c0
time.sleep(a["drainMs"] / 1000)
s1 = snap()
if ctl:
    ctl.write("disable\n")
    ctl.close()
print(json.dumps({"pid": os.getpid(), "sent": n, "warm": a["warm"], "sendCpuNs": acc, "calibNs": calib, "lateMaxMs": late * 1000, "s0": s0, "s1": s1}))
`;

interface Snap {
  t: number;
  stat: string[];
  ksoft: number;
  softnet: string;
}

interface CpuTicks {
  busy: number;
  idle: number;
  softirq: number;
  total: number;
}

/** /proc/stat "cpu" lines → ticks; busy excludes idle, iowait and steal (time not ours). */
function parseStat(lines: string[]): Map<string, CpuTicks> {
  const m = new Map<string, CpuTicks>();
  for (const l of lines) {
    const [name, ...f] = l.trim().split(/\s+/);
    const v = f.slice(0, 8).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = v.map(
      (x) => x || 0,
    ) as [number, number, number, number, number, number, number, number];
    m.set(name ?? "", {
      busy: user + nice + system + irq + softirq,
      idle: idle + iowait,
      softirq,
      total: user + nice + system + idle + iowait + irq + softirq + steal,
    });
  }
  return m;
}

/** /proc/net/softnet_stat of one CPU: column 2 = backlog drops, column 3 = time_squeeze (budget ran out). */
function softnet(
  text: string,
  cpu: number,
): { dropped: number; squeezed: number } {
  const f = (text.trim().split("\n")[cpu] ?? "").trim().split(/\s+/);
  return {
    dropped: parseInt(f[1] ?? "0", 16) || 0,
    squeezed: parseInt(f[2] ?? "0", 16) || 0,
  };
}

function ksoftirqdPid(cpu: number): number {
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (
        fs.readFileSync(`/proc/${d}/comm`, "utf8").trim() === `ksoftirqd/${cpu}`
      )
        return Number(d);
    } catch {
      /* exited */
    }
  }
  throw new Error(
    `dataplane bench: no ksoftirqd/${cpu} thread found; is CPU ${cpu} online? (pass cpu: <n>)`,
  );
}

function localSnap(ksoftirqd: number): Snap {
  return {
    t: Number(process.hrtime.bigint()),
    stat: fs
      .readFileSync("/proc/stat", "utf8")
      .split("\n")
      .filter((l) => l.startsWith("cpu")),
    ksoft: Number(
      fs.readFileSync(`/proc/${ksoftirqd}/schedstat`, "utf8").split(" ")[0],
    ),
    softnet: fs.readFileSync("/proc/net/softnet_stat", "utf8"),
  };
}

interface Window {
  s: number;
  busyAll: number;
  busyCpu: number;
  softirqCpu: number;
  idleCpu: number;
  totalCpu: number;
  ksoftNs: number;
}

function windowOf(a: Snap, b: Snap, cpu: number): Window {
  const A = parseStat(a.stat);
  const B = parseStat(b.stat);
  const d = (name: string, k: keyof CpuTicks): number =>
    (B.get(name)?.[k] ?? 0) - (A.get(name)?.[k] ?? 0);
  const c = `cpu${cpu}`;
  return {
    s: (b.t - a.t) / 1e9,
    busyAll: d("cpu", "busy"),
    busyCpu: d(c, "busy"),
    softirqCpu: d(c, "softirq"),
    idleCpu: d(c, "idle"),
    totalCpu: d(c, "total"),
    ksoftNs: b.ksoft - a.ksoft,
  };
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0)
    clkTck =
      Number(
        spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim(),
      ) || 100;
  return clkTck;
}

function pythonPath(): string {
  return fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

interface SendOut {
  pid: number;
  sent: number;
  warm: number;
  sendCpuNs: number;
  calibNs: number;
  lateMaxMs: number;
  s0: Snap;
  s1: Snap;
}

function writeFrames(tmp: string, hexFrames: string[]): string {
  const file = path.join(tmp, "frames.hex");
  fs.writeFileSync(file, hexFrames.join("\n") + "\n");
  return file;
}

/** argv that runs the sender in netns hnbd-snd (given frames go through a file: argv is too small for 1,000). */
function senderArgv(
  tmp: string,
  load: SenderLoad,
  frames: number,
  o: Required<Pick<DataplaneOptions, "rate" | "cpu">>,
  ksoftirqd: number,
  perfCtl?: string,
): string[] {
  const arg = {
    cpu: o.cpu,
    ifname: SND_IF,
    srcMac: SND_MAC,
    srcIp: SND_IP,
    ...("targets" in load
      ? { targets: load.targets }
      : { framesFile: writeFrames(tmp, load.hexFrames) }),
    ksoftirqd,
    frames,
    rate: o.rate,
    warm: WARM,
    drainMs: 200,
    perfCtl,
  };
  return [
    "ip",
    "netns",
    "exec",
    SND_NS,
    pythonPath(),
    path.join(tmp, "send.py"),
    JSON.stringify(arg),
  ];
}

async function send(
  tmp: string,
  load: SenderLoad,
  frames: number,
  o: Required<Pick<DataplaneOptions, "rate" | "cpu">>,
  ksoftirqd: number,
): Promise<SendOut> {
  const [cmd, ...args] = senderArgv(tmp, load, frames, o, ksoftirqd);
  const r = await run(cmd!, args, "send the frames from netns hnbd-snd");
  return JSON.parse(r.stdout) as SendOut;
}

/** One repetition: baseline (half before, half after, same total length as the send window). */
async function measureRep(
  tmp: string,
  load: SenderLoad,
  o: Required<DataplaneOptions>,
  ksoftirqd: number,
): Promise<RepResult> {
  const planned = o.frames / o.rate + 0.2;
  const b0 = localSnap(ksoftirqd);
  await sleep((planned / 2) * 1000);
  const b1 = localSnap(ksoftirqd);
  const out = await send(tmp, load, o.frames, o, ksoftirqd);
  const w = windowOf(out.s0, out.s1, o.cpu);
  const b2 = localSnap(ksoftirqd);
  await sleep((w.s / 2) * 1000);
  const b3 = localSnap(ksoftirqd);
  const pre = windowOf(b0, b1, o.cpu);
  const post = windowOf(b2, b3, o.cpu);
  const base = (k: keyof Window): number =>
    ((pre[k] + post[k]) / (pre.s + post.s)) * w.s;
  const tickUs = 1e6 / ticksPerSecond();
  const perFrame = (x: number): number => x / out.sent;
  const sendCpuUs = perFrame((out.sendCpuNs - out.calibNs * out.sent) / 1000);
  const sn0 = softnet(out.s0.softnet, o.cpu);
  const sn1 = softnet(out.s1.softnet, o.cpu);
  const squeezes = sn1.squeezed - sn0.squeezed;
  // Our flood reaches ksoftirqd only when net_rx_action ran out of budget (time_squeeze); otherwise
  // ksoftirqd's time is other people's softirqs and counting it would only add their noise.
  const ksoftirqdUs =
    squeezes > 0 ? perFrame((w.ksoftNs - base("ksoftNs")) / 1000) : 0;
  const idleFractionCpu = w.totalCpu > 0 ? w.idleCpu / w.totalCpu : 0;
  return {
    sent: out.sent,
    wallS: w.s,
    sendCpuUs,
    ksoftirqdUs,
    attributedUs: sendCpuUs + ksoftirqdUs,
    softirqUs: perFrame((w.softirqCpu - base("softirqCpu")) * tickUs),
    procStatUs: perFrame((w.busyAll - base("busyAll")) * tickUs),
    procStatCpuUs: perFrame((w.busyCpu - base("busyCpu")) * tickUs),
    procStatValid: idleFractionCpu >= 0.05,
    idleFractionCpu,
    softnetDrops: sn1.dropped - sn0.dropped,
    squeezes,
    lateMaxMs: out.lateMaxMs,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length === 0
    ? NaN
    : s.length % 2 === 1
      ? s[m]!
      : (s[m - 1]! + s[m]!) / 2;
}

/* ----------------------------------------------------------------------------------------- */
/* Verification: the topology did what the case claims                                       */
/* ----------------------------------------------------------------------------------------- */

async function rxPackets(
  ns: string,
  names: Set<string>,
  dir: "rx" | "tx" = "rx",
): Promise<number> {
  const r = await run(
    "ip",
    ["-n", ns, "-s", "-j", "link", "show"],
    `read link counters in ${ns}`,
  );
  const links = JSON.parse(r.stdout) as {
    ifname: string;
    stats64?: Record<"rx" | "tx", { packets?: number } | undefined>;
  }[];
  return links
    .filter((l) => names.has(l.ifname))
    .reduce((s, l) => s + (l.stats64?.[dir]?.packets ?? 0), 0);
}

/**
 * (f)/(f0): clones that reached the VM ports of each host, frames the hosts put on the underlay
 * (rx of the underlay bridge's ports: VXLAN packets plus the hosts' few underlay ARPs), packets
 * host 1's vxlan device sent, and the bridge's replies to the sender, all per request.
 */
async function verifySegment(
  c: CaseId,
  n: number,
  totalSent: number,
): Promise<Record<string, number | string | boolean>> {
  const per = (x: number): number => round(x / totalSent, 2);
  const v: Record<string, number | string | boolean> = {};
  for (const h of SEG_HOSTS) {
    const clones = per(await rxPackets(hostNs(h), new Set(range(n).map(peer))));
    v[h === 1 ? "clonesPerFrame" : `clonesHost${h}`] = clones;
  }
  v.underlayFramesPerRequest = per(
    await rxPackets(UL_NS, new Set(SEG_HOSTS.map(ulPort))),
  );
  v.vxlanTxPerRequest = per(await rxPackets(BR_NS, new Set([VXLAN]), "tx"));
  v.repliesPerFrame = per(await rxPackets(SND_NS, new Set([SND_IF])));
  v.bridgeRxPerFrame = per(await rxPackets(BR_NS, new Set([BRIDGE])));
  if (c === "f2") v.answeredPerFrame = await arpAnswered(BR_NS, totalSent);
  return v;
}

async function verifyCase(
  c: CaseId,
  n: number,
  totalSent: number,
): Promise<Record<string, number | string | boolean>> {
  if (isSegment(c)) return verifySegment(c, n, totalSent);
  const v: Record<string, number | string | boolean> = {};
  if (c === "d") {
    const sample = [1, Math.ceil(n / 2), n];
    let rx = 0;
    for (const i of sample) rx += await rxPackets(vmNs(i), new Set([TAP_PEER]));
    v.clonesPerFrame = round((rx / sample.length / totalSent) * n, 2);
    const t = await inNs(
      vmNs(n),
      ["nft", "list", "tables"],
      `list nft tables in ${vmNs(n)}`,
    );
    v.vmTableLoaded = t.stdout.includes("table bridge hostnet");
  } else {
    v.clonesPerFrame = round(
      (await rxPackets(BR_NS, new Set(range(n).map(peer)))) / totalSent,
      2,
    );
  }
  if (c === "b") Object.assign(v, await verifyEbtables(n, totalSent));
  if (FILTERED.includes(c)) {
    const t = await inNs(
      BR_NS,
      ["nft", "-j", "list", "map", "bridge", "hostnet", "to_vm"],
      "read map to_vm",
    );
    v.toVmMapElements = (t.stdout.match(/"jump"/g) ?? []).length;
  }
  if (c === "e" || c === "e1" || isIngress(c)) {
    v.repliesPerFrame = round(
      (await rxPackets(SND_NS, new Set([SND_IF]))) / totalSent,
      2,
    );
    // frames the bridge delivered to itself (the request, when it enters the bridge)
    v.bridgeRxPerFrame = round(
      (await rxPackets(BR_NS, new Set([BRIDGE]))) / totalSent,
      2,
    );
  }
  if (c === "e1" || withArpTable(c))
    v.answeredPerFrame = await arpAnswered(BR_NS, totalSent);
  if (withArpTable(c)) Object.assign(v, await arpHooked(BR_NS));
  return v;
}

/** (e1)/(f2): requests the ARP answer table rewrote into replies (its rule counters), per frame. */
async function arpAnswered(ns: string, totalSent: number): Promise<number> {
  const r = await inNs(
    ns,
    ["nft", "-j", "list", "table", "netdev", ARP_TABLE],
    `read the ARP answer table in ${ns}`,
  );
  const packets = [
    ...r.stdout.matchAll(/"counter":\s*\{\s*"packets":\s*(\d+)/g),
  ]
    .map((m) => Number(m[1]))
    .reduce((a, b) => a + b, 0);
  return round(packets / totalSent, 2);
}

/** (g1)/(h1)/(i1): the ports the ARP answer table's ingress chains are hooked on. */
async function arpHooked(
  ns: string,
): Promise<{ hookedPorts: number; senderPortHooked: boolean }> {
  // the text listing: nft 1.0.6's JSON leaves a netdev chain's devices out
  const r = await inNs(
    ns,
    ["nft", "list", "table", "netdev", ARP_TABLE],
    `read the ARP answer table's chains in ${ns}`,
  );
  const devs = hookedDevices(r.stdout);
  return {
    hookedPorts: devs.length,
    senderPortHooked: devs.includes(SND_PORT),
  };
}

/** The devices of every ingress chain in `nft list` text (`device x` or `devices = { x, "y-z" }`). */
export function hookedDevices(listing: string): string[] {
  return [
    ...listing.matchAll(
      /hook ingress (?:devices = \{([^}]*)\}|device ("[^"]*"|\S+))/g,
    ),
  ].flatMap((m) =>
    (m[1] ?? m[2] ?? "")
      .split(",")
      .map((d) => d.trim().replace(/^"(.*)"$/, "$1"))
      .filter((d) => d !== ""),
  );
}

/** ebtables-nft keeps its rules in the namespace's own nft table `bridge nat`: read the jump counters. */
async function verifyEbtables(
  n: number,
  totalSent: number,
): Promise<Record<string, number | string | boolean>> {
  const r = await inNs(
    BR_NS,
    ["nft", "-j", "list", "chain", "bridge", "nat", "POSTROUTING"],
    "read ebtables POSTROUTING in netns hnbd-br",
  );
  const rules = (
    JSON.parse(r.stdout) as {
      nftables: { rule?: { expr: Record<string, { packets?: number }>[] } }[];
    }
  ).nftables.filter((x) => x.rule !== undefined);
  const packets = rules.map(
    (x) =>
      x.rule!.expr.find((e) => e.counter !== undefined)?.counter?.packets ?? 0,
  );
  const snd = await inNs(
    SND_NS,
    ["nft", "list", "tables"],
    "list nft tables in netns hnbd-snd",
  );
  return {
    ebtablesNetns: BR_NS,
    ebtablesJumpRules: rules.length,
    ebtablesJumpsPerFrame: round(
      packets.reduce((s, p) => s + p, 0) / totalSent,
      2,
    ),
    ebtablesRulesWalkedPerFrame: round(
      packets.reduce((s, p, k) => s + p * (k + 1), 0) / totalSent,
      0,
    ),
    ebtablesAbsentInSenderNetns: !snd.stdout.includes("bridge nat"),
  };
}

/** What would make a case's figure meaningless: the topology did not do what the case claims. */
function problems(
  c: CaseId,
  n: number,
  v: Record<string, number | string | boolean>,
): string[] {
  const out: string[] = [];
  const clones = Number(v.clonesPerFrame);
  const answers = c === "e" || c === "e1";
  if (answers && clones > 0.05 * n)
    out.push(
      `${clones} clones per frame reached the VM ports: ARP suppression did not take`,
    );
  if (answers && Number(v.repliesPerFrame) < 0.95)
    out.push(
      `only ${v.repliesPerFrame} replies per request: nobody answered for the known VMs`,
    );
  if (c === "e1" && Number(v.bridgeRxPerFrame) > 0.05)
    out.push(
      `the bridge received ${v.bridgeRxPerFrame} frames per request: requests were not answered at the port's ingress`,
    );
  if (c === "e1" && Number(v.answeredPerFrame) < 0.95)
    out.push(
      `the ARP answer rule matched ${v.answeredPerFrame} times per request, expected 1`,
    );
  if (isSegment(c)) return out.concat(segmentProblems(c, n, v));
  if (isIngress(c)) return ingressProblems(c, n, v);
  if (!answers && clones < 0.95 * n)
    out.push(`only ${clones} of ${n} clones per frame reached the VM ports`);
  if (c === "b" && Number(v.ebtablesJumpsPerFrame) < 0.95 * n)
    out.push(
      `ebtables jumps per frame ${v.ebtablesJumpsPerFrame} < N: the per-port chains were not walked`,
    );
  if (FILTERED.includes(c) && v.toVmMapElements !== n)
    out.push(`to_vm map has ${v.toVmMapElements} elements, expected ${n}`);
  if (c === "d" && v.vmTableLoaded !== true)
    out.push("the VM namespace has no hostnet table");
  return out;
}

/** (f): nothing flooded, nothing on the underlay, every request answered; (f0): flooded everywhere. */
function segmentProblems(
  c: CaseId,
  n: number,
  v: Record<string, number | string | boolean>,
): string[] {
  const out: string[] = [];
  const clones = ["clonesPerFrame", "clonesHost2", "clonesHost3"].map((k) =>
    Number(v[k]),
  );
  const ul = Number(v.underlayFramesPerRequest);
  if (c === "f" || c === "f1" || c === "f2") {
    // (f): host 1's own VM ports (no neigh_suppress) still get the request; (f1), (f2): nobody does
    const [h1, ...remote] = clones;
    if (remote.some((x) => x > 0.05 * n) || (c !== "f" && h1! > 0.05 * n))
      out.push(
        `clones per request on hosts 1/2/3 ${clones.join("/")}: ARP suppression did not take`,
      );
    if (c === "f" && h1! < 0.95 * n)
      out.push(
        `${h1} clones per request on host 1, expected ${n}: its VM ports have no neigh_suppress`,
      );
    if (ul > 0.05) out.push(`${ul} underlay frames per request, expected 0`);
    if (Number(v.repliesPerFrame) < 0.95)
      out.push(
        `only ${v.repliesPerFrame} replies per request: host 1 did not answer for host 3's VMs`,
      );
    if (c === "f2" && Number(v.bridgeRxPerFrame) > 0.05)
      out.push(
        `host 1's bridge received ${v.bridgeRxPerFrame} frames per request: requests were not answered at the port's ingress`,
      );
  } else {
    if (clones.some((x) => x < 0.95 * n))
      out.push(
        `clones per request on hosts 1/2/3 ${clones.join("/")}, expected ${n} each: the segment did not flood`,
      );
    if (ul < 1.9)
      out.push(
        `${ul} underlay frames per request, expected 2 (head-end replication)`,
      );
  }
  return out;
}

/** (g)–(i1): each frame reached exactly its VM(s), the bridge did what it does without the table, nothing was answered. */
export function ingressProblems(
  c: IngressCase,
  n: number,
  v: Record<string, number | string | boolean>,
): string[] {
  const out: string[] = [];
  const clones = Number(v.clonesPerFrame);
  const bridgeRx = Number(v.bridgeRxPerFrame);
  if (c === "h" || c === "h1") {
    if (clones < 0.95 * n)
      out.push(
        `only ${clones} of ${n} clones per broadcast frame reached the VM ports`,
      );
    if (bridgeRx < 0.95)
      out.push(
        `the bridge device received ${bridgeRx} frames per broadcast frame, expected 1 (its local copy)`,
      );
  } else {
    if (clones < 0.95)
      out.push(
        `${clones} frames per unicast frame reached the VM ports, expected 1: frames were lost`,
      );
    if (clones > 1.5)
      out.push(
        `${clones} frames per unicast frame reached the VM ports, expected 1: the bridge flooded them (static fdb entries missing?)`,
      );
    if (bridgeRx > 0.05)
      out.push(
        `the bridge device received ${bridgeRx} frames per unicast frame, expected 0`,
      );
  }
  if (Number(v.repliesPerFrame) > 0.05)
    out.push(
      `the sender received ${v.repliesPerFrame} frames per frame sent, expected 0: something answered`,
    );
  if (withArpTable(c)) {
    if (Number(v.answeredPerFrame) > 0)
      out.push(
        `the ARP answer rule matched ${v.answeredPerFrame} times per frame: it answered a frame it must let through`,
      );
    if (v.hookedPorts !== n + 1 || v.senderPortHooked !== true)
      out.push(
        `the ARP answer table is hooked on ${v.hookedPorts} ports (sender's port: ${v.senderPortHooked}), expected the ${n} VM ports and the sender's`,
      );
  }
  return out;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/* ----------------------------------------------------------------------------------------- */
/* Profiling a missed target (perf, optional)                                                 */
/* ----------------------------------------------------------------------------------------- */

function hasPerf(): boolean {
  return spawnSync("perf", ["--version"]).status === 0;
}

/** perf's sampling rate (cpu-clock, Hz): one sample stands for 1e6 / PERF_HZ µs on the sender's CPU. */
const PERF_HZ = 10000;

/** `perf report --stdio --sort sym` lines of kernel symbols ([k]), with the sample count where -n gave one. */
export function perfKernelSymbols(
  report: string,
): { pct: number; samples?: number; sym: string }[] {
  return [
    ...report.matchAll(/^\s+([\d.]+)%\s+(?:(\d+)\s+)?\[k\]\s+(\S+)/gm),
  ].map((m) => ({
    pct: Number(m[1]),
    ...(m[2] === undefined ? {} : { samples: Number(m[2]) }),
    sym: m[3]!,
  }));
}

async function profileCase(
  c: CaseId,
  n: number,
  reason: string,
  tmp: string,
  o: Required<DataplaneOptions>,
  ksoftirqd: number,
): Promise<ProfileResult> {
  const data = path.join(tmp, `perf-${c}-${n}.data`);
  try {
    cleanupSync();
    await sleep(5000); // namespace teardown runs RCU callbacks for a while; keep them out of the samples
    await buildCase(c, n, tmp);
    await awaitCase(c, n);
    // (e) and the ingress cases cost little per frame: more frames for enough samples
    const boost = c === "e" || c === "e1" ? 5 : isIngress(c) ? 10 : 1;
    // perf starts the sender, disabled; the sender enables sampling for exactly its send window
    const ctl = path.join(tmp, "perf-ctl");
    fs.rmSync(ctl, { force: true });
    await run("mkfifo", [ctl], "create perf control fifo");
    const rec = await run(
      "perf",
      [
        "record",
        "-q",
        "-D",
        "-1",
        "--control",
        `fifo:${ctl}`,
        "-e",
        "cpu-clock",
        "-F",
        String(PERF_HZ),
        "-C",
        String(o.cpu),
        "-o",
        data,
        "--",
        ...senderArgv(
          tmp,
          loadOf(c, n),
          o.frames * boost,
          { cpu: o.cpu, rate: o.rate * boost },
          ksoftirqd,
          ctl,
        ),
      ],
      "perf record of the sender",
    );
    // by pid, not comm: perf sometimes misses the workload's exec and files its samples under "perf-exec"
    const pid = String((JSON.parse(rec.stdout) as SendOut).pid);
    const rep = await run(
      "perf",
      [
        "report",
        "-i",
        data,
        "--stdio",
        "--no-children",
        "--percentage",
        "relative",
        "--pid",
        pid,
        "--sort",
        "sym",
        "-g",
        "none",
        "--percent-limit",
        // the ingress cases count nft_* samples, small symbols too (-n: sample counts)
        ...(isIngress(c) ? ["0", "-n"] : ["1"]),
      ],
      "perf report",
    );
    // kernel symbols only: the sender's own Python loop is not data plane
    const kernel = perfKernelSymbols(rep.stdout);
    const top = kernel.slice(0, 12).map(({ pct, sym }) => ({ pct, sym }));
    const samples = (xs: typeof kernel): number =>
      xs.reduce((a, x) => a + (x.samples ?? 0), 0);
    const perFrame = (k: number): number =>
      round((k * (1e6 / PERF_HZ)) / (o.frames * boost), 3);
    const nftSamples = samples(kernel.filter((x) => x.sym.startsWith("nft_")));
    const shares = isIngress(c)
      ? {
          nftSamples,
          nftUsPerFrame: perFrame(nftSamples),
          kernelUsPerFrame: perFrame(samples(kernel)),
        }
      : {};
    if (top.length === 0) {
      const said = `${rec.stderr} ${rep.stderr} ${rep.stdout
        .split("\n")
        .filter((l) => l.includes("Samples"))
        .join(" ")}`.trim();
      return {
        case: c,
        n,
        reason,
        top,
        error: `no kernel samples in the sender's context (${said.slice(0, 300) || "perf said nothing"})`,
      };
    }
    return { case: c, n, reason, top, ...shares };
  } catch (e) {
    return { case: c, n, reason, top: [], error: (e as Error).message };
  } finally {
    cleanupSync();
    fs.rmSync(data, { force: true });
  }
}

/* ----------------------------------------------------------------------------------------- */
/* Ratios, targets, report                                                                    */
/* ----------------------------------------------------------------------------------------- */

function find(rs: CaseResult[], c: CaseId, n: number): CaseResult | undefined {
  return rs.find((r) => r.case === c && r.n === n);
}

/** Median over rounds of x/y (or x − y) within a round (paired: both measured in the same round). */
function paired(
  rs: CaseResult[],
  x: CaseId,
  nx: number,
  y: CaseId,
  ny: number,
  how: "ratio" | "difference" = "ratio",
): number | null {
  const X = find(rs, x, nx)?.reps ?? [];
  const Y = find(rs, y, ny)?.reps ?? [];
  const q = X.map((r, k) =>
    Y[k] === undefined
      ? NaN
      : how === "difference"
        ? r.attributedUs - Y[k]!.attributedUs
        : Y[k]!.attributedUs > 0
          ? r.attributedUs / Y[k]!.attributedUs
          : NaN,
  ).filter(Number.isFinite);
  return q.length === 0 ? null : median(q);
}

/** Each ingress case with the table, and the same frames without it. */
export const INGRESS_PAIRS: [IngressCase, IngressCase][] = [
  ["g1", "g"],
  ["h1", "h"],
  ["i1", "i"],
];

/** "(x) grows <= 20% from N = lo to hi" for the growth g (0.2 = +20%). */
function growthTarget(
  c: CaseId,
  what: string,
  lo: number,
  hi: number,
  g: number | null,
): TargetResult {
  return {
    name: `(${c}) ${what} grows <= 20% from N = ${lo} to ${hi}`,
    value: g,
    limit: 0.2,
    met: g === null ? null : g <= 0.2,
    detail:
      g === null
        ? "–"
        : g <= 0.2
          ? `growth ${round(g * 100, 1)}%`
          : `by ${round((g - 0.2) * 100, 1)} points (growth ${round(g * 100, 1)}%, limit 20%)`,
  };
}

function evaluate(
  rs: CaseResult[],
  ns: number[],
): {
  ratios: Record<string, number | null>;
  deltas: Record<string, number>;
  targets: TargetResult[];
} {
  const lo = Math.min(...ns);
  const hi = Math.max(...ns);
  const ratios: Record<string, number | null> = {};
  const pairs: [CaseId, CaseId][] = [
    ["c", "a"],
    ["b", "c"],
    ["b", "a"],
    ["d", "a"],
    ["c0", "a"],
    ["c1", "a"],
    ["c2", "a"],
    ["c3", "a"],
    ["c4", "a"],
    ["c6", "a"],
    ["c4", "c"],
    ["f0", "f"],
    ["f0", "f1"],
    ["f", "f1"],
    ["f", "f2"],
    ["f0", "f2"],
    ...INGRESS_PAIRS,
  ];
  const deltas: Record<string, number> = {};
  for (const n of ns) {
    for (const [x, y] of pairs) {
      const v = paired(rs, x, n, y, n);
      ratios[`${x}/${y}@${n}`] = v === null ? null : round(v, 2);
    }
    for (const [x, y] of INGRESS_PAIRS) {
      const d = paired(rs, x, n, y, n, "difference");
      if (d !== null) deltas[`${x}-${y}@${n}`] = round(d, 2);
    }
  }
  const g = lo === hi ? null : paired(rs, "e", hi, "e", lo);
  ratios[`e growth ${lo}->${hi}`] = g === null ? null : round(g - 1, 3);
  const g1 = lo === hi ? null : paired(rs, "e1", hi, "e1", lo);
  ratios[`e1 growth ${lo}->${hi}`] = g1 === null ? null : round(g1 - 1, 3);
  for (const n of ns) {
    const v = paired(rs, "e1", n, "e", n);
    ratios[`e1/e@${n}`] = v === null ? null : round(v, 2);
  }
  const ca = ratios[`c/a@${hi}`] ?? null;
  const eg = ratios[`e growth ${lo}->${hi}`] ?? null;
  const e1g = ratios[`e1 growth ${lo}->${hi}`] ?? null;
  for (const [k, v] of Object.entries(ratios)) if (v === null) delete ratios[k]; // cases not run
  const targets: TargetResult[] = [
    {
      name: `(c) <= 1.2 x (a) at N = ${hi}`,
      value: ca,
      limit: 1.2,
      met: ca === null ? null : ca <= 1.2,
      detail:
        ca === null
          ? "–"
          : ca <= 1.2
            ? `ratio ${ca}, ${round((1.2 - ca) * 100, 0)} points to spare`
            : `by ${round((ca / 1.2 - 1) * 100, 1)}% (ratio ${ca}, limit 1.2)`,
    },
    growthTarget("e", "bridge suppression alone", lo, hi, eg),
    growthTarget("e1", "ARP suppression as hostnet builds it", lo, hi, e1g),
  ];
  return { ratios, deltas, targets };
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1);
}

/** Markdown table: one row per case, per N the attributed median (spread) and /proc/stat median. */
export function table(
  r: Pick<DataplaneResults, "results" | "options">,
): string {
  const ns = r.options.ns;
  const head = [
    "case",
    ...ns.flatMap((n) => [
      `N=${n} µs/frame (min–max)`,
      `N=${n} softirq`,
      `N=${n} /proc/stat`,
    ]),
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
  ];
  for (const c of r.options.cases) {
    const cells = [`(${c}) ${CASES[c]}`];
    for (const n of ns) {
      const x = find(r.results, c, n);
      const a = x?.reps.map((p) => p.attributedUs) ?? [];
      cells.push(
        x
          ? `${fmt(x.median.attributedUs)} (${fmt(Math.min(...a))}–${fmt(Math.max(...a))})`
          : "–",
      );
      cells.push(fmt(x?.median.softirqUs));
      cells.push(
        x
          ? `${fmt(x.median.procStatUs)}${x.median.procStatValid ? "" : "*"}`
          : "–",
      );
    }
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

export function section(
  r: Pick<DataplaneResults, "results" | "options" | "ratios" | "targets">,
): BenchSection {
  return {
    title: `Data plane: broadcast ARP, µs CPU per frame (attributed, median of ${r.options.reps})`,
    columns: ["case", ...r.options.ns.map((n) => `N=${n}`)],
    rows: r.options.cases.map((c) => [
      `(${c}) ${CASES[c]}`,
      ...r.options.ns.map((n) =>
        fmt(find(r.results, c, n)?.median.attributedUs),
      ),
    ]),
    notes: [
      "ratios (attributed, median over rounds of the ratio within a round): " +
        Object.entries(r.ratios)
          .map(([k, v]) => `${k} = ${v ?? "–"}`)
          .join(", "),
      ...r.targets.map(
        (t) =>
          `target ${t.name}: ${t.met === null ? "not measured" : t.met ? "met" : "MISSED"} (${t.detail})`,
      ),
    ],
  };
}

function machine(cpu: number): Record<string, string | number> {
  const model =
    /model name\s*:\s*(.*)/.exec(
      fs.readFileSync("/proc/cpuinfo", "utf8"),
    )?.[1] ?? "unknown";
  const load = fs
    .readFileSync("/proc/loadavg", "utf8")
    .split(" ")
    .slice(0, 3)
    .join(" ");
  return {
    hostname: os.hostname(),
    nproc: os.cpus().length,
    kernel: os.release(),
    cpuModel: model,
    senderCpu: cpu,
    loadavgAtStart: load,
  };
}

const METHOD =
  "Broadcast ARP requests (60-byte frames, targets round robin over the VMs' addresses) from netns hnbd-snd " +
  "through an AF_PACKET socket, pinned to one CPU, at a fixed rate; IPv6 disabled in every test namespace. " +
  "attributedUs = sender thread CPU time inside send() (the bridge flood runs in softirq on that thread) + ksoftirqd " +
  "time on that CPU beyond its baseline rate when the softirq budget ran out (time_squeeze; only then can the flood be deferred there), per frame. softirqUs = tick-sampled softirq time of that CPU (/proc/stat) " +
  "minus baseline. procStatUs = busy time of all CPUs (/proc/stat, minus idle, iowait, steal) in the send window minus " +
  "a baseline window of the same length (half before, half after); '*' = sender CPU saturated, so busy time cannot " +
  "see the work. Each round measures every case at every N once on a freshly built topology; figures are " +
  "medians over rounds, ratios the median over rounds of the ratio within a round.";

/* ----------------------------------------------------------------------------------------- */
/* SVG chart (hand-written): µs/frame against N, log scale, one line per case                 */
/* ----------------------------------------------------------------------------------------- */

const COLORS: Record<CaseId, string> = {
  a: "#555555",
  b: "#d62728",
  c: "#1f77b4",
  c0: "#17becf",
  c1: "#ff7f0e",
  c2: "#bcbd22",
  c3: "#8c564b",
  d: "#9467bd",
  e: "#2ca02c",
  f: "#e377c2",
  f0: "#7f7f7f",
  f1: "#ff9896",
  c4: "#aec7e8",
  c6: "#dbdb8d",
  e1: "#98df8a",
  f2: "#c5b0d5",
  g: "#393b79",
  g1: "#6b6ecf",
  h: "#637939",
  h1: "#b5cf6b",
  i: "#843c39",
  i1: "#d6616b",
};

export function svgChart(
  r: Pick<DataplaneResults, "results" | "options" | "date" | "machine">,
): string {
  const W = 920,
    H = 460,
    L = 70,
    R = 340,
    T = 50,
    B = 60;
  const ns = r.options.ns;
  const vals = r.results.map((x) => x.median.attributedUs).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...vals, 10)));
  const hi = Math.ceil(Math.log10(Math.max(...vals, 100)));
  const nMin = Math.min(...ns),
    nMax = Math.max(...ns);
  const x = (n: number): number =>
    round(
      L + (nMax === nMin ? 0.5 : (n - nMin) / (nMax - nMin)) * (W - L - R),
      1,
    );
  const y = (v: number): number =>
    round(T + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - T - B), 1);
  const o: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="15" font-weight="bold">Broadcast ARP: CPU time per frame vs bridge ports</text>`,
    `<text x="${L}" y="40" fill="#666">${esc(`${r.date.slice(0, 10)} · ${r.machine.nproc} vCPU ${r.machine.cpuModel} · kernel ${r.machine.kernel} · median, log scale`)}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) > hi) continue;
      o.push(
        `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`,
      );
      o.push(
        `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toFixed(1)}</text>`,
      );
    }
  }
  for (const n of ns)
    o.push(
      `<text x="${x(n)}" y="${H - B + 18}" text-anchor="middle">${n}</text>`,
    );
  o.push(
    `<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">N (VM ports on the bridge)</text>`,
  );
  o.push(
    `<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">µs CPU per frame</text>`,
  );
  r.options.cases.forEach((c, k) => {
    const pts = ns
      .map((n) => find(r.results, c, n))
      .filter(
        (p): p is CaseResult => p !== undefined && p.median.attributedUs > 0,
      );
    if (pts.length > 1)
      o.push(
        `<polyline fill="none" stroke="${COLORS[c]}" stroke-width="2" points="${pts.map((p) => `${x(p.n)},${y(p.median.attributedUs)}`).join(" ")}"/>`,
      );
    for (const p of pts) {
      o.push(
        `<circle cx="${x(p.n)}" cy="${y(p.median.attributedUs)}" r="4" fill="${COLORS[c]}"/>`,
      );
      o.push(
        `<text x="${x(p.n) + 7}" y="${y(p.median.attributedUs) - 6}" fill="${COLORS[c]}">${fmt(p.median.attributedUs)}</text>`,
      );
    }
    o.push(
      `<rect x="${W - R + 60}" y="${T + k * 22}" width="14" height="4" fill="${COLORS[c]}"/>`,
    );
    o.push(
      `<text x="${W - R + 80}" y="${T + k * 22 + 6}">(${c}) ${esc(CASES[c])}</text>`,
    );
  });
  o.push("</svg>");
  return o.join("\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/* ----------------------------------------------------------------------------------------- */
/* Files                                                                                      */
/* ----------------------------------------------------------------------------------------- */

const README_BEGIN =
  "<!-- dataplane:auto:begin (written by bench/dataplane.ts; edit the text outside this block) -->";
const README_END = "<!-- dataplane:auto:end -->";

export function readmeBlock(r: DataplaneResults): string {
  const m = r.machine;
  const lines = [
    `Latest full run: **${r.date}** on ${m.hostname} — ${m.nproc} vCPU, ${m.cpuModel}, kernel ${m.kernel}; ` +
      `load average at start ${m.loadavgAtStart}. ${r.options.frames} frames at ${r.options.rate}/s per repetition, ` +
      `${r.options.reps} rounds (each case at each N once per round, rebuilt each time), sender pinned to CPU ${r.options.cpu}.`,
    "",
    table(r),
    "",
    "Ratios (attributed; median over rounds of the ratio within a round): " +
      Object.entries(r.ratios)
        .map(([k, v]) => `${k} = ${v ?? "–"}`)
        .join(", ") +
      ".",
    "",
    ...r.targets.map(
      (t) =>
        `- Target ${t.name}: **${t.met === null ? "not measured" : t.met ? "met" : "MISSED"}** — ${t.detail}.`,
    ),
  ];
  for (const p of r.profiles) {
    lines.push(
      "",
      `Profile of (${p.case}) at N = ${p.n} (${p.reason}; perf cpu-clock on the sender's CPU; kernel symbols in the sender's context, % of its samples): ` +
        (p.error
          ? `failed: ${p.error}`
          : p.top.map((t) => `${t.sym} ${t.pct}%`).join(", ")),
    );
  }
  lines.push("", `Raw results: ${r.files.map((f) => `\`${f}\``).join(", ")}.`);
  return lines.join("\n");
}

function updateReadme(
  file: string,
  block: string,
  log: (s: string) => void,
): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const b = text.indexOf(README_BEGIN);
  const e = text.indexOf(README_END);
  if (b < 0 || e < b) {
    log(
      `dataplane bench: ${file} has no generated block (${README_END}); figures not copied there`,
    );
    return;
  }
  fs.writeFileSync(
    file,
    text.slice(0, b + README_BEGIN.length) +
      "\n" +
      block +
      "\n" +
      text.slice(e),
  );
}

function writeFiles(r: DataplaneResults, benchDir: string): string[] {
  const dir = path.join(benchDir, "results");
  fs.mkdirSync(dir, { recursive: true });
  // quick and partial runs never replace the full run's chart
  const partial = DEFAULT_CASES.some((c) => !r.options.cases.includes(c));
  const tag = r.quick
    ? "dataplane-quick"
    : partial
      ? "dataplane-partial"
      : "dataplane";
  const json = path.join(
    dir,
    `${tag}-${r.date.replace(/[:]/g, "").replace(/\.\d+Z$/, "Z")}.json`,
  );
  const svg = path.join(dir, `${tag}.svg`);
  r.files = [json, svg].map((f) => path.relative(path.dirname(benchDir), f));
  fs.writeFileSync(json, JSON.stringify(r, null, 2) + "\n");
  fs.writeFileSync(svg, svgChart(r));
  return r.files;
}

/* ----------------------------------------------------------------------------------------- */
/* Entry point                                                                                */
/* ----------------------------------------------------------------------------------------- */

function resolveOptions(opts: DataplaneOptions): Required<DataplaneOptions> {
  const quick = opts.quick ?? false;
  const o: Required<DataplaneOptions> = {
    ns: opts.ns ?? (quick ? [20, 40] : [100, 300]),
    cases: opts.cases ?? DEFAULT_CASES,
    frames: opts.frames ?? (quick ? 300 : 2000),
    rate: opts.rate ?? (quick ? 300 : 200),
    reps: opts.reps ?? 3,
    cpu: opts.cpu ?? os.cpus().length - 1,
    quick,
    profile: opts.profile ?? (quick ? "off" : "auto"),
    write: opts.write ?? true,
    readme:
      opts.readme ??
      (!quick &&
        (opts.cases === undefined ||
          DEFAULT_CASES.every((c) => opts.cases!.includes(c)))),
    benchDir: opts.benchDir ?? path.resolve(__dirname, "..", "..", "bench"),
    log: opts.log ?? ((s: string) => console.log(s)),
  };
  const bad = o.ns.find((n) => !Number.isInteger(n) || n < 1 || n > MAX_N);
  if (bad !== undefined)
    throw new Error(
      `dataplane bench: N must be an integer 1..${MAX_N}, got ${bad}`,
    );
  if (o.cpu < 0 || o.cpu >= os.cpus().length)
    throw new Error(
      `dataplane bench: cpu ${o.cpu} does not exist (this machine has ${os.cpus().length})`,
    );
  if (!(o.frames > 0 && o.rate > 0 && o.reps > 0))
    throw new Error("dataplane bench: frames, rate and reps must be positive");
  o.ns = [...new Set(o.ns)].sort((a, b) => a - b);
  o.cases = withBaseline(o.cases);
  return o;
}

/** (f) is always measured with its baseline (f0), in the same rounds, right after it. */
export function withBaseline(cases: CaseId[]): CaseId[] {
  if (!cases.includes("f") || cases.includes("f0")) return cases;
  return cases.flatMap((c) => (c === "f" ? ["f", "f0"] : [c]));
}

interface Round {
  rep: RepResult;
  verify: Record<string, number | string | boolean>;
  buildS: number;
}

/** One repetition of one case on a freshly built topology, torn down afterwards. */
async function runRound(
  c: CaseId,
  n: number,
  o: Required<DataplaneOptions>,
  tmp: string,
  ksoftirqd: number,
): Promise<Round> {
  cleanupSync();
  await sleep(o.quick ? 500 : 2000); // let the previous topology's namespace teardown finish
  const t0 = Date.now();
  await buildCase(c, n, tmp);
  const buildS = (Date.now() - t0) / 1000;
  await awaitCase(c, n);
  const rep = await measureRep(tmp, loadOf(c, n), o, ksoftirqd);
  const verify = await verifyCase(c, n, rep.sent + WARM);
  const bad = problems(c, n, verify);
  for (const p of bad) o.log(`    WARNING (${c}) N = ${n}: ${p}`);
  verify.ok = bad.length === 0;
  cleanupSync();
  return { rep, verify, buildS };
}

function caseResult(c: CaseId, n: number, rounds: Round[]): CaseResult {
  const reps = rounds.map((x) => x.rep);
  const med = (k: "attributedUs" | "softirqUs" | "procStatUs"): number =>
    round(median(reps.map((r) => r[k])), 1);
  const verify = {
    ...rounds[rounds.length - 1]!.verify,
    ok: rounds.every((x) => x.verify.ok === true),
  };
  return {
    case: c,
    label: CASES[c],
    n,
    buildS: round(median(rounds.map((x) => x.buildS)), 1),
    reps,
    verify,
    median: {
      attributedUs: med("attributedUs"),
      softirqUs: med("softirqUs"),
      procStatUs: med("procStatUs"),
      procStatValid: reps.every((r) => r.procStatValid),
    },
  };
}

async function profileMisses(
  r: DataplaneResults,
  o: Required<DataplaneOptions>,
  tmp: string,
  ksoftirqd: number,
): Promise<void> {
  if (o.profile === "off" || !hasPerf()) {
    if (o.profile !== "off")
      o.log(
        "dataplane bench: perf not found; no profile (apt-get install linux-perf)",
      );
    return;
  }
  const hi = Math.max(...o.ns);
  const lo = Math.min(...o.ns);
  const want: [CaseId, number, string][] = [];
  const [t1, t2, t3] = r.targets;
  if (o.profile === "always" || t1?.met === false)
    want.push(
      ["a", hi, "reference for (c)/(a)"],
      ["c", hi, `(c)/(a) ${t1?.detail ?? ""}`],
      ["c0", hi, "dispatch only, for (c)/(a)"],
    );
  if (o.profile === "always" || t2?.met === false)
    want.push(
      ["e", lo, "reference for (e) growth"],
      ["e", hi, `(e) growth ${t2?.detail ?? ""}`],
    );
  if (o.profile === "always" || t3?.met === false)
    want.push(
      ["e1", lo, "reference for (e1) growth"],
      ["e1", hi, `(e1) growth ${t3?.detail ?? ""}`],
    );
  if (o.profile === "always")
    for (const [x, y] of INGRESS_PAIRS)
      want.push(
        [y, hi, `reference for (${x})`],
        [
          x,
          hi,
          `the ARP answer table's ingress hook on frames it lets through`,
        ],
      );
  for (const [c, n, reason] of want) {
    if (!o.cases.includes(c)) continue;
    o.log(`profiling (${c}) at N = ${n} ...`);
    r.profiles.push(await profileCase(c, n, reason, tmp, o, ksoftirqd));
  }
}

/** Runs every case at every N (cleaning up between cases) and returns the results; see DataplaneOptions. */
export async function runDataplaneBench(
  opts: DataplaneOptions = {},
): Promise<DataplaneResults> {
  const o = resolveOptions(opts);
  if (process.getuid?.() !== 0)
    throw new Error(
      "dataplane bench: needs root (network namespaces, bridges, nft)",
    );
  acquireLock();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hnbd-"));
  const removeHandlers = installSignalHandlers(tmp);
  try {
    const stale = cleanupSync();
    if (stale > 0)
      o.log(
        `dataplane bench: removed ${stale} hnbd-* namespace(s) left by an earlier run`,
      );
    fs.writeFileSync(path.join(tmp, "send.py"), SENDER);
    const ksoftirqd = ksoftirqdPid(o.cpu);
    const r: DataplaneResults = {
      date: new Date().toISOString(),
      quick: o.quick,
      machine: machine(o.cpu),
      options: {
        ns: o.ns,
        cases: o.cases,
        frames: o.frames,
        rate: o.rate,
        reps: o.reps,
        cpu: o.cpu,
      },
      method: METHOD,
      results: [],
      ratios: {},
      targets: [],
      profiles: [],
      files: [],
      section: { title: "Data plane", columns: [], rows: [] },
    };
    // Rounds: every case at every N once per round, so that the cases compared in a ratio are
    // measured minutes apart and a change in the machine's load hits them alike.
    const rounds = new Map<string, Round[]>();
    for (let k = 1; k <= o.reps; k++) {
      for (const n of o.ns) {
        for (const c of o.cases) {
          o.log(`round ${k}/${o.reps}: (${c}) ${CASES[c]}, N = ${n} ...`);
          const x = await runRound(c, n, o, tmp, ksoftirqd);
          rounds.set(`${c}@${n}`, [...(rounds.get(`${c}@${n}`) ?? []), x]);
          o.log(
            `    ${fmt(x.rep.attributedUs)} µs/frame attributed, ${fmt(x.rep.softirqUs)} softirq, ` +
              `${fmt(x.rep.procStatUs)}${x.rep.procStatValid ? "" : "*"} /proc/stat; build ${x.buildS.toFixed(1)} s; ${JSON.stringify(x.verify)}`,
          );
        }
      }
    }
    for (const n of o.ns)
      for (const c of o.cases)
        r.results.push(caseResult(c, n, rounds.get(`${c}@${n}`) ?? []));
    Object.assign(r, evaluate(r.results, o.ns));
    r.section = section(r);
    await profileMisses(r, o, tmp, ksoftirqd);
    if (o.write) writeFiles(r, o.benchDir);
    if (o.readme && o.write)
      updateReadme(path.join(o.benchDir, "README.md"), readmeBlock(r), o.log);
    return r;
  } finally {
    killChildren();
    cleanupSync();
    fs.rmSync(tmp, { recursive: true, force: true });
    removeHandlers();
    releaseLock();
  }
}

export function report(r: DataplaneResults): string {
  return [
    "",
    `Data plane: broadcast ARP, CPU µs per frame (median of ${r.options.reps}; '*' = /proc/stat unusable, sender CPU saturated)`,
    table(r),
    "",
    "Ratios (median over rounds of the ratio within a round): " +
      Object.entries(r.ratios)
        .map(([k, v]) => `${k} = ${v ?? "–"}`)
        .join(", "),
    ...r.targets.map(
      (t) =>
        `Target ${t.name}: ${t.met === null ? "not measured" : t.met ? "met" : "MISSED"} — ${t.detail}`,
    ),
    ...r.profiles.map(
      (p) =>
        `Profile (${p.case}) N=${p.n}: ${p.error ?? p.top.map((t) => `${t.sym} ${t.pct}%`).join(", ")}`,
    ),
    ...segmentLines(r),
    ...ingressLines(r),
    ...(r.files.length > 0 ? [`Wrote ${r.files.join(", ")}`] : []),
  ].join("\n");
}

/** (f)/(f0) per N: µs per request (all three hosts and the underlay), clones and underlay frames. */
export function segmentLines(r: Pick<DataplaneResults, "results">): string[] {
  return r.results
    .filter((x) => isSegment(x.case))
    .map((x) => {
      const v = x.verify;
      return (
        `(${x.case}) ${x.label}, N = ${x.n} VM ports per host: ${fmt(x.median.attributedUs)} µs CPU per request ` +
        `(all 3 hosts + underlay); clones per request on hosts 1/2/3 ${v.clonesPerFrame}/${v.clonesHost2}/${v.clonesHost3}; ` +
        `underlay frames per request ${v.underlayFramesPerRequest} (host 1's vxlan tx ${v.vxlanTxPerRequest}); ` +
        `replies per request ${v.repliesPerFrame}; host 1's bridge rx per request ${v.bridgeRxPerFrame}; checks ${v.ok ? "ok" : "FAILED"}`
      );
    });
}

/** Per ingress pair and N: µs per frame without and with the ARP answer table, ratio, difference, checks. */
export function ingressLines(
  r: Pick<
    DataplaneResults,
    "results" | "ratios" | "deltas" | "options" | "profiles"
  >,
): string[] {
  const out: string[] = [];
  for (const n of r.options.ns)
    for (const [x, y] of INGRESS_PAIRS) {
      const w = find(r.results, x, n);
      const wo = find(r.results, y, n);
      if (w === undefined || wo === undefined) continue;
      const d = r.deltas?.[`${x}-${y}@${n}`];
      const ok = w.verify.ok === true && wo.verify.ok === true;
      out.push(
        `(${y}) ${CASES[y]}, N = ${n}: ${fmt(wo.median.attributedUs)} µs per frame without the ARP answer table, ` +
          `${fmt(w.median.attributedUs)} with it (${x}); with/without ${r.ratios[`${x}/${y}@${n}`] ?? "–"}, ` +
          `difference ${d === undefined ? "–" : `${d >= 0 ? "+" : ""}${d.toFixed(2)}`} µs (paired medians over ${w.reps.length} rounds); ` +
          `VM ports reached per frame ${wo.verify.clonesPerFrame}/${w.verify.clonesPerFrame}, answered ${w.verify.answeredPerFrame}; checks ${ok ? "ok" : "FAILED"}`,
      );
      const pw = r.profiles.find((p) => p.case === x && p.n === n);
      const pwo = r.profiles.find((p) => p.case === y && p.n === n);
      if (pw?.nftUsPerFrame !== undefined && pwo?.nftUsPerFrame !== undefined)
        out.push(
          `    profile at N = ${n}: nft_* symbols ${pw.nftUsPerFrame.toFixed(3)} µs per frame with the table ` +
            `(${pw.nftSamples} samples), ${pwo.nftUsPerFrame.toFixed(3)} without (${pwo.nftSamples}); ` +
            `all kernel samples ${fmt(pw.kernelUsPerFrame)} / ${fmt(pwo.kernelUsPerFrame)} µs per frame`,
        );
    }
  return out;
}

function parseArgs(argv: string[]): DataplaneOptions {
  const o: DataplaneOptions = {};
  const list = (s: string | undefined): string[] =>
    (s ?? "").split(",").filter((x) => x !== "");
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const v = argv[k + 1];
    switch (a) {
      case "--quick":
        o.quick = true;
        continue;
      case "--no-readme":
        o.readme = false;
        continue;
      case "--ns":
        o.ns = list(v).map(Number);
        break;
      case "--cases":
        o.cases = list(v) as CaseId[];
        break;
      case "--frames":
        o.frames = Number(v);
        break;
      case "--rate":
        o.rate = Number(v);
        break;
      case "--reps":
        o.reps = Number(v);
        break;
      case "--cpu":
        o.cpu = Number(v);
        break;
      case "--profile":
        o.profile = v as DataplaneOptions["profile"];
        break;
      default:
        throw new Error(
          `dataplane bench: unknown argument ${a}; see the usage at the top of bench/dataplane.ts`,
        );
    }
    k++;
  }
  const badCase = o.cases?.find((c) => !(c in CASES));
  if (badCase !== undefined)
    throw new Error(
      `dataplane bench: unknown case ${badCase}; cases are ${Object.keys(CASES).join(",")}`,
    );
  return o;
}

if (require.main === module) {
  runDataplaneBench(parseArgs(process.argv.slice(2)))
    .then((r) => console.log(report(r)))
    .catch((e: Error) => {
      console.error(e.message);
      process.exit(1);
    });
}
