// Reliability on lab2 (issue 7): what hostnet does when the world misbehaves mid-apply, with the
// real engine and real sshd. A fleet of 100 isolated-netns + managed-fdb VMs loses its SSH
// connection mid-apply (killed from the server side) and converges on the next `up --refresh`
// with no orphans; an emptied host (as after a reboot) is seen by preview; an sshd that dies
// mid-apply (no undo can reach the host) leaves objects that the next `up --refresh` finds and
// finishes; a BootRestore script brings an emptied host back without `pulumi up`;
// multi-step creates that fail leave nothing behind; a host answering as another machine is
// refused; the private key never shows up in state, output or traces.
//
// Other engineers share lab2: everything here is named rl*/vm-rl*/hv-rl*/br-rl, and "emptying the
// host" deletes only those (for hostnet's purposes that is what a reboot does: /run/netns is a tmpfs).
import { expect } from "chai";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { LocalWorkspace } from "@pulumi/pulumi/automation";
import { inlineStack, SECRET_SIG, STATE_DIR } from "../../scripts/engine";
import { deployFleet } from "../../stacks/index";
import { HostTopology, restoreEntries } from "../../components/hostTopology";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import {
  attributeResults,
  buildFlushScript,
  HostOp,
} from "../../providers/host";
import { renderRestoreScript } from "../../providers/kinds/bootRestore";
import { KINDS } from "../../providers/runtime/index";
import { VethLink } from "../../providers/kinds/vethLink";
import { VmNetns } from "../../providers/kinds/vmNetns";
import {
  fullSnapshot,
  snapshotDiff,
  stackMayExist,
  StepReport,
  TestStack,
} from "../support/harness";
import {
  escapeRegExp,
  inventory,
  LAB_DIR,
  LabHost,
  labConnection,
  labUp,
  privateKey,
  ROOT,
  sshRun,
} from "../support/lab";

const BIG = 100;
const SMALL = 30;
const BRIDGE = "br-rl";
const TRACE = path.join(
  ROOT,
  ".hostnet",
  "work",
  `rl-trace-${process.pid}.jsonl`,
);
const RESTORE = {
  path: "/run/hostnet/rl-restore.sh",
  unit: "rl-restore.service",
  unitDir: "/run/hostnet/rl-units",
};
const INNER_LINKS = ["br0", "lo", "tap0", "up0"];

