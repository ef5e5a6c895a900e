// `npm run pulumi -- <args>`: the project's engine with the project's backend settings.
// Commands that run the program (up, preview, refresh, destroy, import) get the stacks/ program
// hosted in this process and handed to the engine with --client, the same mechanism the Automation
// API uses for inline programs; everything else passes straight through to the CLI.
import { spawn } from "child_process";
import * as path from "path";
import { ENGINE_BIN, ENGINE_PARALLEL, engineEnv, PROJECT_ROOT } from "./engine";

const PROGRAM_COMMANDS = new Set(["up", "update", "preview", "pre", "refresh", "destroy", "down", "import"]);

function stackArg(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if ((a === "-s" || a === "--stack") && i + 1 < args.length) return args[i + 1];
    if (a.startsWith("--stack=")) return a.slice("--stack=".length);
  }
  return process.env.PULUMI_STACK;
}

async function hostProgram(): Promise<{ address: string; done: (failed: boolean) => void }> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const grpc = require("@grpc/grpc-js");
  const { LanguageServer } = require("@pulumi/pulumi/automation/server");
  const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb");
  const { grpcChannelOptions } = require("@pulumi/pulumi/runtime/settings");
  const program = require(path.join(PROJECT_ROOT, "dist", "stacks", "index.js"));
  const server = new grpc.Server({ ...grpcChannelOptions });
  const language = new LanguageServer(typeof program === "function" ? program : program.default);
  server.addService(langrpc.LanguageRuntimeService, language);
  const port: number = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err: Error | null, p: number) =>
      err ? reject(err) : resolve(p),
    ),
  );
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
  const env = engineEnv(stackArg(args));
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  const needsProgram = args.length > 0 && PROGRAM_COMMANDS.has(args[0]) && !args.some((a) => a.startsWith("--client"));
  const hosted = needsProgram ? await hostProgram() : undefined;
  // The runners' parallelism unless the operator chose one (the CLI's own default is lower).
  const parallel = needsProgram && !args.some((a) => /^(-p|--parallel)(=|$)/.test(a)) ? [`--parallel=${ENGINE_PARALLEL}`] : [];
  const finalArgs = hosted ? [...args, ...parallel, `--client=${hosted.address}`] : args;
  const child = spawn(path.join(ENGINE_BIN, "pulumi"), finalArgs, { cwd: PROJECT_ROOT, env, stdio: "inherit" });
  const code: number = await new Promise((resolve) => child.on("exit", (c, sig) => resolve(c ?? (sig ? 130 : 1))));
  hosted?.done(code !== 0);
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`hostnet: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
