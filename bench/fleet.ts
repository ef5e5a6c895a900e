// `npm run bench -- --fleet` (or `node dist/bench/fleet.js`): a fleet of H lab hosts × V VMs rolled
// out two ways, with hostnet's own runners and their engine settings (scripts/engine.ts):
//   host stacks  `npm run fleet -- up ENV`: one stack per host, batches from rollout.serial, at most
//                --parallel-hosts host stacks at once (default: the fleet runner's own default)
//   one stack    the whole environment in one stack and one engine process, as
//                `npm run pulumi -- up -s ENV` runs it
// and reports wall time of up and destroy, per-host time, state bytes per stack and peak memory of
// the process tree (engines, providers, programs). VMs are isolated-netns + managed fdb with taps,
// like the provisioning benchmark.
//
//   node dist/bench/fleet.js [--hosts 20] [--vms 50] [--parallel-hosts N] [--readme]
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT, STATE_DIR } from "../scripts/engine";
import { defaultParallelHosts } from "../scripts/fleet";
import { hostStackName } from "../scripts/fleetHost";
import { labUp, LabHost, sshRun } from "../test/support/lab";
import {
  BenchSection,
  descendantsOf,
  median,
  readText,
  statFields,
} from "./provision";
import { markdownTable, writeResultBlock } from "./readme";

// A lab environment name, so its stacks get the lab passphrase (scripts/stackName.ts).
const ENV = "lab-bench-fleet";
const BRIDGE = "br-bf";
const CONFIG_DIR = path.join(PROJECT_ROOT, ".hostnet", "tmp", "bench-fleet");
const ONE_STACK_HOST = "all";
const SERIAL = '[1, "25%", "100%"]';

interface Args {
  hosts: number;
  vms: number;
  parallelHosts: number;
  readme: boolean;
}

function parseArgs(argv: string[]): Args {
  const value = (flag: string, dflt: number, max: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const v = argv[i + 1] ?? "";
    if (!/^[1-9][0-9]*$/.test(v) || Number(v) > max)
      throw new Error(`${flag} takes a whole number 1..${max}, got '${v}'`);
    return Number(v);
  };
  return {
    hosts: value("--hosts", 20, 64),
    vms: value("--vms", 50, 250),
    parallelHosts: value("--parallel-hosts", defaultParallelHosts(), 64),
    readme: argv.includes("--readme"),
  };
}

/** Pulumi.<env>.yaml of the fleet: V VMs per lab host, canary + batches, no health check (taps). */
function environmentYaml(hosts: LabHost[], vms: number): string {
  const lines = [
    "config:",
    "  hostnet:inventory: lab",
    "  hostnet:bridges:",
    `    - name: ${BRIDGE}`,
    "  hostnet:vms:",
  ];
  hosts.forEach((h, i) => {
    for (let v = 1; v <= vms; v++) {
      const hh = (i + 1).toString(16).padStart(2, "0");
      const vv = v.toString(16).padStart(2, "0");
      lines.push(
        `    - {name: f${i + 1}v${v}, host: ${h.name}, attachment: isolated-netns, bridge: ${BRIDGE}, managedFdb: true, ` +
          `mac: "02:00:00:bf:${hh}:${vv}", ipv4: [198.19.${i + 1}.${v}/16]}`,
      );
    }
  });
  lines.push(
    "  hostnet:rollout:",
    `    serial: ${SERIAL}`,
    "    maxFailures: 0",
    "    healthCheck: false",
    "",
  );
  return lines.join("\n");
}

/**
 * Current RSS (KiB) of the process tree under `root` (provision.ts's /proc walk), summed, and of
 * its largest engine process: the fleet's memory is the sum of many engines alive at once.
 */
function treeRss(root: number): { total: number; engine: number } {
  let total = 0;
  let engine = 0;
  for (const pid of [root, ...descendantsOf(root)]) {
    const f = statFields(pid);
    if (!f) continue; // the process ended while we read it
    const rss = Number(f[21]) * 4; // field 24 of stat, pages of 4 KiB
    total += rss;
    if (readText(`/proc/${pid}/comm`)?.trim() === "pulumi")
      engine = Math.max(engine, rss);
  }
  return { total, engine };
}

interface Measured {
  seconds: number;
  code: number;
  /** Peak RSS of the whole process tree and of the largest engine process, MiB. */
  peakMiB: number;
  peakEngineMiB: number;
  out: string;
}

