// `pulumi-language-nodejs` for a plain `pulumi up|preview|refresh|destroy`: the engine starts this
// (through the launcher scripts/setup-engine.sh writes next to the CLI) with its own address as the
// last argument and the project directory as cwd, and reads the port from our first stdout line.
// The service is the SDK's own language runtime (the Automation API's LanguageServer, the same one
// scripts/pulumi.ts hosts in-process); what this file adds is loading the program the engine names
// (Pulumi.yaml's `main`) at Run time, the way the Node.js language host does.
import * as fs from "fs";
import * as path from "path";
import { RunError } from "@pulumi/pulumi";
import "./engine"; // the gRPC client defences (a lost engine call fails the run instead of deleting)

const grpc = require("@grpc/grpc-js");
const { LanguageServer } = require("@pulumi/pulumi/automation/server");
const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb");
const langproto = require("@pulumi/pulumi/proto/language_pb");
const { grpcChannelOptions } = require("@pulumi/pulumi/runtime/settings");

interface RunRequestLike {
  getPwd(): string;
  getProgram(): string;
  getInfo():
    { getProgramDirectory(): string; getEntryPoint(): string } | undefined;
  getArgsList(): string[];
  setArgsList(args: string[]): unknown;
}

/** The file the engine asks us to run: Pulumi.yaml's `main` under the program directory. */
export function programFile(req: RunRequestLike): string {
  const info = req.getInfo();
  const dir = info?.getProgramDirectory() || req.getPwd() || process.cwd();
  const entry = info?.getEntryPoint() || req.getProgram() || ".";
  const target = path.resolve(dir, entry);
  try {
    return require.resolve(target);
  } catch {
    throw new Error(
      `hostnet language host: cannot load the program ${target} (Pulumi.yaml 'main'). ` +
        `Nothing was changed. Build it first: 'npm run setup' (or 'npx tsc -p tsconfig.json') in ${dir}.`,
    );
  }
}

/**
 * The program as the Node.js language host runs it: required inside the stack, so resources it
 * registers at load time belong to it; an exported function (or default export) is called and its
 * result becomes the stack outputs; otherwise the module's exports are.
 */
export function programOf(file: string): () => Promise<unknown> {
  return async () => {
    const mod = require(file);
    const fn =
      typeof mod === "function"
        ? mod
        : typeof mod?.default === "function"
          ? mod.default
          : undefined;
    return fn ? fn() : mod;
  };
}

/**
 * The SDK's LanguageServer running either a fixed program (scripts/pulumi.ts) or, when given none,
 * the one each Run request names. A RunError (a stack-config error) has already been logged once by
 * the SDK, without a stack trace; it is answered with `bail` so the engine does not print it again.
 */
export class HostnetLanguageServer extends LanguageServer {
  constructor(
    private readonly opts: {
      program?: () => Promise<unknown>;
      engineAddress?: string;
    } = {},
  ) {
    super(opts.program);
  }
  run(
    call: { request: RunRequestLike },
    callback: (err: Error | undefined, resp?: unknown) => void,
  ): unknown {
    // LanguageServer takes the engine's address from the request's first argument, as the engine
    // sends it in --client mode; started as a plugin we have it from our command line instead.
    // Without it the program's log and errors would bypass the engine (printed as "[runtime]").
    if (this.opts.engineAddress && call.request.getArgsList().length === 0)
      call.request.setArgsList([this.opts.engineAddress]);
    const fixed = this.opts.program;
    try {
      this.program = fixed ?? programOf(programFile(call.request));
    } catch (err) {
      callback(err as Error);
      return undefined;
    }
    let answered = false;
    return super.run(call, (err: Error | undefined, resp?: unknown) => {
      if (answered) return;
      answered = true;
      if (err && RunError.isInstance(err)) {
        const bail = new langproto.RunResponse();
        bail.setBail(true);
        return callback(undefined, bail);
      }
      callback(err, resp);
    });
  }
}

/** A gRPC server on a free localhost port offering the SDK's language runtime service. */
export async function serveLanguageRuntime(
  language: unknown,
): Promise<{ server: any; port: number }> {
  const server = new grpc.Server({ ...grpcChannelOptions });
  server.addService(langrpc.LanguageRuntimeService, language);
  const port: number = await new Promise((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (err: Error | null, p: number) => (err ? reject(err) : resolve(p)),
    ),
  );
  return { server, port };
}

async function main(): Promise<void> {
  const engineAddress = process.argv[process.argv.length - 1];
  if (!engineAddress || !/^[^\s]+:\d+$/.test(engineAddress)) {
    console.error(
      "usage: pulumi-language-nodejs [flags] ENGINE_ADDRESS (the Pulumi engine starts this; run 'pulumi up' instead)",
    );
    process.exit(2);
  }
  process.env.HOSTNET_HOME =
    process.env.HOSTNET_HOME ?? path.resolve(__dirname, "..", "..");
  const { server, port } = await serveLanguageRuntime(
    new HostnetLanguageServer({ engineAddress }),
  );
  fs.writeSync(1, `${port}\n`);
  // The engine kills its plugins when it is done; should it die first, do not outlive it.
  const engine = process.ppid;
  setInterval(() => {
    try {
      process.kill(engine, 0);
    } catch {
      server.forceShutdown();
      process.exit(0);
    }
  }, 1000).unref();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(
      `hostnet language host: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  });
}
