// Which stack a `pulumi` command line is about, so lab stacks get their documented passphrase in
// every argument form: `-s NAME`, `-sNAME`, `-s=NAME`, `--stack NAME`, `--stack=NAME`,
// `stack init|select|rm|... NAME`, PULUMI_STACK, or else the stack selected in the workspace.
// Kept free of heavy imports: the `pulumi` wrapper in .hostnet/engine/bin runs it on every call
// that has no passphrase yet (`node dist/scripts/stackName.js --lab-passphrase ARGS...`).
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** The lab stacks' passphrase: public on purpose, lab state holds nothing worth protecting. */
export const LAB_PASSPHRASE = "hostnet-lab";

export function isLabStack(stack: string | undefined): boolean {
  return (
    stack !== undefined &&
    (stack === "lab" || stack.startsWith("lab-") || stack.startsWith("test-"))
  );
}

// Flags of the CLI that take a separate value, so that value is not taken for a positional NAME.
const VALUED = new Set([
  "-C",
  "--cwd",
  "--secrets-provider",
  "--copy-config-from",
  "--teams",
  "--color",
  "--config-file",
  "--tracing",
  "-v",
  "--verbose",
  "--profiling",
  "--memprofilerate",
  "-p",
  "--parallel",
  "-m",
  "--message",
  "-t",
  "--target",
  "-c",
  "--config",
]);
// `pulumi stack SUB NAME`: the subcommands whose first positional argument is a stack name.
const STACK_NAMED = new Set(["init", "select", "rm", "remove", "rename"]);

/** The stack named on a command line, or undefined when the line names none. */
export function stackFromArgs(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const positionals: string[] = [];
  let named: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if ((a === "-s" || a === "--stack") && i + 1 < args.length)
      named = args[++i];
    else if (a.startsWith("--stack=")) named = a.slice("--stack=".length);
    else if (a.startsWith("-s") && !a.startsWith("--") && a.length > 2)
      named = a.slice(a[2] === "=" ? 3 : 2);
    else if (VALUED.has(a)) i++;
    else if (!a.startsWith("-")) positionals.push(a);
  }
  if (named) return named;
  // `stack rename NEW` renames the selected stack: only `-s` names the old one.
  if (
    positionals[0] === "stack" &&
    STACK_NAMED.has(positionals[1]) &&
    positionals[1] !== "rename" &&
    positionals[2]
  ) {
    return positionals[2];
  }
  return env.PULUMI_STACK || undefined;
}

/**
 * The stack `pulumi stack select` chose for this project and backend, from the CLI's workspace
 * file ($PULUMI_HOME/workspaces/<project>-<sha1 of Pulumi.yaml's path>-workspace.json).
 */
export function selectedStack(
  projectRoot: string,
  pulumiHome: string | undefined,
  backendUrl: string | undefined,
): string | undefined {
  const projectFile = path.join(projectRoot, "Pulumi.yaml");
  if (!pulumiHome || !backendUrl || !fs.existsSync(projectFile))
    return undefined;
  const name = /^name:\s*["']?([^"'\s#]+)/m.exec(
    fs.readFileSync(projectFile, "utf8"),
  )?.[1];
  const hash = createHash("sha1").update(projectFile).digest("hex");
  try {
    const ws = JSON.parse(
      fs.readFileSync(
        path.join(pulumiHome, "workspaces", `${name}-${hash}-workspace.json`),
        "utf8",
      ),
    );
    const full: unknown = ws?.stacks?.[backendUrl] ?? ws?.stack;
    return typeof full === "string" ? full.split("/").pop() : undefined;
  } catch {
    return undefined;
  }
}

/** The stack a command line acts on: named on it, or the selected one. */
export function stackOf(
  args: string[],
  projectRoot: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return (
    stackFromArgs(args, env) ??
    selectedStack(projectRoot, env.PULUMI_HOME, env.PULUMI_BACKEND_URL)
  );
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === "--lab-passphrase") {
    if (isLabStack(stackOf(args.slice(1), process.cwd())))
      process.stdout.write(LAB_PASSPHRASE);
  } else {
    process.stdout.write(stackOf(args, process.cwd()) ?? "");
  }
}