const vmName = (i: number): string => `rl${String(i).padStart(3, "0")}`;
const macOf = (i: number): string =>
  `02:00:00:7e:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
const range = (n: number): number[] =>
  Array.from({ length: n }, (_, k) => k + 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every tenth VM is filtered and every fifth ARP-suppressed, so the fleet (and the restore script) carries nft tables and neighbours too. */
function fleet(h: LabHost, n: number): StackConfig {
  return parseStackConfig({
    hosts: [
      { name: "lab2", address: h.address, port: h.port, hostKey: h.hostKey },
    ],
    bridges: [{ name: BRIDGE }],
    vms: range(n).map((i) => ({
      name: vmName(i),
      host: "lab2",
      attachment: "isolated-netns",
      bridge: BRIDGE,
      managedFdb: true,
      filter: i % 10 === 0 ? "clean-traffic" : "none",
      arpSuppress: i % 5 === 0,
      mac: macOf(i),
      ipv4: [`198.19.70.${i}/24`],
    })),
    rollout: { serial: [1], maxFailures: 0, healthCheck: false },
  });
}

interface FleetProgram {
  config: StackConfig;
  /** Build the host's HostTopology directly (same URNs as deployFleet) with a BootRestore. */
  persist: boolean;
}

/** The topology of the last persist run (its plan renders the expected restore script). */
let lastTopology: HostTopology | undefined;

function fleetProgram(c: FleetProgram) {
  const key = pulumi.secret(privateKey());
  if (!c.persist) return Promise.resolve(deployFleet(c.config, key));
  const h = c.config.hosts[0];
  const connection = key.apply((pk) => ({
    host: h.address,
    port: h.port,
    user: h.user,
    sudo: h.sudo,
    hostKey: h.hostKey,
    privateKey: pk,
  }));
  const topo = (lastTopology = new HostTopology(h.name, {
    hostName: h.name,
    connection,
    bridges: c.config.bridges,
    vms: c.config.vms,
    healthCheck: false,
    persist: RESTORE,
  }));
  return Promise.resolve({ children: topo.children.length });
}

// ------------------------------------------------------------------ what is on lab2

interface Ours {
  namespaces: string[];
  rootLinks: string[];
  inner: Record<string, string[]>;
  fdb: string[];
}

/** This file's objects on the host, read over a separate OpenSSH session. */
function ours(h: LabHost): Ours {
  const out = sshRun(
    h,
    [
      "echo @ns; ip netns list | cut -d' ' -f1 | grep -E '^(vm|guest)-rl' | sort",
      "echo @root; ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(hv-rl|br-rl|rl)' | sort",
      "for ns in $(ip netns list | cut -d' ' -f1 | grep -E '^vm-rl'); do echo \"@in $ns $(ip -n $ns -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\\n' ' ')\"; done",
      "echo @fdb; bridge fdb show br br-rl 2>/dev/null | grep -w static | grep -vw self | awk '{print $1\" \"$3}' | sort",
      "echo @end",
    ].join("; "),
  );
  const sections: Record<string, string[]> = {};
  let current = "";
  for (const line of out.split("\n")) {
    if (/^@(ns|root|fdb|end)$/.test(line))
      sections[(current = line.slice(1))] = [];
    else if (line && !line.startsWith("@in ")) sections[current]?.push(line);
  }
  const section = (name: string): string[] => sections[name] ?? [];
  const inner: Record<string, string[]> = {};
  for (const m of out.matchAll(/^@in (\S+) (.*)$/gm))
    inner[m[1]] = m[2].trim().split(" ").filter(Boolean);
  return {
    namespaces: section("ns"),
    rootLinks: section("root"),
    inner,
    fdb: section("fdb"),
  };
}

function desired(n: number): Ours {
  const inner: Record<string, string[]> = {};
  for (const i of range(n)) inner[`vm-${vmName(i)}`] = INNER_LINKS;
  return {
    namespaces: range(n)
      .map((i) => `vm-${vmName(i)}`)
      .sort(),
    rootLinks: [BRIDGE, ...range(n).map((i) => `hv-${vmName(i)}`)].sort(),
    inner,
    fdb: range(n)
      .map((i) => `${macOf(i)} hv-${vmName(i)}`)
      .sort(),
  };
}

const EMPTY_OURS =
  "for ns in $(ip netns list | cut -d' ' -f1 | grep -E '^(vm|guest)-rl|^rl'); do ip netns del $ns; done; " +
  "for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(hv-rl|br-rl|rl)'); do ip link del $l 2>/dev/null; done; true";

/** "Reboot" lab2 for hostnet's purposes: every object of ours gone (namespaces take their veth ends with them). */
function emptyOurs(h: LabHost): void {
  sshRun(h, EMPTY_OURS);
  for (let i = 0; i < 50 && ours(h).rootLinks.length > 0; i++)
    execFileSync("sleep", ["0.2"]);
  expect(ours(h)).to.deep.equal({
    namespaces: [],
    rootLinks: [],
    inner: {},
    fdb: [],
  });
}

// ------------------------------------------------------------------ faults

interface TraceRow {
  t: number;
  pid: number;
  host: string;
  what: string;
}

/**
 * The trace rows appended since `from` (a byte offset of the trace file), read incrementally: only
 * whole lines count, so a row the provider is appending right now is read on the next call.
 */
class TraceTail {
  private offset: number;
  readonly rows: TraceRow[] = [];
  constructor() {
    this.offset = fs.existsSync(TRACE) ? fs.statSync(TRACE).size : 0;
  }

  read(): TraceRow[] {
    if (!fs.existsSync(TRACE)) return this.rows;
    const fd = fs.openSync(TRACE, "r");
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= this.offset) return this.rows;
      const buf = Buffer.alloc(size - this.offset);
      fs.readSync(fd, buf, 0, buf.length, this.offset);
      const text = buf.toString("utf8");
      const whole = text.lastIndexOf("\n") + 1;
      this.offset += Buffer.byteLength(text.slice(0, whole));
      for (const l of text.slice(0, whole).split("\n"))
        if (l) this.rows.push(JSON.parse(l) as TraceRow);
      return this.rows;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Changes the finished apply round trips in `rows` carried to `h` ("apply N change(s)"). */
function changesApplied(h: LabHost, rows: TraceRow[]): number {
  let n = 0;
  for (const r of rows) {
    const m = /^apply (\d+) change/.exec(r.what);
    if (m && r.host.includes(h.address)) n += Number(m[1]);
  }
  return n;
}

/** Local ports of the established connections the given provider processes hold to the host. */
function providerPorts(h: LabHost, pids: Set<number>): number[] {
  const out = execFileSync(
    "ss",
    ["-tnpH", "state", "established", "dst", `${h.address}:22`],
    { encoding: "utf8" },
  );
  return out
    .split("\n")
    .filter((l) => [...pids].some((pid) => l.includes(`pid=${pid},`)))
    .map((l) => Number(/\S+:(\d+)\s+\S+:22\b/.exec(l)?.[1]))
    .filter((p) => p > 0);
}

/** sshd processes inside the lab host serving our local port (nobody else's sessions). */
function sessionPids(h: LabHost, localPort: number): number[] {
  const out = execFileSync(
    "ip",
    [
      "netns",
      "exec",
      h.netns,
      "ss",
      "-tnpH",
      "state",
      "established",
      "sport",
      "= :22",
      "dport",
      `= :${localPort}`,
    ],
    { encoding: "utf8" },
  );
  return [...new Set([...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))];
}

/** Child pids of `pid` (its main thread's; the sshd and shell processes here have no others). */
function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // gone meanwhile
  }
}

/**
 * A session of ours is applying changes right now: some process under it runs a write tool. Reads
 * only the sessions' own process trees (a few files), so it can be polled every millisecond even
 * on a loaded machine, where a scan of all of /proc took long enough to miss every short write.
 */
function writing(pids: number[]): boolean {
  const queue = pids.flatMap(childrenOf);
  while (queue.length > 0) {
    const pid = queue.shift()!;
    let args: string;
    try {
      args = fs
        .readFileSync(`/proc/${pid}/cmdline`, "utf8")
        .replace(/\0/g, " ");
    } catch {
      continue; // gone meanwhile
    }
    if (/\s-batch\s|\bnft\b.*\s-f\s|sysctl -q -w/.test(` ${args} `))
      return true;
    queue.push(...childrenOf(pid));
  }
  return false;
}

/**
 * Once `afterChanges` changes of the running `up` have been applied on `h` and a write is in flight,
 * kill the sshd session processes serving the provider's connection, and the listener too when
 * asked. Resolves with what was killed.
 *
 * The threshold counts changes, not round trips: the host queue merges whatever is pending into
 * one round trip, so on a loaded machine (slower round trips, more waiting) the same fleet goes out
 * in fewer, bigger applies. A threshold of 20 round trips could then fall near the end of the run,
 * leaving too few writes to catch before it ended ("nothing (the run ended first)").
 */
async function killMidApply(
  h: LabHost,
  trace: TraceTail,
  afterChanges: number,
  alsoListener: boolean,
  done: () => boolean,
): Promise<string> {
  let ports: number[] = [];
  let pids: number[] = [];
  let applied = 0;
  while (!done()) {
    if (
      pids.length === 0 ||
      !pids.every((pid) => fs.existsSync(`/proc/${pid}`))
    ) {
      await sleep(10);
      const rows = trace.read().filter((r) => r.host.includes(h.address));
      applied = changesApplied(h, rows);
      if (applied < afterChanges) continue;
      ports = providerPorts(h, new Set(rows.map((r) => r.pid)));
      pids = ports.flatMap((p) => sessionPids(h, p));
      continue;
    }
    await sleep(1);
    if (!writing(pids)) continue;
    const kill = (pid: number): boolean => {
      try {
        process.kill(pid, "SIGKILL");
        return true;
      } catch {
        return false; // ended just now (a session: a reconnect; look again)
      }
    };
    if (alsoListener)
      kill(
        (
          inventory().hosts.find((x) => x.name === h.name) as LabHost & {
            sshdPid: number;
          }
        ).sshdPid,
      );
    const killed = pids.filter(kill);
    if (killed.length === 0) {
      pids = [];
      continue;
    }
    return `ports ${ports.join(",")} pids ${killed.join(",")} (after ${applied} change(s) applied)${alsoListener ? " and the listener" : ""}`;
  }
  return "nothing (the run ended first)";
}

/**
 * lab.sh restarts a dead sshd by rebuilding the whole lab host: a fresh mount namespace, hence an
 * empty /run/netns, which drops every namespace on lab2, other engineers' too. So the dead sshd is
 * restarted in place, as systemd would, inside the host's namespaces; a keeper process holds them
 * while no sshd runs. lab.sh up then finds it healthy and keeps it.
 */
function startKeeper(h: LabHost): number {
  return Number(
    sshRun(h, "setsid sleep 900 </dev/null >/dev/null 2>&1 & echo $!").trim(),
  );
}

/** The listener's pid and argv; sshd rewrites its title, which still lists every argument in order. */
function labListener(h: LabHost): { pid: number; argv: string[] } {
  const pid = (
    inventory().hosts.find((x) => x.name === h.name) as LabHost & {
      sshdPid: number;
    }
  ).sshdPid;
  const title = fs
    .readFileSync(`/proc/${pid}/cmdline`, "utf8")
    .replace(/\0+$/, "");
  const m = /^sshd: (\/\S+) (.*) \[listener\]/.exec(title);
  if (!m)
    throw new Error(
      `cannot read the arguments of lab sshd ${pid} from its title: ${title}`,
    );
  // Each option starts a segment; a value may hold spaces (AuthorizedKeysFile lists two files).
  const argv = [
    m[1],
    ...m[2].split(/ (?=-[A-Za-z] |-[A-Za-z]$)/).flatMap((seg) => {
      const at = seg.indexOf(" ");
      return at < 0 ? [seg] : [seg.slice(0, at), seg.slice(at + 1)];
    }),
  ];
  return { pid, argv };
}

function restartSshdInPlace(h: LabHost, keeper: number, argv: string[]): void {
  const log = fs.openSync(path.join(LAB_DIR, h.name, "sshd.log"), "a");
  spawn("nsenter", ["-t", String(keeper), "-m", "-u", "-n", "--", ...argv], {
    detached: true,
    stdio: ["ignore", log, log],
  }).unref();
  fs.closeSync(log);
  for (let i = 0; i < 50; i++) {
    if (sshRun(h, "echo up", { allowFail: true }).trim() === "up") return;
    execFileSync("sleep", ["0.2"]);
  }
  throw new Error(
    `sshd of ${h.name} did not come back; see ${path.join(LAB_DIR, h.name, "sshd.log")}`,
  );
}

/** `up` with a fault injected mid-apply: the error it failed with (or "" if it succeeded). */
async function upWithFault(
  h: LabHost,
  stack: TestStack<FleetProgram>,
  opts: { afterChanges: number; listener: boolean; refresh?: boolean },
) {
  const trace = new TraceTail();
  let ended = false;
  const up = stack
    .up({ refresh: opts.refresh })
    .then(
      () => "",
      (e: Error) => String(e.message),
    )
    .finally(() => (ended = true));
  const killed = await killMidApply(
    h,
    trace,
    opts.afterChanges,
    opts.listener,
    () => ended,
  );
  return { error: await up, killed };
}

// ------------------------------------------------------------------ engine reports

/** The part of a failed run's output an operator reads: the per-resource errors. */
function diagnostics(error: string): string {
  const at = error.indexOf("Diagnostics:");
  return at < 0
    ? error.slice(-3000)
    : error.slice(at, error.indexOf("Resources:", at) + 200).slice(0, 6000);
}

/** Names of resources the state records as unfinished (a create that may have been cut off). */
function unfinishedResources(state: any): string[] {
  return (state.deployment.resources ?? [])
    .filter((r: any) => (r.initErrors ?? []).length > 0)
    .map((r: any) => r.urn.split("::").pop());
}

function changes(r: StepReport): Record<string, string> {
  return Object.fromEntries(
    Object.entries(r.ops).filter(
      ([, op]) => !["same", "refresh", "read"].includes(op),
    ),
  );
}

const stateFile = (stack: string): string =>
  path.join(STATE_DIR, ".pulumi", "stacks", "hostnet", `${stack}.json`);

/** The base64 body lines of the lab private key: what must never leak. */
function keyBodyLines(): string[] {
  return privateKey()
    .split("\n")
    .filter((l) => l.length >= 20 && !l.startsWith("-----"));
}

/** The Automation API exports with --show-secrets: values the engine keeps secret are replaced here. */
function withoutSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutSecrets);
  if (v && typeof v === "object") {
    if (SECRET_SIG in v) return "[secret]";
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, withoutSecrets(x)]),
    );
  }
  return v;
}

function expectNoKey(where: string, text: string): void {
  for (const line of keyBodyLines())
    expect(text.includes(line), `${where} contains key material`).to.equal(
      false,
    );
}

describe("reliability (lab2)", function () {
  this.timeout(1_800_000);
  let h: LabHost;
  let other: LabHost;
  const timings: Record<string, number> = {};
  /** Cut-off creates whose object had reached the host (refresh kept it, up finished it): without the record, leftovers. */
  const reachedHost: Record<string, string[]> = {};
  const timed = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      timings[label] = Date.now() - t0;
    }
  };

  before(() => {
    [, h, other] = labUp(3).hosts;
    process.env.HOSTNET_TRACE_FILE = TRACE;
    fs.rmSync(TRACE, { force: true });
  });

  after(function () {
    this.timeout(600_000);
    console.log(`    timings (ms): ${JSON.stringify(timings)}`);
    console.log(
      `    cut-off creates found on the host and finished: ${JSON.stringify(reachedHost)}`,
    );
  });

  describe("[pure] writeFile op and restore rendering (no host)", () => {
    let dir = "";
    before(() => {
      // .hostnet/work may not exist yet: in a lane, this file can run before any stack made it.
      const work = path.join(ROOT, ".hostnet", "work");
      fs.mkdirSync(work, { recursive: true });
      dir = fs.mkdtempSync(path.join(work, "rl-wf-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("a writeFile op writes its content verbatim and atomically; an unsafe path fails that op alone, with the reason", () => {
      const tricky =
        "#!/bin/sh\necho '$HOME' \"`id`\" \\n\nHN_EOF_0\n  trailing spaces  \n";
      const target = path.join(dir, "sub", "restore.sh");
      const ops: HostOp[] = [
        {
          kind: "writeFile",
          path: target,
          content: tricky,
          mode: "0750",
          what: "write",
        },
        {
          kind: "writeFile",
          path: `${dir}/a b;touch ${dir}/pwned`,
          content: "x\n",
          mode: "0644",
          what: "write a bad path",
        },
        {
          kind: "writeFile",
          path: path.join(dir, "nonl"),
          content: "no newline",
          mode: "0644",
          what: "write without a newline",
        },
      ];
      const plan = buildFlushScript(ops);
      const out = execFileSync("sh", ["-s"], {
        input: plan.script,
        encoding: "utf8",
      });
      const results = attributeResults(plan, out);
      expect(results.map((r) => r.status)).to.deep.equal([
        "ok",
        "failed",
        "failed",
      ]);
      expect(fs.readFileSync(target, "utf8")).to.equal(tricky);
      expect((fs.statSync(target).mode & 0o777).toString(8)).to.equal("750");
      expect((results[1] as { output: string }).output)
        .to.include("hostnet refused to write")
        .and.include("absolute path");
      expect((results[2] as { output: string }).output).to.include(
        "ending with a newline",
      );
      expect(fs.readdirSync(dir).sort()).to.deep.equal(["sub"]);
      expect(fs.readdirSync(path.join(dir, "sub"))).to.deep.equal([
        "restore.sh",
      ]); // no temp file left
    });
  });

  describe("[fleet] 100 VMs: lost connection, reboot, sshd death, boot restore", () => {
    let stack: TestStack<FleetProgram>;

    before(async () => {
      sshRun(h, `${EMPTY_OURS}; rm -rf /run/hostnet/rl-*`, { allowFail: true });
      stack = new TestStack<FleetProgram>(
        "test-reliab",
        { config: fleet(h, BIG), persist: false },
        fleetProgram,
      );
      // Forgets whatever an interrupted earlier run left in the state (no stack, nothing to forget).
      if (stackMayExist((s) => s === "test-reliab")) await stack.refresh();
    });

    after(async function () {
      this.timeout(900_000);
      // Objects first (fast over ssh), so destroy only has state to drop.
      sshRun(labUp(3).hosts[1], `${EMPTY_OURS}; rm -rf /run/hostnet/rl-*`, {
        allowFail: true,
      });
      await stack.refresh().catch(() => undefined);
      await stack.dispose();
    });

    it("up fails cleanly when the provider's SSH session is killed on the server side", async () => {
      const { error, killed } = await timed("up 100 (killed)", () =>
        upWithFault(h, stack, { afterChanges: 50, listener: false }),
      );
      if (process.env.RL_VERBOSE) console.log(killed, diagnostics(error));
      expect(killed, "the fault was injected").to.match(/^ports/);
      expect(error, `up should have failed (killed ${killed})`).to.not.equal(
        "",
      );
      expect(error)
        .to.include(`root@${h.address}:22`)
        .and.match(/connection (was )?lost/);
      expect(error).to.match(/\d+ errored/);
      // Creates cut off mid-way are recorded as unfinished (not forgotten as unmanaged leftovers).
      const unfinished = unfinishedResources(
        JSON.parse(await stack.exportState()),
      );
      expect(
        unfinished.length,
        "resources recorded with initialization errors",
      ).to.be.greaterThan(0);
      expectNoKey(
        "state after an interrupted create",
        fs.readFileSync(stateFile("test-reliab"), "utf8"),
      );
    });

    it("up --refresh converges; the host holds exactly the desired objects; refresh then matches the host", async () => {
      const unfinished = unfinishedResources(
        JSON.parse(await stack.exportState()),
      );
      const converge = await timed("up 100 --refresh (converge)", () =>
        stack.up({ refresh: true }),
      );
      reachedHost["lost session"] = unfinished.filter(
        (n) => converge.ops[n] !== undefined && converge.ops[n] !== "create",
      );
      expect(ours(h)).to.deep.equal(desired(BIG));
      expect(
        unfinishedResources(JSON.parse(await stack.exportState())),
      ).to.deep.equal([]);
      await timed("refresh 100", () => stack.refresh());
      await timed("preview 100 (no changes)", () =>
        stack.preview({ refresh: true, expectNoChanges: true }),
      );
    });

    it("an emptied host (as after a reboot): preview --refresh reports every object missing", async () => {
      emptyOurs(h);
      const plan = await timed("preview 100 after reboot", () =>
        stack.preview({ refresh: true }),
      );
      const creates = Object.values(changes(plan)).filter(
        (op) => op === "create",
      ).length;
      // 5 resources per VM (netns, inner bridge, uplink veth, tap, fdb), a filter on every tenth, the host bridge
      expect(creates).to.equal(BIG * 5 + BIG / 10 + 1);
      expect(
        Object.values(changes(plan)).every((op) => op === "create"),
        JSON.stringify(changes(plan)),
      ).to.equal(true);
    });

    it("sshd dies mid-apply: the run fails naming the host; sshd comes back, lab.sh up keeps it, up --refresh converges", async () => {
      // The state forgets the vanished fleet, and the rest of the file works on SMALL VMs (keeps the run short).
      await timed("refresh (drop vanished)", () => stack.refresh());
      stack.config = { config: fleet(h, SMALL), persist: false };
      const keeper = startKeeper(h);
      try {
        const listener = labListener(h);
        const { error, killed } = await timed("up small (sshd killed)", () =>
          upWithFault(h, stack, {
            afterChanges: 5,
            listener: true,
            refresh: true,
          }),
        );
        expect(killed, "the fault was injected").to.match(/and the listener$/);
        restartSshdInPlace(h, keeper, listener.argv);
        h = labUp(3).hosts[1]; // finds the restarted sshd healthy and keeps it
        expect(
          (h as LabHost & { sshdPid: number }).sshdPid,
          "a new sshd serves lab2",
        ).to.not.equal(listener.pid);
        if (process.env.RL_VERBOSE) console.log(killed, diagnostics(error));
        expect(error, `up should have failed (killed ${killed})`).to.not.equal(
          "",
        );
        expect(error)
          .to.include(`root@${h.address}:22`)
          .and.match(/connection (was )?lost|cannot connect/);
        const unfinished = unfinishedResources(
          JSON.parse(await stack.exportState()),
        );
        const converge = await timed("up small --refresh (converge)", () =>
          stack.up({ refresh: true }),
        );
        reachedHost["sshd death"] = unfinished.filter(
          (n) => converge.ops[n] !== undefined && converge.ops[n] !== "create",
        );
        // Resources cut off mid-create are recorded as unfinished. Whether the write in flight ran
        // on the host depends on where in the round trip sshd died: refresh keeps what it finds
        // (up then finishes it) and drops what is not there (up creates it, adopting any own
        // leftover). Either way every one of them is settled by this up, and the host ends exact.
        expect(unfinished, "resources cut off mid-create").to.not.be.empty;
        expect(
          unfinished.filter((n) => converge.ops[n] === undefined),
          "unfinished resources this up did not settle",
        ).to.deep.equal([]);
        expect(ours(h)).to.deep.equal(desired(SMALL));
        await stack.preview({ refresh: true, expectNoChanges: true });
      } finally {
        process.kill(keeper, "SIGTERM");
      }
    });

    it("persist: BootRestore writes the script and unit; on an emptied host the script alone brings back what preview --refresh expects", async () => {
      stack.config = { ...stack.config, persist: true };
      const add = await stack.up();
      expect(changes(add)).to.deep.equal({ "lab2-restore": "create" });
      const script = sshRun(h, `cat ${RESTORE.path}`);
      expect(script).to.equal(
        renderRestoreScript(restoreEntries(lastTopology!.plan), KINDS, "lab2"),
      );
      const unit = sshRun(h, `cat ${RESTORE.unitDir}/${RESTORE.unit}`);
      expect(unit)
        .to.include("Type=oneshot")
        .and.include("After=local-fs.target network-pre.target")
        .and.include("Before=network.target")
        .and.include(`ExecStart=/bin/sh ${RESTORE.path}`);
      const state = JSON.parse(await stack.exportState());
      const restore = state.deployment.resources.find((r: any) =>
        r.urn.endsWith("::lab2-restore"),
      );
      // Lab hosts have no running systemd: the unit is written, not enabled, and the output says why.
      expect(restore.outputs.enabled).to.equal(false);
      expect(restore.outputs.enableNote).to.match(
        /systemd does not run this host/,
      );

      emptyOurs(h);
      const drift = await stack.preview({ refresh: true });
      expect(
        Object.values(changes(drift)).filter((op) => op === "create").length,
        "the reboot is visible before the restore",
      ).to.be.greaterThan(SMALL);
      sshRun(h, `sh ${RESTORE.path}`);
      expect(ours(h)).to.deep.equal(desired(SMALL));
      await stack.preview({ refresh: true, expectNoChanges: true });
      // Idempotent: a second run changes nothing on the host (compared in full over OpenSSH,
      // which is stricter than, and as telling as, another preview of this very host state).
      const restored = fullSnapshot(h);
      sshRun(h, `sh ${RESTORE.path}`);
      expect(snapshotDiff(restored, fullSnapshot(h))).to.deep.equal([]);

      // The files are drift-checked like any object: an edited unit is reported and rewritten.
      sshRun(
        h,
        `echo '# edited by hand' >> ${RESTORE.unitDir}/${RESTORE.unit}`,
      );
      const edited = await stack.preview({ refresh: true });
      expect(changes(edited)).to.deep.equal({ "lab2-restore": "update" });
      expect(edited.diffs["lab2-restore"]).to.include("inSync");
      await stack.up({ refresh: true });
      expect(sshRun(h, `cat ${RESTORE.unitDir}/${RESTORE.unit}`)).to.equal(
        unit,
      );
    });

    it("the restore files are removed with the resource", async () => {
      stack.config = { ...stack.config, persist: false };
      await stack.up();
      expect(
        sshRun(
          h,
          `ls ${RESTORE.path} ${RESTORE.unitDir}/${RESTORE.unit} 2>&1; true`,
        ),
      ).to.match(/No such file[\s\S]*No such file/);
    });
  });

  describe("[partial] a multi-step create failing in a later step", () => {
    type Partial = "veth" | "sysctl";
    let stack: TestStack<Partial>;

    before(() => {
      stack = new TestStack<Partial>(
        "test-reliab-partial",
        "veth",
        async (which) => {
          const connection = labConnection(h);
          if (which === "veth")
            new VethLink("rl-veth", {
              connection,
              a: { name: "rlpa", up: true },
              b: { name: "rlpb", master: "rlnobr", up: true },
            });
          else
            new VmNetns("rl-sysctl", {
              connection,
              name: "rl-sysctl",
              sysctls: { "net.ipv4.conf.all.rp_filter": "99999999999" },
            });
        },
      );
    });

    after(async () => stack.dispose());

    const stateHas = async (type: string): Promise<boolean> =>
      JSON.parse(await stack.exportState()).deployment.resources?.some(
        (r: any) => r.type === `pulumi-nodejs:dynamic/hostnet:${type}`,
      ) ?? false;

    it("a VethLink whose end's master does not exist: up fails naming the bridge; no pair on the host, none in state", async () => {
      let error = "";
      await stack.up().catch((e: Error) => (error = e.message));
      if (process.env.RL_VERBOSE) console.log(error);
      expect(error).to.include("rlnobr").and.include(`root@${h.address}:22`);
      expect(
        sshRun(h, "ip -o link show | grep -E 'rlp[ab]' || echo none").trim(),
      ).to.equal("none");
      expect(await stateHas("VethLink")).to.equal(false);
    });

    it("a VmNetns with a sysctl value the kernel refuses: up fails naming it; the namespace is not left behind", async () => {
      stack.config = "sysctl";
      let error = "";
      await stack.up().catch((e: Error) => (error = e.message));
      if (process.env.RL_VERBOSE) console.log(error);
      expect(error).to.include("rp_filter").and.include("Invalid argument");
      expect(
        sshRun(h, "ip netns list | grep -w rl-sysctl || echo none").trim(),
      ).to.equal("none");
      expect(await stateHas("VmNetns")).to.equal(false);
    });
  });

  describe("[identity] the address answers as another machine", () => {
    let proxy: net.Server;
    let target: LabHost;
    let port = 0;
    const knownHosts = path.join(
      ROOT,
      ".hostnet",
      "work",
      `rl-known_hosts-${process.pid}`,
    );
    let stack: TestStack<{ forward: string }>;
    /** The proxy listens on the lab bridge's address (198.18.J.1 in lab J), which the lab hosts reach. */
    const gateway = () => inventory().gateway;
    const lab3 = () =>
      sshRun(
        other,
        "ip netns list | grep -w rlid >/dev/null && ip netns exec rlid sysctl -n net.ipv4.ip_forward || echo absent",
      ).trim();

    /** The address moves: the TCP forwarder now reaches `to`, and known_hosts pins its real key (SSH succeeds). */
    const pointAt = (to: LabHost) => {
      target = to;
      fs.writeFileSync(knownHosts, `[${gateway()}]:${port} ${to.hostKey}\n`);
    };

    before(async () => {
      for (const x of [h, other])
        sshRun(x, "ip netns del rlid 2>/dev/null; true", { allowFail: true });
      proxy = net.createServer((c) => {
        const s = net.connect(22, target.address);
        c.pipe(s).pipe(c);
        c.on("error", () => s.destroy());
        s.on("error", () => c.destroy());
      });
      await new Promise<void>((r) => proxy.listen(0, gateway(), r));
      port = (proxy.address() as net.AddressInfo).port;
      pointAt(h);
      const connection = {
        host: gateway(),
        port,
        user: "root",
        knownHostsFile: knownHosts,
        privateKey: privateKey(),
      };
      stack = new TestStack(
        "test-reliab-identity",
        { forward: "0" },
        async (c) => {
          new VmNetns("rlid", {
            connection,
            name: "rlid",
            sysctls: { "net.ipv4.ip_forward": c.forward },
          });
        },
      );
    });

    after(async () => {
      pointAt(h);
      await stack.dispose();
      sshRun(other, "ip netns del rlid 2>/dev/null; true", { allowFail: true });
      proxy.close();
      fs.rmSync(knownHosts, { force: true });
    });

    it("up, refresh and destroy refuse with the machine-id message and change nothing on the other machine", async () => {
      await stack.up();
      expect(
        sshRun(h, "ip netns exec rlid sysctl -n net.ipv4.ip_forward").trim(),
      ).to.equal("0");
      // What a run against the wrong machine would touch: a namespace of the same name there.
      sshRun(
        other,
        "ip netns add rlid && ip netns exec rlid sysctl -q -w net.ipv4.ip_forward=0",
      );
      pointAt(other);
      const refusal = new RegExp(
        `root@${escapeRegExp(gateway())}:${port} now answers as machine ${other.machineId} \\(hostname ${other.name}\\), but this resource lives on machine ${h.machineId}\\. Nothing was changed`,
      );
      stack.config = { forward: "1" };
      const failures: Record<string, string> = {};
      await stack.up().catch((e: Error) => (failures.up = e.message));
      await stack.refresh().catch((e: Error) => (failures.refresh = e.message));
      await stack.destroy().catch((e: Error) => (failures.destroy = e.message));
      if (process.env.RL_VERBOSE) console.log(failures);
      for (const op of ["up", "refresh", "destroy"])
        expect(failures[op] ?? `${op} succeeded`, op).to.match(refusal);
      expect(
        lab3(),
        "lab3's namespace of the same name: still there, sysctl untouched",
      ).to.equal("0");
      expect(
        sshRun(h, "ip netns exec rlid sysctl -n net.ipv4.ip_forward").trim(),
        "lab2's namespace untouched",
      ).to.equal("0");
      pointAt(h);
      await stack.destroy();
      expect(
        sshRun(h, "ip netns list | grep -w rlid || echo none").trim(),
      ).to.equal("none");
      expect(lab3()).to.equal("0");
    });
  });

  describe("[secrets] the private key never leaves the secret", () => {
    const name = "test-reliab-secret";
    const outputs: string[] = [];

    after(async () => {
      const s = await inlineStack(name, async () => ({}));
      await s.destroy({ color: "never" }).catch(() => undefined);
      await s.workspace.removeStack(name).catch(() => undefined);
    });

    it("is absent from exportStack, engine output of up/preview/destroy (also a failing up), the trace and the state file", async () => {
      expect(
        keyBodyLines().length,
        "the needles come from the key itself",
      ).to.be.greaterThan(1);
      for (const line of keyBodyLines()) expect(privateKey()).to.include(line);
      let sysctl = "1";
      const stack = await inlineStack(name, async () => {
        const connection = pulumi
          .secret(privateKey())
          .apply((pk) => ({ ...labConnection(h), privateKey: pk }));
        const ns = new VmNetns("rl-secret", {
          connection,
          name: "rl-secret",
          sysctls: { "net.ipv4.ip_forward": sysctl },
        });
        new VethLink(
          "rl-secret-veth",
          {
            connection,
            a: { name: "rlsa", up: true },
            b: { name: "rlsb", netns: "rl-secret", up: true },
          },
          { dependsOn: [ns] },
        );
      });
      const up = await stack.up({ color: "never", diff: true });
      outputs.push(up.stdout, up.stderr);
      sysctl = "99999999999";
      const pv = await stack.preview({
        color: "never",
        diff: true,
        refresh: true,
      });
      outputs.push(pv.stdout, pv.stderr);
      await stack
        .up({ color: "never", diff: true })
        .catch((e: Error) =>
          outputs.push(String(e.message), JSON.stringify(e)),
        );
      const shown = await stack.exportStack();
      const ws = stack.workspace as LocalWorkspace;
      const exported = execFileSync(
        ws.pulumiCommand.command,
        ["stack", "export", "--stack", name],
        {
          cwd: ws.workDir,
          env: { ...process.env, ...ws.envVars },
          encoding: "utf8",
        },
      );
      const state = fs.readFileSync(stateFile(name), "utf8");
      const destroy = await stack.destroy({ color: "never" });
      outputs.push(destroy.stdout, destroy.stderr);
      expect(outputs.join("\n")).to.include("rl-secret"); // the output was captured at all
      expect(state).to.include("rl-secret");
      expectNoKey("pulumi stack export", exported);
      // exportStack() decrypts (--show-secrets): the key may appear there only inside values marked secret.
      expect(
        JSON.stringify(shown),
        "the decrypted export does hold the key",
      ).to.include(keyBodyLines()[0]);
      expectNoKey(
        "exportStack() outside secret values",
        JSON.stringify(withoutSecrets(shown)),
      );
      expectNoKey("state file", state);
      expectNoKey("engine output", outputs.join("\n"));
      expectNoKey("trace file", fs.readFileSync(TRACE, "utf8"));
      expect(exported).to.include("ciphertext"); // the credentials are there, encrypted
    });
  });
});
