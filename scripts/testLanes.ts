// The test suite in parallel lanes (scripts/test.sh runs this unless HOSTNET_TEST_LANES=1; default 3): the
// unit tests first, then the integration files split into K lanes, each lane ONE mocha process
// against its own lab (HOSTNET_LAB_ID = HOSTNET_TEST_LAB_BASE + lane), so lanes never share lab
// hosts, a bridge, an inventory or a key. Files go longest-first to the least-loaded lane by the
// checked-in times in test/lanes.json. Each lane's output is buffered and printed whole when the
// lane ends (a progress line every minute meanwhile, and .hostnet/reports/test-lane-N.log as it
// comes); the run ends with the time per file of all lanes and ONE closing line "N passed,
// N failed, N skipped" summed over the unit run and every lane. Exit status 1 when any run failed or did not print its closing line.
//
//   node dist/scripts/testLanes.js [mocha args...]        run (scripts/test.sh passes "$@")
//   node dist/scripts/testLanes.js --times-from LOG...     rewrite test/lanes.json from the
//                                                          "time per test file" blocks of logs
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";

const ROOT = path.resolve(__dirname, "..", "..");
const TIMES_FILE = path.join(ROOT, "test", "lanes.json");
const UNIT_DIR = path.join("dist", "test", "unit");
const INTEGRATION_DIR = path.join("dist", "test", "integration");
const LAB_FILE = "lab.test.js";
/** Seconds assumed for an integration file that test/lanes.json does not list yet. */
const UNKNOWN_FILE_SECONDS = 60;
const PROGRESS_EVERY_MS = 60_000;

/** test/lanes.json: wall seconds per integration file (basename of the compiled file). */
const LaneTimes = z.object({
  note: z.string().optional(),
  seconds: z.record(z.string(), z.number().nonnegative()),
});
type LaneTimes = z.infer<typeof LaneTimes>;

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

const CLOSING = /^(\d+) passed, (\d+) failed, (\d+) skipped$/gm;

/** The reporter's closing count in `out` (its last one), or undefined when the run never printed it. */
export function closingCounts(out: string): Counts | undefined {
  let last: Counts | undefined;
  for (const m of out.matchAll(CLOSING))
    last = { passed: +m[1], failed: +m[2], skipped: +m[3] };
  return last;
}

/** The reporter's "time per test file (s):" block(s) in `out`, as file → seconds (unit files too). */
export function fileTimes(out: string): Map<string, number> {
  const times = new Map<string, number>();
  let inBlock = false;
  for (const line of out.split("\n")) {
    if (line.startsWith("time per test file (s):")) {
      inBlock = true;
      continue;
    }
    const m = inBlock ? /^ +(\d+) {2}(\S+\.test\.js)$/.exec(line) : null;
    if (m) times.set(m[2], Number(m[1]));
    else inBlock = false;
  }
  return times;
}

/**
 * Files that must share a lane: both deploy the project's real `lab` stack (one into the file
 * backend, one into Postgres) and both write .hostnet/reports/lab-drift.json, which each reads
 * back; in two lanes at once one would read the other's report.
 */
export const SAME_LANE: readonly (readonly string[])[] = [
  ["gitops.test.js", "backend.test.js"],
];

/**
 * Longest-first onto the least-loaded lane (ties: the lower lane); a SAME_LANE group moves as one
 * unit, its files in the given order. The lab test goes first in lane 0, as in the serial run: it
 * takes its lab down at its end, and later files bring it up again.
 */
export function assignLanes(
  files: string[],
  seconds: Record<string, number>,
  lanes: number,
  sameLane: readonly (readonly string[])[] = SAME_LANE,
): { files: string[]; seconds: number }[] {
  const out = Array.from({ length: lanes }, () => ({
    files: [] as string[],
    seconds: 0,
  }));
  const cost = (f: string) => seconds[path.basename(f)] ?? UNKNOWN_FILE_SECONDS;
  const isLab = (f: string) => path.basename(f) === LAB_FILE;
  for (const f of files.filter(isLab)) {
    out[0].files.push(f);
    out[0].seconds += cost(f);
  }
  const groupOf = (f: string) =>
    sameLane.findIndex((g) => g.includes(path.basename(f)));
  const units: string[][] = [];
  for (const f of files.filter((f) => !isLab(f))) {
    const g = groupOf(f);
    const unit = g < 0 ? undefined : units.find((u) => groupOf(u[0]) === g);
    if (unit) unit.push(f);
    else units.push([f]);
  }
  const unitCost = (u: string[]) => u.reduce((t, f) => t + cost(f), 0);
  units.sort((a, b) => unitCost(b) - unitCost(a) || a[0].localeCompare(b[0]));
  for (const u of units) {
    const lane = out.reduce((min, l) => (l.seconds < min.seconds ? l : min));
    lane.files.push(...u);
    lane.seconds += unitCost(u);
  }
  return out;
}

