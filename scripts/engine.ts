// How hostnet runs the Pulumi engine: the CLI built by scripts/setup-engine.sh, a file backend inside
// the project unless PULUMI_BACKEND_URL says otherwise, no plugin downloads, and programs hosted
// in-process through the Automation API's language runtime (the engine's --client mode), because
// the Node.js language host cannot be built from the registries this project may use.
import * as fs from "fs";
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";
import { isLabStack, LAB_PASSPHRASE } from "./stackName";
import { clearDeadRunLocks } from "./staleLock";

// Two defences for programs hosted in this process (docs/ARCHITECTURE.md, "In-process programs").
//
// 1. Every run talks to a new engine on a new localhost port, and the SDK never closes its per-run
//    gRPC clients. With grpc-js's process-wide subchannel pool, a later engine that listens on a port
//    an earlier one used inherits that dead subchannel, and a RegisterResource fails at once with
//    UNAVAILABLE ("No connection established", pulumi/pulumi#7125). A private pool per client means
//    every run dials its own engine afresh.
// 2. The Node SDK reads UNAVAILABLE or CANCELLED from any engine call as "the engine is shutting
//    down" and swallows it. When that happens while the stack starts (SupportsFeature,
//    SetRootResource), the program is never called, the run ends as a success with only the stack
//    registered, and the engine plans a delete of everything else (seen in CI: "37 to delete").
//    Mid-program, each lost RegisterResource quietly drops a resource the same way. Rewriting those
//    statuses into ordinary errors makes such a run fail instead, with nothing deleted. The one call
//    that legitimately ends that way, SignalAndWaitForShutdown after the program, is left alone.

const grpc = require("@grpc/grpc-js");
const clientOptions =
  require("@pulumi/pulumi/runtime/settings").grpcClientOptions;

function mustNotBeLost(path: string | undefined): boolean {
  if (path === undefined) return false;
  if (path.startsWith("/pulumirpc.ResourceMonitor/"))
    return path !== "/pulumirpc.ResourceMonitor/SignalAndWaitForShutdown";
  return (
    path === "/pulumirpc.Engine/SetRootResource" ||
    path === "/pulumirpc.Engine/GetRootResource"
  );
}

function lostRegistrationsFail(
  options: any,
  nextCall: (options: any) => any,
): any {
  const path: string | undefined = options.method_definition?.path;
  if (!mustNotBeLost(path)) return nextCall(options);
  const requester = new grpc.RequesterBuilder()
    .withStart(
      (
        metadata: unknown,
        _listener: unknown,
        next: (m: unknown, l: unknown) => void,
      ) => {
        const rewriting = new grpc.ListenerBuilder()
          .withOnReceiveStatus(
            (status: any, nextStatus: (s: unknown) => void) => {
              if (
                status.code !== grpc.status.UNAVAILABLE &&
                status.code !== grpc.status.CANCELLED
              )
                return nextStatus(status);
              nextStatus({
                ...status,
                code: grpc.status.UNKNOWN,
                details:
                  `hostnet: lost contact with the Pulumi engine during ${path!.split("/").pop()} (${status.details}); ` +
                  "the run stops here so that resources the engine did not hear about are not taken for deletions. Run the command again.",
              });
            },
          )
          .build();
        next(metadata, rewriting);
      },
    )
    .build();
  return new grpc.InterceptingCall(nextCall(options), requester);
}

if (!clientOptions["grpc.use_local_subchannel_pool"]) {
  clientOptions["grpc.use_local_subchannel_pool"] = 1;
  clientOptions.interceptors = [
    lostRegistrationsFail,
    ...(clientOptions.interceptors ?? []),
  ];
}

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
export const ENGINE_ROOT = path.join(PROJECT_ROOT, ".hostnet", "engine");
export const ENGINE_BIN = path.join(ENGINE_ROOT, "bin");
export const STATE_DIR = path.join(PROJECT_ROOT, ".hostnet", "state");
export const PROJECT_NAME = "hostnet";

export { isLabStack, LAB_PASSPHRASE };

/**
 * The engine settings of every hostnet runner (`npm run pulumi`, gitops, demo, fleet, the Automation
 * API helpers here) and of the benchmark, which must measure exactly what users run.
 *
 * Per-step checkpoints are off: a DIY backend (file, S3, Postgres) otherwise rewrites the whole
 * state after every step, which is quadratic in the resource count (13.5 min instead of 49 s for a
 * 300-VM host). That is safe because every hostnet create is idempotent against the live host: an
 * object carries the mark of the resource that made it, and a run that finds its own object from a
 * run that died before the state was written adopts and converges it (providers/ownership.ts).
 * A killed run therefore leaves the state as it was before the run, and the next `up --refresh`
 * converges. HOSTNET_ENGINE_CHECKPOINTS=1 turns per-step checkpoints (and their backups) back on.
 */
export function engineSwitches(
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  if (base.HOSTNET_ENGINE_CHECKPOINTS === "1") return {};
  return {
    PULUMI_SKIP_CHECKPOINTS: "true",
    PULUMI_DISABLE_CHECKPOINT_BACKUPS: "true",
  };
}

/** Resource operations in flight at once (`--parallel`) for every runner; the CLI's default is lower. */
export const ENGINE_PARALLEL = 64;

