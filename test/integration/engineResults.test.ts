// A run whose caller follows its engine events gets its outputs and summary from those events
// (scripts/engine.ts resultsFromEvents), not from the three CLI runs the Automation API makes after
// each up: checked against what those CLI reads say for the same run, with every CLI invocation
// recorded. Real engine, no host needed.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation";
import { inlineStack } from "../../scripts/engine";

/** The command words (up, stack output...) of every CLI run this stack makes from now on. */
function recordCli(stack: Stack): string[][] {
  const runs: string[][] = [];
  // PulumiCommand.run is what every Automation API call goes through; it is internal, hence the cast.
  const cmd = stack.workspace.pulumiCommand as unknown as {
    run: (args: string[], ...rest: unknown[]) => unknown;
  };
  const run = cmd.run.bind(cmd);
  cmd.run = (args, ...rest) => {
    const flag = args.findIndex((a) => a.startsWith("-"));
    runs.push(flag < 0 ? args : args.slice(0, flag));
    return run(args, ...rest);
  };
  return runs;
}

describe("engine runs: outputs and summary from the run's own events", function () {
  this.timeout(300_000);
  const name = `test-evres-${process.pid}`;
  let secretOutput = false;
  let stack: Stack;
  let cli: string[][];

  before(async () => {
    stack = await inlineStack(name, async () => {
      for (const n of ["a", "b", "c"])
        new pulumi.ComponentResource("hostnet:test:Part", `${name}-${n}`, {});
      return {
        count: 3,
        nested: { list: ["x", "y"], flag: true },
        ...(secretOutput ? { token: pulumi.secret("hush") } : {}),
      };
    });
    cli = recordCli(stack);
  });

  after(async () => {
    await stack.destroy().catch(() => undefined);
    await stack.workspace.removeStack(name).catch(() => undefined);
  });

  const follow = { onEvent: () => undefined };

  it("up runs the CLI once and returns what `stack output` and `stack history` say", async () => {
    cli.length = 0;
    const up = await stack.up(follow);
    expect(cli, "CLI runs of one up").to.deep.equal([["up"]]);
    expect(up.summary.result).to.equal("succeeded");
    expect(up.summary.kind).to.equal("update");
    expect(up.summary.resourceChanges).to.deep.equal({ create: 4 });
    const history = (await stack.history(1))[0];
    expect(up.summary.resourceChanges).to.deep.equal(history.resourceChanges);
    expect(up.outputs).to.deep.equal(await stack.workspace.stackOutputs(name));
    expect(up.outputs.nested.value).to.deep.equal({
      list: ["x", "y"],
      flag: true,
    });
  });

  it("a no-op up and a refresh report 'same' like the history does", async () => {
    cli.length = 0;
    const again = await stack.up(follow);
    const refreshed = await stack.refresh(follow);
    expect(cli).to.deep.equal([["up"], ["refresh"]]);
    expect(again.summary.resourceChanges).to.deep.equal({ same: 4 });
    expect(again.outputs, "outputs of a stack left as it was").to.deep.equal(
      await stack.workspace.stackOutputs(name),
    );
    expect(refreshed.summary.kind).to.equal("refresh");
    expect(refreshed.summary.resourceChanges).to.deep.equal(
      (await stack.history(1))[0].resourceChanges,
    );
  });

  it("an output holding a secret, masked in events, is read from the CLI: value and secret flag", async () => {
    secretOutput = true;
    cli.length = 0;
    const up = await stack.up(follow);
    expect(cli[0]).to.deep.equal(["up"]);
    expect(cli.slice(1), "outputs read from the CLI").to.deep.include([
      "stack",
      "output",
    ]);
    expect(up.outputs.token).to.deep.equal({ value: "hush", secret: true });
    expect(up.outputs.count).to.deep.equal({ value: 3, secret: false });
  });

  it("a run without an event listener asks the CLI, as the Automation API does", async () => {
    cli.length = 0;
    const up = await stack.up();
    expect(cli).to.deep.equal([
      ["up"],
      ["stack", "output"],
      ["stack", "output"],
      ["stack", "history"],
    ]);
    expect(up.summary.resourceChanges).to.deep.equal({ same: 4 });
  });

  it("destroy runs the CLI once; outside a run, outputs come from the CLI as before", async () => {
    cli.length = 0;
    const gone = await stack.destroy(follow);
    expect(cli).to.deep.equal([["destroy"]]);
    expect(gone.summary.resourceChanges).to.deep.equal({ delete: 4 });
    expect(await stack.outputs()).to.deep.equal({});
  });
});
