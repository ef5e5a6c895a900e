// Transport benchmark (issue 3), on lab host lab3: 1,000 link operations issued together through the
// host queue (coalesced into a few `ip -batch` round trips) against the same 1,000 sent one SSH
// round trip each over the same pooled connection; and the time to read the host's state with 10,
// 100 and 300 namespaces — the whole host (what preview --refresh and drift reports read) and one
// namespace plus root (what a resource reads after a write). Creates and removes `bt*` objects only.
//
//   node dist/bench/transport.js [--ops 1000] [--reps 3] [--no-readme]
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostFor } from "../providers/host";
import { snapshotScript } from "../providers/state";
import { batchLine, closeAllSessions } from "../providers/transport";
import { PROJECT_ROOT } from "../scripts/engine";
import { readLabInventory } from "../stacks/config";
import type { BenchSection } from "./provision";
import { markdownTable, writeResultBlock } from "./readme";

const SNAPSHOT_SIZES = [10, 100, 300];

function labHost3() {
  execFileSync(
    "bash",
    [path.join(PROJECT_ROOT, "scripts", "lab.sh"), "up", "3"],
    { stdio: "ignore" },
  );
  const inv = readLabInventory();
  const h = inv.hosts[2];
  return {
    host: h.address,
    port: h.port,
    hostKey: h.hostKey,
    privateKey: fs.readFileSync(inv.privateKeyPath, "utf8"),
  };
}

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export interface TransportReport {
  date: string;
  machine: string;
  ops: number;
  reps: number;
  coalescedMs: number[];
  coalescedRoundTrips: number[];
  oneRoundTripEachMs: number[];
  snapshotMs: Record<
    number,
    { wholeHost: number[]; oneNamespace: number[]; outputBytes: number }
  >;
}

export async function runTransportBench(
  opts: { ops?: number; reps?: number; log?: (l: string) => void } = {},
): Promise<TransportReport> {
  const N = opts.ops ?? 1000;
  const reps = opts.reps ?? 3;
  const log = opts.log ?? (() => undefined);
  const host = hostFor(labHost3());
  const report: TransportReport = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ""}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, kernel ${os.release()}, load at start ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
    ops: N,
    reps,
    coalescedMs: [],
    coalescedRoundTrips: [],
    oneRoundTripEachMs: [],
    snapshotMs: {},
  };
  const ops = (tag: string) =>
    Array.from({ length: N }, (_, i) =>
      batchLine(["link", "add", `bt${tag}${i}`, "type", "bridge"]),
    );
  const reset = () =>
    host.read("ip netns del btq 2>/dev/null; ip netns add btq\n", "reset");
  try {
    for (let r = 0; r < reps; r++) {
      await reset();
      const e0 = host.session.stats.execs;
      report.coalescedMs.push(
        await timed(() =>
          Promise.all(
            ops("c").map((line) =>
              host.run({
                kind: "batch",
                tool: "ip",
                netns: "btq",
                lines: [line],
                what: "bench",
              }),
            ),
          ),
        ),
      );
      report.coalescedRoundTrips.push(host.session.stats.execs - e0);
      await reset();
      report.oneRoundTripEachMs.push(
        await timed(async () => {
          for (const line of ops("s"))
            await host.read(`ip -n btq ${line}\n`, "bench single");
        }),
      );
      log(
        `transport: rep ${r + 1}/${reps}: ${N} ops coalesced ${report.coalescedMs[r].toFixed(0)} ms in ${report.coalescedRoundTrips[r]} round trips, one each ${report.oneRoundTripEachMs[r].toFixed(0)} ms`,
      );
    }
    await host.read("ip netns del btq 2>/dev/null; true\n", "clean up");
    for (const n of SNAPSHOT_SIZES) {
      await host.read(
        `for i in $(seq 1 ${n}); do echo netns add bts-$i; done | ip -batch -\n`,
        "make namespaces",
      );
      const entry = {
        wholeHost: [] as number[],
        oneNamespace: [] as number[],
        outputBytes: 0,
      };
      for (let r = 0; r < reps; r++) {
        host.invalidate();
        entry.wholeHost.push(await timed(() => host.snapshot()));
        host.invalidate();
        entry.oneNamespace.push(await timed(() => host.snapshot(["bts-1"])));
      }
      const whole = await host.session.exec(snapshotScript(), {
        idempotent: true,
        what: "measure the snapshot size",
      });
      entry.outputBytes = Buffer.byteLength(whole.stdout);
      report.snapshotMs[n] = entry;
      log(
        `transport: ${n} namespaces: whole host ${median(entry.wholeHost).toFixed(0)} ms, one namespace ${median(entry.oneNamespace).toFixed(0)} ms`,
      );
      await host.read(
        `for i in $(seq 1 ${n}); do echo netns del bts-$i; done | ip -batch -\n`,
        "remove namespaces",
      );
    }
  } finally {
    await host
      .read(
        "ip netns del btq 2>/dev/null; for n in $(ip netns list | cut -d' ' -f1 | grep '^bts-'); do ip netns del $n; done; true\n",
        "clean up",
      )
      .catch(() => undefined);
    closeAllSessions();
  }
  return report;
}

export function transportSection(r: TransportReport): BenchSection {
  const ms = (xs: number[]) => median(xs).toFixed(0);
  const rows: string[][] = [
    [`${r.ops} link ops, issued together (coalesced): ms`, ms(r.coalescedMs)],
    ["  round trips they took", String(median(r.coalescedRoundTrips))],
    [
      `${r.ops} link ops, one SSH round trip each: ms`,
      ms(r.oneRoundTripEachMs),
    ],
    [
      "  per op: coalesced / one each (ms)",
      `${(median(r.coalescedMs) / r.ops).toFixed(2)} / ${(median(r.oneRoundTripEachMs) / r.ops).toFixed(2)}`,
    ],
    [
      "  one each / coalesced",
      `${(median(r.oneRoundTripEachMs) / median(r.coalescedMs)).toFixed(1)}×`,
    ],
  ];
  for (const n of SNAPSHOT_SIZES) {
    const s = r.snapshotMs[n];
    if (!s) continue;
    rows.push([
      `snapshot, ${n} namespaces: whole host / root + one namespace (ms)`,
      `${ms(s.wholeHost)} / ${ms(s.oneNamespace)}`,
    ]);
    rows.push([`  whole-host output (KiB)`, (s.outputBytes / 1024).toFixed(0)]);
  }
  return {
    title: `Transport on lab3 (medians of ${r.reps}; ${r.date})`,
    columns: ["metric", "value"],
    rows,
    notes: [`machine: ${r.machine}`],
  };
}

/** Results file, README block; returns the section for the combined table. */
export async function runAndRecordTransport(opts: {
  ops?: number;
  reps?: number;
  readme: boolean;
  log: (l: string) => void;
}): Promise<BenchSection> {
  const report = await runTransportBench(opts);
  const dir = path.join(PROJECT_ROOT, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "transport.json"),
    JSON.stringify(report, null, 2) + "\n",
  );
  const section = transportSection(report);
  if (opts.readme) {
    writeResultBlock(
      "transport",
      "Transport",
      `Raw data: \`bench/results/transport.json\`.\n\n${markdownTable(section)}`,
    );
  }
  return section;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const value = (flag: string) =>
    argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : undefined;
  runAndRecordTransport({
    ops: value("--ops"),
    reps: value("--reps"),
    readme: !argv.includes("--no-readme"),
    log: (l) => console.log(l),
  }).then(
    (section) => {
      console.log(JSON.stringify(section, null, 2));
      process.exit(0);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
