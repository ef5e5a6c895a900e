// A second "checkout" for concurrency tests: a separate process with its own Pulumi work directory
// that runs `up` (or `preview --expect-no-changes`) of one stack whose program is the fleet program
// over a stack config given as a JSON file. Prints the engine's output, then one line
// `RESULT {"ok":...,"error":...}`.
//   node dist/test/support/applyStack.js WORKDIR STACK CONFIG.json up|check
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { inlineStack } from "../../scripts/engine";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig } from "../../stacks/config";
import { privateKey } from "./lab";

async function main(): Promise<void> {
  const [workDir, name, configFile, mode] = process.argv.slice(2);
  const config = parseStackConfig(
    JSON.parse(fs.readFileSync(configFile, "utf8")),
  );
  const stack = await inlineStack(
    name,
    async () => deployFleet(config, pulumi.secret(privateKey())),
    { workDir },
  );
  const onOutput = (s: string) => process.stdout.write(s);
  try {
    if (mode === "check")
      await stack.preview({ expectNoChanges: true, color: "never", onOutput });
    else await stack.up({ color: "never", parallel: 64, onOutput });
    console.log(`RESULT ${JSON.stringify({ ok: true })}`);
  } catch (e) {
    console.log(
      `RESULT ${JSON.stringify({ ok: false, error: String((e as Error).message ?? e) })}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`RESULT ${JSON.stringify({ ok: false, error: String(e) })}`);
    process.exit(1);
  },
);