function readTimes(): LaneTimes {
  const raw = JSON.parse(fs.readFileSync(TIMES_FILE, "utf8"));
  const r = LaneTimes.safeParse(raw);
  if (!r.success)
    throw new Error(
      `${TIMES_FILE}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")} ` +
        `(expected {"seconds": {"x.test.js": 123, ...}}; refresh it with --times-from LOG)`,
    );
  return r.data;
}

function writeTimes(times: Map<string, number>, note: string): void {
  const seconds: Record<string, number> = {};
  for (const [f, s] of [...times].sort((a, b) => b[1] - a[1])) seconds[f] = s;
  fs.writeFileSync(
    TIMES_FILE,
    JSON.stringify({ note, seconds }, null, 2) + "\n",
  );
}

/** One positive integer from the environment, or exit 2 naming the variable. */
function envInt(name: string, fallback: number, min: number, max: number) {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  if (!/^\d+$/.test(v) || +v < min || +v > max) {
    console.error(
      `test lanes: ${name} must be a whole number ${min}..${max}, got '${v}'; nothing was run`,
    );
    process.exit(2);
  }
  return +v;
}

const listTests = (dir: string) =>
  fs
    .readdirSync(path.join(ROOT, dir))
    .filter((f) => f.endsWith(".test.js"))
    .sort()
    .map((f) => path.join(dir, f));

interface RunResult {
  code: number | null;
  out: string;
}

/** One mocha process; its output is streamed (unit run) or kept and returned (lanes). */
function mocha(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { stream: boolean; log?: string; onLine?: (line: string) => void },
): Promise<RunResult> {
  const bin = require.resolve("mocha/bin/mocha.js", { paths: [ROOT] });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child.pid!);
    let out = "";
    let partial = "";
    const log = opts.log ? fs.openSync(opts.log, "w") : undefined;
    const take = (chunk: Buffer) => {
      const s = chunk.toString();
      if (opts.stream) process.stdout.write(s);
      if (log !== undefined) fs.writeSync(log, s);
      out += s;
      partial += s;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) opts.onLine?.(l);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => {
      children.delete(child.pid!);
      if (log !== undefined) fs.closeSync(log);
      resolve({ code, out });
    });
  });
}

const children = new Set<number>();