/** Runs a command, sampling its process tree's memory every 250 ms until it exits. */
function measure(cmd: string, args: string[]): Promise<Measured> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child: ChildProcess = spawn(cmd, args, {
      env: { ...process.env, HOSTNET_CONFIG_DIR: CONFIG_DIR },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (b) => (out += b));
    child.stderr!.on("data", (b) => (out += b));
    let peak = { total: 0, engine: 0 };
    const timer = setInterval(() => {
      const r = treeRss(child.pid!);
      peak = {
        total: Math.max(peak.total, r.total),
        engine: Math.max(peak.engine, r.engine),
      };
    }, 250);
    child.on("close", (code) => {
      clearInterval(timer);
      resolve({
        seconds: (Date.now() - t0) / 1000,
        code: code ?? 1,
        peakMiB: peak.total / 1024,
        peakEngineMiB: peak.engine / 1024,
        out,
      });
    });
  });
}

const node = (script: string, ...args: string[]): [string, string[]] => [
  "node",
  [path.join(PROJECT_ROOT, "dist", "scripts", script), ...args],
];

function stateBytes(stack: string): number {
  const file = path.join(
    STATE_DIR,
    ".pulumi",
    "stacks",
    "hostnet",
    `${stack}.json`,
  );
  return fs.existsSync(file) ? fs.statSync(file).size : NaN;
}

function must(m: Measured, what: string): Measured {
  if (m.code !== 0)
    throw new Error(`${what} failed (exit ${m.code}):\n${m.out.slice(-3000)}`);
  return m;
}

interface Variant {
  up: Measured;
  destroy: Measured;
  /** Per host stack (or the one stack): seconds of its up and bytes of its state. */
  stacks: { name: string; seconds: number; stateBytes: number }[];
}

async function hostStacks(
  hosts: LabHost[],
  parallel: number,
): Promise<Variant> {
  const fleet = (op: string) =>
    measure(...node("fleet.js", op, ENV, "--parallel-hosts", String(parallel)));
  const up = must(await fleet("up"), "fleet up");
  const report = JSON.parse(
    fs.readFileSync(
      path.join(PROJECT_ROOT, ".hostnet", "reports", `${ENV}-fleet-up.json`),
      "utf8",
    ),
  ) as { hosts: { host: string; seconds: number }[] };
  const stacks = report.hosts.map((r) => ({
    name: r.host,
    seconds: r.seconds,
    stateBytes: stateBytes(hostStackName(ENV, r.host)),
  }));
  const destroy = must(await fleet("destroy"), "fleet destroy");
  if (stacks.length !== hosts.length)
    throw new Error(
      `fleet up reported ${stacks.length} hosts, expected ${hosts.length}`,
    );
  return { up, destroy, stacks };
}

/** The whole environment in one stack, through the same per-stack runner the fleet uses. */
async function oneStack(envText: string): Promise<Variant> {
  const dir = path.join(PROJECT_ROOT, ".hostnet", "fleet", ENV);
  fs.mkdirSync(path.join(dir, "logs"), { recursive: true });
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    "name: hostnet\nruntime: nodejs\n",
  );
  fs.writeFileSync(
    path.join(dir, `Pulumi.${ENV}.${ONE_STACK_HOST}.yaml`),
    envText,
  );
  const log = path.join(dir, "logs", "one-stack.log");
  const run = (op: string) =>
    measure(...node("fleetHost.js", dir, ENV, ONE_STACK_HOST, op, log));
  const ok = (m: Measured, what: string) => {
    const line = m.out.split("\n").find((l) => l.startsWith("RESULT "));
    const r = line ? JSON.parse(line.slice(7)) : { ok: false, error: m.out };
    if (!r.ok)
      throw new Error(`${what} failed: ${r.error} (engine log: ${log})`);
    return m;
  };
  const up = ok(await run("up"), "one-stack up");
  const name = hostStackName(ENV, ONE_STACK_HOST);
  const stacks = [{ name, seconds: up.seconds, stateBytes: stateBytes(name) }];
  const destroy = ok(await run("destroy"), "one-stack destroy");
  return { up, destroy, stacks };
}

