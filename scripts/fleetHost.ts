// One host stack of a fleet, run by scripts/fleet.ts in its own process (its own engine and its own
// in-process program: the Node SDK keeps per-program state in globals, so parallel host stacks need
// separate processes). The stack `<env>.<host>` runs the stacks/ program with the environment's
// config (Pulumi.<env>.yaml copied by the runner, plus hostnet:onlyHost), so it holds only that
// host's topology, health check and state.
//   node dist/scripts/fleetHost.js FLEETDIR ENV HOST up|preview|drift|destroy LOGFILE
// Writes the engine's output to LOGFILE and prints one line: RESULT {...}.
import * as fs from "fs";
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";
import {
  engineEnv,
  ENGINE_PARALLEL,
  inlineStack,
  PROJECT_ROOT,
} from "./engine";
import { driftReport, DriftItem } from "./stacks";

export interface HostResult {
  ok: boolean;
  error?: string;
  /** up: the host's health verdict (undefined when the environment has healthCheck off). */
  health?: { healthy: boolean; problems: string[] };
  /** up/preview/destroy: the engine's change counts. */
  changes?: Record<string, number>;
  drift?: DriftItem[];
}

export function hostStackName(env: string, host: string): string {
  return `${env}.${host}`;
}

async function run(
  fleetDir: string,
  env: string,
  host: string,
  op: string,
  log: (s: string) => void,
): Promise<HostResult> {
  const program = require(path.join(PROJECT_ROOT, "dist", "stacks", "index.js"))
    .default as automation.PulumiFn;
  const stackName = hostStackName(env, host);
  // The environment's name decides the passphrase rule (lab/test environments use the lab one).
  const stack = await inlineStack(stackName, program, {
    workDir: fleetDir,
    env: engineEnv(env),
  });
  const common = { color: "never" as const, onOutput: log };
  switch (op) {
    case "up": {
      const r = await stack.up({ ...common, parallel: ENGINE_PARALLEL });
      const health = (
        r.outputs.health?.value as
          Record<string, HostResult["health"]> | undefined
      )?.[host];
      return { ok: true, health, changes: r.summary.resourceChanges };
    }
    case "preview": {
      const r = await stack.preview({
        ...common,
        diff: true,
        parallel: ENGINE_PARALLEL,
      });
      return { ok: true, changes: r.changeSummary };
    }
    case "drift":
      return { ok: true, drift: await driftReport(stack, log) };
    case "destroy": {
      const r = await stack.destroy({ ...common, parallel: ENGINE_PARALLEL });
      await stack.workspace.removeStack(stackName);
      return { ok: true, changes: r.summary.resourceChanges };
    }
    default:
      throw new Error(`unknown operation ${op}`);
  }
}

if (require.main === module) {
  const [fleetDir, env, host, op, logFile] = process.argv.slice(2);
  const out = fs.createWriteStream(logFile, { flags: "a" });
  run(fleetDir, env, host, op, (s) => out.write(s))
    .then(
      (r) => r,
      (e) =>
        ({
          ok: false,
          error: String((e as Error)?.message ?? e),
        }) as HostResult,
    )
    .then((r) => {
      if (r.error) out.write(`\n${r.error}\n`);
      out.end(() => {
        console.log(`RESULT ${JSON.stringify(r)}`);
        process.exit(0);
      });
    });
}