/** Ctrl-C / SIGTERM reach every lane's mocha too (they are not in a shell's job). */
function forwardSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.on(sig, () => {
      for (const pid of children) process.kill(pid, sig);
      console.error(
        `test lanes: ${sig}: stopped ${children.size} mocha run(s); their labs may still be up (bash scripts/lab.sh down with each lane's HOSTNET_LAB_ID)`,
      );
      process.exit(130);
    });
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--times-from") {
    const logs = argv.slice(1);
    const times = new Map<string, number>();
    for (const log of logs)
      for (const [f, s] of fileTimes(fs.readFileSync(log, "utf8")))
        times.set(f, s); // a later log wins
    if (times.size === 0) {
      console.error(
        `test lanes: no "time per test file (s):" block in ${logs.join(", ") || "(no log given)"}; ${TIMES_FILE} unchanged`,
      );
      return 2;
    }
    writeTimes(
      times,
      "wall seconds per integration file, from the reporter's 'time per test file' (node dist/scripts/testLanes.js --times-from LOG)",
    );
    console.log(`test lanes: wrote ${times.size} file times to ${TIMES_FILE}`);
    return 0;
  }

  const lanes = envInt("HOSTNET_TEST_LANES", 3, 1, 10);
  const base = envInt("HOSTNET_TEST_LAB_BASE", 0, 0, 9);
  if (base + lanes - 1 > 9) {
    console.error(
      `test lanes: HOSTNET_TEST_LAB_BASE=${base} with HOSTNET_TEST_LANES=${lanes} needs labs ${base}..${base + lanes - 1}, but lab IDs stop at 9; nothing was run`,
    );
    return 2;
  }
  const times = readTimes();
  forwardSignals();
  const common = ["--timeout", "600000", ...argv];
  const reporter = ["--reporter", "dist/test/support/reporter.js"];
  const started = Date.now();

  // Unit tests: pure code, no lab, so no lab hooks.
  console.log(`== unit tests (one mocha run)`);
  const unit = await mocha(
    [...reporter, ...common, ...listTests(UNIT_DIR)],
    process.env,
    { stream: true },
  );

  const plan = assignLanes(listTests(INTEGRATION_DIR), times.seconds, lanes);
  plan.forEach((l, i) =>
    console.log(
      `== lane ${i} (lab ${base + i}, ~${l.seconds} s by test/lanes.json): ${l.files.map((f) => path.basename(f)).join(" ")}`,
    ),
  );
  // Each lane's output as it comes, for watching a run; the log itself shows it when the lane ends.
  const logDir = path.join(ROOT, ".hostnet", "reports");
  fs.mkdirSync(logDir, { recursive: true });
  const logOf = (i: number) => path.join(logDir, `test-lane-${i}.log`);
  console.log(
    `== live output of each lane: ${logOf(0).replace(/0\.log$/, "N.log")}`,
  );
  const progress = plan.map(() => ({ passed: 0, failed: 0, done: false }));
  const timer = setInterval(() => {
    const mins = ((Date.now() - started) / 60000).toFixed(0);
    console.log(
      `== ${mins} min: ` +
        progress
          .map(
            (p, i) =>
              `lane ${i} ${p.done ? "done" : "running"} ${p.passed} passed ${p.failed} failed`,
          )
          .join("; "),
    );
  }, PROGRESS_EVERY_MS);
  const results = await Promise.all(
    plan.map(async (l, i) => {
      const env = { ...process.env, HOSTNET_LAB_ID: String(base + i) };
      const t0 = Date.now();
      const r = await mocha(
        [
          "--require",
          "dist/test/support/hooks.js",
          ...reporter,
          ...common,
          ...l.files,
        ],
        env,
        {
          stream: false,
          log: logOf(i),
          onLine: (line) => {
            if (/^\s+✔ /.test(line)) progress[i].passed++;
            else if (/^\s+\d+\) /.test(line)) progress[i].failed++;
          },
        },
      );
      progress[i].done = true;
      const secs = ((Date.now() - t0) / 1000).toFixed(0);
      console.log(
        `\n==================== lane ${i} (lab ${base + i}): exit ${r.code}, ${secs} s ====================`,
      );
      process.stdout.write(r.out);
      return r;
    }),
  );
  clearInterval(timer);

  const all = [unit, ...results];
  const names = ["unit tests", ...plan.map((_, i) => `lane ${i}`)];
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const broken: string[] = [];
  all.forEach((r, i) => {
    const c = closingCounts(r.out);
    if (!c)
      broken.push(`${names[i]} printed no closing count (exit ${r.code})`);
    else {
      total.passed += c.passed;
      total.failed += c.failed;
      total.skipped += c.skipped;
    }
    if (r.code !== 0) broken.push(`${names[i]} exited ${r.code}`);
  });
  const perFile = new Map<string, number>();
  for (const r of results)
    for (const [f, s] of fileTimes(r.out)) perFile.set(f, s);
  console.log(
    `\ntime per test file over ${lanes} lanes (s), whole run ${((Date.now() - started) / 1000).toFixed(0)} s:`,
  );
  for (const [f, s] of [...perFile].sort((a, b) => b[1] - a[1]))
    console.log(`  ${String(s).padStart(6)}  ${f}`);
  if (broken.length) console.log(`failed runs: ${broken.join("; ")}`);
  console.log(
    `${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`,
  );
  return broken.length || total.failed ? 1 : 0;
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`test lanes: ${(err as Error).message}`);
      process.exit(1);
    },
  );
