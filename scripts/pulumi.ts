// `npm run pulumi -- <args>`: the project's engine with the project's backend settings.
// Commands that run the program (up, preview, refresh, destroy, import) get the stacks/ program
// hosted in this process and handed to the engine with --client, the same mechanism the Automation
// API uses for inline programs; everything else passes straight through to the CLI.
import { spawn } from "child_process";
import * as path from "path";
import {
  ENGINE_BIN,
  ENGINE_PARALLEL,
  engineEnv,
  PROJECT_NAME,
  PROJECT_ROOT,
} from "./engine";
import { clearDeadRunLocks } from "./staleLock";
import {
  HostnetLanguageServer,
  programOf,
  serveLanguageRuntime,
} from "./languageHost";
import { stackOf } from "./stackName";

const PROGRAM_COMMANDS = new Set([
  "up",
  "update",
  "preview",
  "pre",
  "refresh",
  "destroy",
  "down",
  "import",
]);

async function hostProgram(): Promise<{
  address: string;
  done: (failed: boolean) => void;
}> {
  // The same program and the same loading as a plain `pulumi up` through scripts/languageHost.ts.
  const language = new HostnetLanguageServer({
    program: programOf(path.join(PROJECT_ROOT, "dist", "stacks", "index.js")),
  });
  const { server, port } = await serveLanguageRuntime(language);
  return {
    address: `127.0.0.1:${port}`,
    done: (failed) => {
      try {
        language.onPulumiExit(failed);
      } finally {
        server.forceShutdown();
      }
    },
  };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const stack = stackOf(args, PROJECT_ROOT, engineEnv());
  const env = engineEnv(stack);
  if (stack)
    for (const line of clearDeadRunLocks(
      env.PULUMI_BACKEND_URL,
      PROJECT_NAME,
      stack,
    ))
      console.error(line);
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  const needsProgram =
    args.length > 0 &&
    PROGRAM_COMMANDS.has(args[0]) &&
    !args.some((a) => a.startsWith("--client"));
  const hosted = needsProgram ? await hostProgram() : undefined;
  // The runners' parallelism unless the operator chose one (the CLI's own default is lower).
  const parallel =
    needsProgram && !args.some((a) => /^(-p|--parallel)(=|$)/.test(a))
      ? [`--parallel=${ENGINE_PARALLEL}`]
      : [];
  const finalArgs = hosted
    ? [...args, ...parallel, `--client=${hosted.address}`]
    : args;
  const child = spawn(path.join(ENGINE_BIN, "pulumi"), finalArgs, {
    cwd: PROJECT_ROOT,
    env,
    stdio: "inherit",
  });
  const code: number = await new Promise((resolve) =>
    child.on("exit", (c, sig) => resolve(c ?? (sig ? 130 : 1))),
  );
  hosted?.done(code !== 0);
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(
      `hostnet: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  },
);
