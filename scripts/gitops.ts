// What a GitOps job runs, per environment:
//   preview ENV   on a change (pull request): the plan, nothing applied
//   drift ENV     on a schedule: refresh from the live hosts and fail (exit 3) naming every drifted
//                 object and property; same verdict as `pulumi preview --refresh --expect-no-changes`
//   apply ENV     on merge: up, then a drift check that must come back clean
// Writes a JSON report to .hostnet/reports/<env>-<mode>.json for the pipeline's artifacts.
//
// With --host-stacks the same three modes run over the environment's host stacks (one stack per
// host, scripts/fleet.ts): preview and drift aggregate every host (exit 3 on any drift, each line
// naming host, object and property), apply is a gated fleet rollout followed by a fleet drift check.
import * as fs from "fs";
import * as path from "path";
import { ENGINE_PARALLEL, PROJECT_ROOT } from "./engine";
import { defaultParallelHosts, fleet } from "./fleet";
import {
  driftReport,
  environmentStack,
  formatDrift,
  takeConfigError,
} from "./stacks";

const EXIT_DRIFT = 3;

function report(env: string, mode: string, body: object): void {
  const dir = path.join(PROJECT_ROOT, ".hostnet", "reports");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, `${env}-${mode}.json`),
    JSON.stringify(
      { env, mode, at: new Date().toISOString(), ...body },
      null,
      2,
    ),
  );
}

async function run(mode: string, env: string): Promise<number> {
  const stack = await environmentStack(env);
  const echo =
    process.env.HOSTNET_QUIET === "1"
      ? undefined
      : (s: string) => process.stdout.write(s);
  switch (mode) {
    case "preview": {
      const r = await stack.preview({
        diff: true,
        color: "never",
        parallel: ENGINE_PARALLEL,
        onOutput: echo,
      });
      report(env, mode, { changes: r.changeSummary });
      console.log(`gitops preview ${env}: ${JSON.stringify(r.changeSummary)}`);
      return 0;
    }
    case "drift": {
      const items = await driftReport(stack);
      report(env, mode, { drift: items });
      console.log(`gitops drift ${env}: ${formatDrift(items)}`);
      return items.length === 0 ? 0 : EXIT_DRIFT;
    }
    case "apply": {
      const r = await stack.up({
        color: "never",
        parallel: ENGINE_PARALLEL,
        refresh: true,
        onOutput: echo,
      });
      const items = await driftReport(stack);
      report(env, mode, {
        result: r.summary.result,
        changes: r.summary.resourceChanges,
        driftAfter: items,
      });
      console.log(
        `gitops apply ${env}: ${r.summary.result} ${JSON.stringify(r.summary.resourceChanges)}; ${formatDrift(items)}`,
      );
      return items.length === 0 ? 0 : EXIT_DRIFT;
    }
    default:
      console.error("usage: gitops preview|drift|apply ENV");
      return 2;
  }
}

/** The GitOps modes over host stacks: each is one or two fleet runs. */
async function runHostStacks(mode: string, env: string): Promise<number> {
  const opts = {
    parallelHosts: defaultParallelHosts(),
    configDir: process.env.HOSTNET_CONFIG_DIR ?? PROJECT_ROOT,
    print: (s: string) => process.stdout.write(s),
  };
  switch (mode) {
    case "preview":
    case "drift":
      return fleet(mode, env, opts);
    case "apply": {
      const up = await fleet("up", env, opts);
      return up !== 0 ? up : fleet("drift", env, opts);
    }
    default:
      console.error("usage: gitops preview|drift|apply ENV [--host-stacks]");
      return 2;
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const hostStacks = args.includes("--host-stacks");
  const [mode, env = "lab"] = args.filter((a) => a !== "--host-stacks");
  (hostStacks ? runHostStacks : run)(mode ?? "", env).then(
    (code) => process.exit(code),
    (err) => {
      // A config error is its list of problems; anything else is the engine's own report.
      const config = takeConfigError();
      console.error(
        `gitops ${mode} ${env} failed: ${config?.message ?? (err instanceof Error ? err.message : err)}`,
      );
      process.exit(1);
    },
  );
}