/** Environment for every engine invocation. Lab and test stacks get the documented passphrase. */
export function engineEnv(
  stack?: string,
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  fs.mkdirSync(STATE_DIR, { recursive: true });
  env.PATH = `${ENGINE_BIN}:${env.PATH ?? "/usr/bin:/bin"}`;
  env.PULUMI_HOME =
    env.PULUMI_HOME ?? path.join(PROJECT_ROOT, ".hostnet", "pulumi-home");
  env.PULUMI_BACKEND_URL = env.PULUMI_BACKEND_URL ?? `file://${STATE_DIR}`;
  env.PULUMI_SKIP_UPDATE_CHECK = "true";
  env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION = "true";
  env.PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK = "true";
  env.HOSTNET_HOME = PROJECT_ROOT;
  Object.assign(env, engineSwitches(base));
  if (
    isLabStack(stack) &&
    !env.PULUMI_CONFIG_PASSPHRASE &&
    !env.PULUMI_CONFIG_PASSPHRASE_FILE
  ) {
    env.PULUMI_CONFIG_PASSPHRASE = LAB_PASSPHRASE;
  }
  return env;
}

export async function pulumiCommand(): Promise<automation.PulumiCommand> {
  if (!fs.existsSync(path.join(ENGINE_BIN, "pulumi"))) {
    throw new Error(
      `no Pulumi engine in ${ENGINE_BIN}: run 'npm run setup' first`,
    );
  }
  return automation.PulumiCommand.get({
    root: ENGINE_ROOT,
    skipVersionCheck: true,
  });
}

/** A stack in the hostnet project whose program runs in this process. */
export async function inlineStack(
  stackName: string,
  program: automation.PulumiFn,
  opts: { env?: Record<string, string>; workDir?: string } = {},
): Promise<automation.Stack> {
  const envVars = { ...engineEnv(stackName), ...(opts.env ?? {}) };
  for (const line of clearDeadRunLocks(
    envVars.PULUMI_BACKEND_URL,
    PROJECT_NAME,
    stackName,
  ))
    console.error(line);
  // Test stacks get their own work dir so their Pulumi.<stack>.yaml never lands in the checkout.
  const workDir =
    opts.workDir ?? path.join(PROJECT_ROOT, ".hostnet", "work", PROJECT_NAME);
  fs.mkdirSync(workDir, { recursive: true });
  return resultsFromEvents(
    await automation.LocalWorkspace.createOrSelectStack(
      { stackName, projectName: PROJECT_NAME, program },
      { workDir, envVars, pulumiCommand: await pulumiCommand() },
    ),
  );
}

/** The key Pulumi marks a secret value with, in state and in events ({"4dabf...": "1b470...", ...}). */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** What one run's events told: the root stack's outputs (when none is a secret) and the summary. */
interface RunResults {
  kind: automation.UpdateKind;
  startTime: Date;
  outputs?: automation.OutputMap;
  summary?: automation.UpdateSummary;
}

function collect(seen: RunResults, e: automation.EngineEvent): void {
  const out = e.resOutputsEvent?.metadata;
  if (out?.type === "pulumi:pulumi:Stack" && out.new?.outputs) {
    const plain = !JSON.stringify(out.new.outputs).includes(SECRET_SIG);
    seen.outputs = plain
      ? Object.fromEntries(
          Object.entries(out.new.outputs).map(([k, value]) => [
            k,
            { value, secret: false },
          ]),
        )
      : undefined; // masked in events: the CLI must read it
  }
  const sum = e.summaryEvent;
  if (sum)
    seen.summary = {
      kind: seen.kind,
      startTime: seen.startTime,
      endTime: new Date(),
      message: "",
      environment: {},
      config: {},
      // The run throws before its summary is asked for unless it succeeded (older events lack it).
      result: ((sum as { result?: string }).result ??
        "succeeded") as automation.UpdateResult,
      version: 0, // the history's update counter: not in events, used by no caller
      resourceChanges: sum.resourceChanges,
    };
}

/**
 * After every up the Automation API runs the CLI three more times (`stack output` twice, `stack
 * history`), and once more after refresh and destroy: each a new engine process that loads the
 * whole state, and the one showing secrets derives the passphrase key (1,000,000 PBKDF2 rounds).
 * When the caller follows the run's events anyway (the test harness, `npm run gitops`), those
 * events already carry the answers: the stack's outputs and the summary (result and
 * resourceChanges; no message, environment, config or version) come from them. A no-op up
 * took 1.02 s instead of 2.55 s with 30 resources, 3.15 s instead of 4.44 s with 300
 * (bench/runResults.ts). Outputs holding a secret, which events mask, runs without a listener,
 * and calls outside a run still go to the CLI.
 */
export function resultsFromEvents(stack: automation.Stack): automation.Stack {
  const cli = {
    outputs: stack.outputs.bind(stack),
    info: stack.info.bind(stack),
  };
  let current: RunResults | undefined;
  const within =
    <O extends { onEvent?: (e: automation.EngineEvent) => void }, R>(
      kind: automation.UpdateKind,
      run: (opts: O) => Promise<R>,
    ) =>
    async (opts?: O): Promise<R> => {
      // Without a listener the CLI writes no event stream; making one costs more than it saves
      // on a large stack (2,000 resources: +2 CPU-s per up to parse), so the CLI answers.
      if (!opts?.onEvent) return run(opts as O);
      const seen: RunResults = { kind, startTime: new Date() };
      current = seen;
      try {
        return await run({
          ...(opts ?? ({} as O)),
          onEvent: (e: automation.EngineEvent) => {
            collect(seen, e);
            opts?.onEvent?.(e);
          },
        });
      } finally {
        if (current === seen) current = undefined;
      }
    };
  stack.up = within("update", stack.up.bind(stack));
  stack.refresh = within("refresh", stack.refresh.bind(stack));
  stack.destroy = within("destroy", stack.destroy.bind(stack));
  stack.outputs = async () => current?.outputs ?? cli.outputs();
  stack.info = async (showSecrets?: boolean) =>
    current?.summary ?? cli.info(showSecrets);
  return stack;
}
