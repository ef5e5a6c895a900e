// How hostnet runs the Pulumi engine: the CLI built by scripts/setup-engine.sh, a file backend inside
// the project unless PULUMI_BACKEND_URL says otherwise, no plugin downloads, and programs hosted
// in-process through the Automation API's language runtime (the engine's --client mode), because
// the Node.js language host cannot be built from the registries this project may use.
import * as fs from "fs";
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
export const ENGINE_ROOT = path.join(PROJECT_ROOT, ".hostnet", "engine");
export const ENGINE_BIN = path.join(ENGINE_ROOT, "bin");
export const STATE_DIR = path.join(PROJECT_ROOT, ".hostnet", "state");
export const PROJECT_NAME = "hostnet";

/** The lab stacks' passphrase: public on purpose, lab state holds nothing worth protecting. */
export const LAB_PASSPHRASE = "hostnet-lab";

export function isLabStack(stack: string | undefined): boolean {
  return stack !== undefined && (stack === "lab" || stack.startsWith("lab-") || stack.startsWith("test-"));
}

/** Environment for every engine invocation. Lab and test stacks get the documented passphrase. */
export function engineEnv(stack?: string, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  fs.mkdirSync(STATE_DIR, { recursive: true });
  env.PATH = `${ENGINE_BIN}:${env.PATH ?? "/usr/bin:/bin"}`;
  env.PULUMI_HOME = env.PULUMI_HOME ?? path.join(PROJECT_ROOT, ".hostnet", "pulumi-home");
  env.PULUMI_BACKEND_URL = env.PULUMI_BACKEND_URL ?? `file://${STATE_DIR}`;
  env.PULUMI_SKIP_UPDATE_CHECK = "true";
  env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION = "true";
  env.PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK = "true";
  env.HOSTNET_HOME = PROJECT_ROOT;
  if (isLabStack(stack) && !env.PULUMI_CONFIG_PASSPHRASE && !env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    env.PULUMI_CONFIG_PASSPHRASE = LAB_PASSPHRASE;
  }
  return env;
}

export async function pulumiCommand(): Promise<automation.PulumiCommand> {
  if (!fs.existsSync(path.join(ENGINE_BIN, "pulumi"))) {
    throw new Error(`no Pulumi engine in ${ENGINE_BIN}: run 'npm run setup' first`);
  }
  return automation.PulumiCommand.get({ root: ENGINE_ROOT, skipVersionCheck: true });
}

/** A stack in the hostnet project whose program runs in this process. */
export async function inlineStack(
  stackName: string,
  program: automation.PulumiFn,
  opts: { env?: Record<string, string>; workDir?: string } = {},
): Promise<automation.Stack> {
  const envVars = { ...engineEnv(stackName), ...(opts.env ?? {}) };
  // Test stacks get their own work dir so their Pulumi.<stack>.yaml never lands in the checkout.
  const workDir = opts.workDir ?? path.join(PROJECT_ROOT, ".hostnet", "work", PROJECT_NAME);
  fs.mkdirSync(workDir, { recursive: true });
  return automation.LocalWorkspace.createOrSelectStack(
    { stackName, projectName: PROJECT_NAME, program },
    { workDir, envVars, pulumiCommand: await pulumiCommand() },
  );
}