/** Nothing of the benchmark may stay on a lab host: its bridge and VM namespaces. */
function assertClean(hosts: LabHost[]): void {
  for (const h of hosts) {
    const left = sshRun(
      h,
      `ip -o link show ${BRIDGE} 2>/dev/null; ip netns list | grep -E '^vm-f[0-9]+v[0-9]+' || true`,
    ).trim();
    if (left)
      throw new Error(
        `${h.name} kept benchmark objects after destroy:\n${left}`,
      );
  }
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

function section(
  a: Args,
  hs: Variant,
  one: Variant,
  load: string[],
): BenchSection {
  const per = (v: Variant) => v.stacks.map((s) => s.seconds);
  const bytes = (v: Variant) => v.stacks.map((s) => s.stateBytes);
  const row = (label: string, f: (v: Variant) => string) => [
    label,
    f(hs),
    f(one),
  ];
  return {
    title: `Fleet: ${a.hosts} lab hosts × ${a.vms} isolated-netns + managed-fdb VMs (host stacks: serial ${SERIAL}, --parallel-hosts ${a.parallelHosts}; runners' engine settings)`,
    columns: [
      "metric",
      "host stacks (npm run fleet)",
      "one stack (npm run pulumi)",
    ],
    rows: [
      row("up from empty, wall (s)", (v) => f1(v.up.seconds)),
      row("destroy, wall (s)", (v) => f1(v.destroy.seconds)),
      row(
        "per stack up (s): median / max",
        (v) => `${f1(median(per(v)))} / ${f1(Math.max(...per(v)))}`,
      ),
      row("stacks", (v) => String(v.stacks.length)),
      row(
        "state per stack (KB): median / max",
        (v) =>
          `${f1(median(bytes(v)) / 1000)} / ${f1(Math.max(...bytes(v)) / 1000)}`,
      ),
      row("peak RSS of all processes, up (MiB)", (v) => f1(v.up.peakMiB)),
      row("peak RSS of one engine, up (MiB)", (v) => f1(v.up.peakEngineMiB)),
    ],
    notes: [
      `load average ${load[0]} at start, ${load[1]} at end on ${require("os").cpus().length} CPUs`,
    ],
  };
}

export async function runFleetBench(
  a: Args,
  log: (l: string) => void,
): Promise<BenchSection> {
  const loadavg = () =>
    fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const load0 = loadavg();
  log(`fleet bench: bringing up ${a.hosts} lab hosts`);
  const hosts = labUp(a.hosts).hosts;
  // The environment takes every lab host (inventory: lab), so the lab must be exactly this wide.
  if (hosts.length !== a.hosts)
    throw new Error(
      `the lab has ${hosts.length} hosts and the fleet bench wants exactly ${a.hosts}: take this lab down first (HOSTNET_LAB_ID=${process.env.HOSTNET_LAB_ID ?? 0} bash scripts/lab.sh down) or pass --hosts ${hosts.length}`,
    );
  fs.mkdirSync(CONFIG_DIR, { recursive: true });
  const envText = environmentYaml(hosts, a.vms);
  fs.writeFileSync(path.join(CONFIG_DIR, `Pulumi.${ENV}.yaml`), envText);
  try {
    log(`fleet bench: host stacks, ${a.hosts} × ${a.vms}`);
    const hs = await hostStacks(hosts, a.parallelHosts);
    assertClean(hosts);
    log(`  up ${f1(hs.up.seconds)} s, destroy ${f1(hs.destroy.seconds)} s`);
    log(`fleet bench: one stack, ${a.hosts} × ${a.vms}`);
    const one = await oneStack(envText);
    assertClean(hosts);
    log(`  up ${f1(one.up.seconds)} s, destroy ${f1(one.destroy.seconds)} s`);
    const s = section(a, hs, one, [load0, loadavg()]);
    const results = path.join(PROJECT_ROOT, "bench", "results", "fleet.json");
    const strip = (v: Variant) => ({
      ...v,
      up: { ...v.up, out: undefined },
      destroy: { ...v.destroy, out: undefined },
    });
    fs.writeFileSync(
      results,
      JSON.stringify(
        {
          at: new Date().toISOString(),
          args: a,
          hostStacks: strip(hs),
          oneStack: strip(one),
          load: [load0, loadavg()],
        },
        null,
        2,
      ),
    );
    if (a.readme)
      writeResultBlock(
        "fleet",
        "Fleet",
        `Run of ${new Date().toISOString()}. Raw data: \`bench/results/fleet.json\`.\n\n${markdownTable(s)}`,
      );
    return s;
  } finally {
    fs.rmSync(CONFIG_DIR, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runFleetBench(parseArgs(process.argv.slice(2)), (l) => console.log(l)).then(
    (s) => console.log("\n" + markdownTable(s)),
    (e) => {
      console.error(
        `fleet bench failed: ${e instanceof Error ? e.message : e}`,
      );
      process.exit(1);
    },
  );
}

export { parseArgs as parseFleetArgs };
