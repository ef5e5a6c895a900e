// `npm run bench`: the provisioning benchmark (bench/provision.ts), the transport benchmark
// (bench/transport.ts), then the data-plane benchmark
// when bench/dataplane.ts exists, printed as one table; results go to bench/results/*.json and,
// after a full run, into the "Provisioning" section of bench/README.md (between its result markers;
// the rest of the file, the "Data plane" section included, is left as it is).
//
//   node dist/bench/run.js --fleet [--hosts 20] [--vms 50] [--parallel-hosts N] [--readme]  (bench/fleet.ts)
//   node dist/bench/run.js [--quick] [--sizes 30,100,300] [--reps 3,2,1] [--parallel N]
//                          [--defaults-sizes 30,100] [--wide-sizes 100,300]
//                          [--no-dataplane] [--no-provisioning] [--no-transport] [--readme|--no-readme] [--from FILE] [--resume FILE]
//   --quick           N = 5, 10, one repetition, no variants: checks the whole pipeline in a few minutes
//   --defaults-sizes  sizes also run once with the engine's defaults (checkpoint after every step);
//                     the main runs use the runners' settings (scripts/engine.ts)
//   --wide-sizes      sizes also run once with --parallel WIDE (every ready step in flight at once)
//                     (either list may be `none`)
//   --from FILE       no measurement: print (and put in the README) the table of a saved report
//   --resume FILE     continue an interrupted run from its bench/results/provisioning-partial.json
//                     (written after every measurement); what it holds is not measured again
//
// Contract with bench/dataplane.ts: it may export
//   runDataplaneBench(opts: { quick: boolean; log: (line: string) => void }): Promise<R>
// where R is a BenchSection ({ title, columns, rows: string[][], notes? }), an object holding one
// under `section`, or an array of flat records (one row each); anything else is printed as JSON.
// It writes its own results files and README block.
import * as fs from "fs";
import * as path from "path";
import {
  ENGINE_PARALLEL,
  engineSwitches,
  PROJECT_ROOT,
} from "../scripts/engine";
import {
  BenchSection,
  ProvisionReport,
  provisioningSection,
  runProvisioningBench,
} from "./provision";
import { parseFleetArgs, runFleetBench } from "./fleet";
import { markdownTable, replaceResultBlock } from "./readme";
import { runAndRecordTransport } from "./transport";

const RESULTS_DIR = path.join(PROJECT_ROOT, "bench", "results");
const README = path.join(PROJECT_ROOT, "bench", "README.md");
/**
 * The main measurement runs with exactly the runners' engine settings (scripts/engine.ts: engineEnv
 * applies them to every stack, the bench sets nothing of its own); they are recorded with the
 * results. The "engine defaults" variant turns per-step checkpoints back on, for comparison.
 */
const RUNNER_SETTINGS = engineSwitches();
const ENGINE_DEFAULTS = {
  PULUMI_SKIP_CHECKPOINTS: "false",
  PULUMI_DISABLE_CHECKPOINT_BACKUPS: "false",
};

/** The "wide" variant's --parallel: above any step count here, so the engine never holds a step back. */
const WIDE = 4096;

interface Args {
  quick: boolean;
  sizes: number[];
  reps: number[];
  parallel: number;
  defaultsSizes: number[];
  wideSizes: number[];
  dataplane: boolean;
  provisioning: boolean;
  transport: boolean;
  readme: boolean;
  from?: string;
  resume?: string;
}

function parseArgs(argv: string[]): Args {
  const quick = argv.includes("--quick");
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = (s: string | undefined) =>
    s === "none" ? [] : s?.split(",").map((x) => Number(x.trim()));
  const sizes = list(value("--sizes")) ?? (quick ? [5, 10] : [30, 100, 300]);
  const reps = list(value("--reps")) ?? (quick ? [1] : [3, 2, 1]);
  const defaultsSizes =
    list(value("--defaults-sizes")) ?? (quick ? [] : [30, 100]);
  const wideSizes = list(value("--wide-sizes")) ?? (quick ? [] : [100, 300]);
  if (
    [...sizes, ...defaultsSizes, ...wideSizes].some(
      (n) => !Number.isInteger(n) || n < 1 || n > 999,
    ) ||
    reps.some((r) => !Number.isInteger(r) || r < 1)
  ) {
    throw new Error(
      "--sizes takes VM counts 1–999 and --reps repetition counts ≥ 1, comma-separated (e.g. --sizes 30,100,300 --reps 3,2,1)",
    );
  }
  return {
    quick,
    sizes,
    reps,
    parallel: Number(value("--parallel") ?? ENGINE_PARALLEL),
    defaultsSizes,
    wideSizes,
    dataplane: !argv.includes("--no-dataplane"),
    provisioning: !argv.includes("--no-provisioning"),
    transport: !argv.includes("--no-transport"),
    readme:
      argv.includes("--readme") || (!quick && !argv.includes("--no-readme")),
    from: value("--from"),
    resume: value("--resume"),
  };
}

// ---------------------------------------------------------------------------------------
// One table out of any number of sections
// ---------------------------------------------------------------------------------------

export function renderTable(sections: BenchSection[]): string {
  const width: number[] = [];
  for (const s of sections)
    for (const r of [s.columns, ...s.rows])
      r.forEach((c, i) => (width[i] = Math.max(width[i] ?? 0, c.length)));
  const line = (cells: string[]) =>
    "| " +
    width
      .map((w, i) =>
        i === 0 ? (cells[i] ?? "").padEnd(w) : (cells[i] ?? "").padStart(w),
      )
      .join(" | ") +
    " |";
  const rule = "+" + width.map((w) => "-".repeat(w + 2)).join("+") + "+";
  const out: string[] = [];
  for (const s of sections) {
    out.push(
      `  ${s.title}`,
      rule,
      line(s.columns),
      rule,
      ...s.rows.map(line),
      rule,
    );
    for (const n of s.notes ?? []) out.push(`  ${n}`);
  }
  return out.join("\n");
}

