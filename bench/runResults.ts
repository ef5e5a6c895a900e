// What a runner pays after each engine run to learn its outputs and summary. The Automation API
// runs the CLI three more times after every up (stack output twice, stack history); hostnet's
// runners that follow the run's events take both from those events instead (scripts/engine.ts,
// resultsFromEvents). No host is needed: the stack holds N components with a 1 KB input each,
// about the state a hostnet resource leaves, and every measured run is a no-op up.
//
//   node dist/bench/runResults.js [--sizes 30,300] [--reps 5]
//
// Variants, interleaved in each round so load changes hit all three alike:
//   events       inlineStack (resultsFromEvents) with an event listener: what gitops and the tests run
//   cli-reads    the plain Automation API with an event listener: the same run, plus the three reads
//   no-listener  the plain Automation API without a listener: no event stream, plus the three reads
// Wall time and CPU (this process and every engine process it ran) per up; medians.
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import * as automation from "@pulumi/pulumi/automation";
import {
  engineEnv,
  inlineStack,
  PROJECT_NAME,
  PROJECT_ROOT,
  pulumiCommand,
} from "../scripts/engine";

const VARIANTS = ["events", "cli-reads", "no-listener"] as const;
type Variant = (typeof VARIANTS)[number];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** CPU seconds of this process and of the children it has waited for (the engine runs). */
function cpuSeconds(): number {
  const f = fs
    .readFileSync("/proc/self/stat", "utf8")
    .split(") ")[1]
    .split(" ");
  // utime, stime, cutime, cstime: fields 14-17 of proc(5), counted here from the state field
  // (index 0 = field 3); in clock ticks of 1/100 s (CLK_TCK on Linux x86-64).
  const ticks = [11, 12, 13, 14].reduce((s, i) => s + Number(f[i]), 0);
  return ticks / 100;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function stacksFor(
  n: number,
): Promise<Record<Variant, automation.Stack>> {
  const name = `test-runres-${n}`;
  const program = async () => {
    for (let i = 0; i < n; i++)
      new pulumi.ComponentResource("hostnet:bench:Part", `p${i}`, {
        filler: "x".repeat(1000),
      });
    return { parts: n };
  };
  const events = await inlineStack(name, program);
  // The same stack through the Automation API as it comes (no resultsFromEvents).
  const plain = await automation.LocalWorkspace.selectStack(
    { stackName: name, projectName: PROJECT_NAME, program },
    {
      workDir: `${PROJECT_ROOT}/.hostnet/work/${PROJECT_NAME}`,
      envVars: engineEnv(name),
      pulumiCommand: await pulumiCommand(),
    },
  );
  return { events, "cli-reads": plain, "no-listener": plain };
}

async function main(): Promise<void> {
  const sizes = arg("sizes", "30,300").split(",").map(Number);
  const reps = Number(arg("reps", "5"));
  const rows: string[] = [];
  for (const n of sizes) {
    const stacks = await stacksFor(n);
    await stacks.events.up({ parallel: 64 }); // create: not measured
    const wall: Record<Variant, number[]> = {
      events: [],
      "cli-reads": [],
      "no-listener": [],
    };
    const cpu: Record<Variant, number[]> = {
      events: [],
      "cli-reads": [],
      "no-listener": [],
    };
    for (let r = 0; r < reps; r++) {
      for (const v of VARIANTS) {
        const opts =
          v === "no-listener"
            ? { parallel: 64 }
            : { parallel: 64, onEvent: () => undefined };
        const c0 = cpuSeconds();
        const t0 = Date.now();
        const res = await stacks[v].up(opts);
        wall[v].push((Date.now() - t0) / 1000);
        cpu[v].push(cpuSeconds() - c0);
        if (res.summary.resourceChanges?.same !== n + 1)
          throw new Error(
            `${v}: expected a no-op up of ${n + 1} resources, got ${JSON.stringify(res.summary.resourceChanges)}`,
          );
      }
    }
    await stacks.events.destroy({ parallel: 64, onEvent: () => undefined });
    await stacks.events.workspace.removeStack(`test-runres-${n}`);
    const base = median(wall.events);
    for (const v of VARIANTS)
      rows.push(
        `| ${n} | ${v} | ${median(wall[v]).toFixed(2)} | ${(median(wall[v]) / base).toFixed(2)} | ${median(cpu[v]).toFixed(2)} |`,
      );
  }
  console.log(
    [
      `no-op up, ${reps} rounds, medians (${new Date().toISOString()}):`,
      "| components | variant | wall s | × events | CPU s |",
      "|---|---|---|---|---|",
      ...rows,
    ].join("\n"),
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
