// The provider stored in state must work when the stack is refreshed or destroyed from another
// checkout path (a GitOps runner): the serialized stub carries no hostnet code and loads the
// runtime of whichever checkout runs the engine. Here a second "checkout" at another path (its own
// dist and launcher; node_modules shared) refreshes and destroys a stack the first one created.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";
import {
  engineEnv,
  ENGINE_BIN,
  inlineStack,
  PROJECT_ROOT,
} from "../../scripts/engine";
import { VmNetns } from "../../providers/kinds/vmNetns";
import { labConnection, LabHost, labUp, sshRun } from "../support/lab";

describe("state written by one checkout is refreshed and destroyed from another path", function () {
  this.timeout(300_000);
  let h: LabHost;
  const other = fs.mkdtempSync(path.join(os.tmpdir(), "hostnet-checkout-"));
  const trace = path.join(other, "trace.jsonl");
  const nsName = `port-${process.pid}`;

  before(() => {
    h = labUp(3).hosts[0];
    fs.cpSync(path.join(PROJECT_ROOT, "dist"), path.join(other, "dist"), {
      recursive: true,
    });
    fs.symlinkSync(
      path.join(PROJECT_ROOT, "node_modules"),
      path.join(other, "node_modules"),
    );
    const bin = path.join(other, ".hostnet", "engine", "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(path.join(ENGINE_BIN, "pulumi"), path.join(bin, "pulumi"));
    fs.copyFileSync(
      path.join(ENGINE_BIN, "pulumi-resource-pulumi-nodejs"),
      path.join(bin, "pulumi-resource-pulumi-nodejs"),
    );
    fs.chmodSync(path.join(bin, "pulumi-resource-pulumi-nodejs"), 0o755);
  });

  after(() => {
    sshRun(h, `ip netns del ${nsName} 2>/dev/null; true`, { allowFail: true });
    fs.rmSync(other, { recursive: true, force: true });
  });

  it("creates here, then refreshes and destroys with the other checkout's provider code", async () => {
    const program = async () => {
      new VmNetns("ns", { connection: labConnection(h), name: nsName });
    };
    const here = await inlineStack("test-portability", program);
    await here.up({ color: "never" });
    expect(sshRun(h, "ip netns list")).to.include(nsName);

    // The other checkout: its own PATH/launcher and HOSTNET_HOME, same backend and stack.
    const env: Record<string, string> = {
      ...engineEnv("test-portability"),
      HOSTNET_HOME: other,
      HOSTNET_TRACE_FILE: trace,
    };
    env.PATH = `${path.join(other, ".hostnet", "engine", "bin")}:${process.env.PATH}`;
    const cmd = await automation.PulumiCommand.get({
      root: path.join(other, ".hostnet", "engine"),
      skipVersionCheck: true,
    });
    const there = await automation.LocalWorkspace.createOrSelectStack(
      { stackName: "test-portability", projectName: "hostnet", program },
      {
        workDir: fs.mkdtempSync(path.join(other, "work-")),
        envVars: env,
        pulumiCommand: cmd,
      },
    );
    sshRun(h, `ip netns del ${nsName}`); // drift, so refresh has to talk to the host
    const refreshed = await there.refresh({ color: "never" });
    expect(refreshed.summary.resourceChanges).to.have.property("delete", 1);
    await there.up({ color: "never" });
    expect(sshRun(h, "ip netns list")).to.include(nsName);
    await there.destroy({ color: "never" });
    expect(sshRun(h, "ip netns list")).not.to.include(nsName);
    const rows = fs
      .readFileSync(trace, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows.length).to.be.greaterThan(0);
    expect(
      rows.every((r) => r.code.startsWith(other)),
      "every SSH exec came from the other checkout's code",
    ).to.equal(true);
    await there.workspace.removeStack("test-portability");
  });
});