function isSection(x: any): x is BenchSection {
  return (
    x &&
    typeof x.title === "string" &&
    Array.isArray(x.columns) &&
    Array.isArray(x.rows)
  );
}

/** Whatever the data-plane bench returns, as a section of the one table. */
function toSection(x: any): BenchSection {
  if (isSection(x)) return x;
  if (isSection(x?.section)) return x.section;
  if (
    Array.isArray(x) &&
    x.length > 0 &&
    x.every((r) => r && typeof r === "object")
  ) {
    const keys = [...new Set(x.flatMap((r: object) => Object.keys(r)))];
    return {
      title: "Data plane",
      columns: keys,
      rows: x.map((r: any) => keys.map((k) => String(r[k] ?? ""))),
    };
  }
  return {
    title: "Data plane (raw result)",
    columns: ["result"],
    rows: [[JSON.stringify(x)?.slice(0, 2000) ?? String(x)]],
  };
}

async function dataplane(
  args: Args,
  log: (l: string) => void,
): Promise<BenchSection | undefined> {
  let mod: any;
  try {
    mod = require("./dataplane");
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" &&
      (err as Error).message.startsWith("Cannot find module './dataplane'")
    ) {
      log("data plane: bench/dataplane.ts is not there (yet): skipped");
      return undefined;
    }
    throw err;
  }
  if (typeof mod.runDataplaneBench !== "function") {
    log(
      "data plane: bench/dataplane.ts does not export runDataplaneBench: skipped",
    );
    return undefined;
  }
  return toSection(await mod.runDataplaneBench({ quick: args.quick, log }));
}

// ---------------------------------------------------------------------------------------
// Results and README
// ---------------------------------------------------------------------------------------

function writeJson(name: string, data: unknown): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, name);
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
  return file;
}

/** Replaces the marked results block of the Provisioning section; creates the section if missing. */
export function updateReadme(text: string, block: string): string {
  return replaceResultBlock(text, "provisioning", "Provisioning", block);
}

async function measureProvisioning(
  args: Args,
  log: (l: string) => void,
): Promise<ProvisionReport> {
  const name = args.quick ? "provisioning-quick.json" : "provisioning.json";
  const partial = name.replace(".json", "-partial.json");
  const report = await runProvisioningBench({
    sizes: args.sizes,
    reps: (n) =>
      args.reps[Math.min(args.sizes.indexOf(n), args.reps.length - 1)],
    settings: { parallel: args.parallel, env: RUNNER_SETTINGS },
    variants: [
      {
        label: "engine defaults (checkpoint per step)",
        settings: { parallel: args.parallel, env: ENGINE_DEFAULTS },
        sizes: args.defaultsSizes,
      },
      {
        label: `--parallel ${WIDE}`,
        settings: { parallel: WIDE, env: RUNNER_SETTINGS },
        sizes: args.wideSizes,
      },
    ],
    log,
    save: (r) => writeJson(partial, r),
    resume: args.resume
      ? JSON.parse(fs.readFileSync(args.resume, "utf8"))
      : undefined,
  });
  log(`results: ${writeJson(name, report)}`);
  fs.rmSync(path.join(RESULTS_DIR, partial), { force: true });
  return report;
}

async function main(): Promise<void> {
  const log = (l: string) => console.log(l);
  // `npm run bench -- --fleet [--hosts H] [--vms V] [--parallel-hosts N] [--readme]`: bench/fleet.ts.
  if (process.argv.includes("--fleet")) {
    const argv = process.argv.slice(2).filter((a) => a !== "--fleet");
    const s = await runFleetBench(parseFleetArgs(argv), log);
    console.log("\n" + markdownTable(s));
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  const sections: BenchSection[] = [];
  if (args.provisioning) {
    // --from FILE: render a saved report again (after a change to the table) without measuring.
    const report: ProvisionReport = args.from
      ? JSON.parse(fs.readFileSync(args.from, "utf8"))
      : await measureProvisioning(args, log);
    const section = provisioningSection(report);
    sections.push(section);
    if (args.readme) {
      const raw = path.relative(
        PROJECT_ROOT,
        args.from
          ? path.resolve(args.from)
          : path.join(RESULTS_DIR, "provisioning.json"),
      );
      const block = `Full run from ${report.startedAt} to ${report.finishedAt}. Raw data: \`${raw}\`.\n\n${markdownTable(section)}`;
      const text = fs.existsSync(README) ? fs.readFileSync(README, "utf8") : "";
      fs.writeFileSync(README, updateReadme(text, block));
      log(`README: updated the Provisioning results in ${README}`);
    }
  }
  if (args.transport) {
    sections.push(
      await runAndRecordTransport({
        reps: args.quick ? 1 : 3,
        ops: args.quick ? 200 : 1000,
        readme: args.readme,
        log,
      }),
    );
  }
  let failure: Error | undefined;
  if (args.dataplane) {
    // The data-plane bench writes its own results and README block; a failure there must not
    // lose the provisioning table.
    const dp = await dataplane(args, log).catch((err: Error) => {
      failure = err;
      return undefined;
    });
    if (dp) sections.push(dp);
  }
  console.log("\n" + renderTable(sections));
  if (failure)
    throw new Error(
      `data-plane benchmark failed (the provisioning results above are complete): ${failure.message}`,
    );
}

if (require.main === module) {
  main().catch((err) => {
    console.error(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  });
}
