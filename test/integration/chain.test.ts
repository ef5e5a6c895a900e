// The whole chain with nothing mocked: the real Pulumi engine creates a hostnet resource on a lab
// host over real SSH, a separate OpenSSH session verifies it, destroy removes it.
import { expect } from "chai";
import type { Stack } from "@pulumi/pulumi/automation";
import { inlineStack } from "../../scripts/engine";
import { VmNetns } from "../../providers/vmNetns";
import { labConnection, LabHost, labUp, sshRun } from "../support/lab";

describe("engine chain: pulumi up / destroy of a VmNetns on a lab host", function () {
  this.timeout(300_000);
  let host: LabHost;
  let stack: Stack;
  const nsName = `chain-${process.pid}`;

  before(async () => {
    host = labUp(2).hosts[0];
    stack = await inlineStack("test-chain", async () => {
      const ns = new VmNetns("ns", {
        connection: labConnection(host),
        name: nsName,
        sysctls: { "net.ipv4.ip_forward": "1" },
      });
      return { id: ns.id, machineId: ns.machineId };
    });
  });

  after(async () => {
    await stack?.destroy({ color: "never" }).catch(() => undefined);
    await stack?.workspace.removeStack("test-chain").catch(() => undefined);
  });

  it("creates the namespace, seen from a separate SSH session", async () => {
    const up = await stack.up({ color: "never" });
    expect(up.summary.result).to.equal("succeeded");
    expect(up.outputs.id.value).to.equal(`netns/${nsName}`);
    expect(up.outputs.machineId.value).to.equal(host.machineId);
    expect(sshRun(host, "ip netns list")).to.match(new RegExp(`^${nsName}( |$)`, "m"));
    expect(sshRun(host, `ip netns exec ${nsName} sysctl -n net.ipv4.ip_forward`).trim()).to.equal("1");
    const lo = JSON.parse(sshRun(host, `ip -j -n ${nsName} link show lo`));
    expect(lo[0].flags).to.include("UP");
  });

  it("a second up changes nothing", async () => {
    const up = await stack.up({ color: "never" });
    expect(up.summary.resourceChanges).to.deep.equal({ same: 2 });
  });

  it("destroy removes it from the host", async () => {
    const res = await stack.destroy({ color: "never" });
    expect(res.summary.result).to.equal("succeeded");
    expect(sshRun(host, "ip netns list")).not.to.match(new RegExp(`^${nsName}( |$)`, "m"));
  });
});
