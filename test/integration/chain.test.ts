// The whole chain with nothing mocked: the real Pulumi engine creates a hostnet resource on a lab
// host over real SSH, a separate OpenSSH session verifies it, destroy removes it.
import { expect } from "chai";
import type { Stack } from "@pulumi/pulumi/automation";
import { inlineStack } from "../../scripts/engine";
import { VmNetns } from "../../providers/kinds/vmNetns";
import { labConnection, LabHost, labUp, sshRun } from "../support/lab";

/**
 * While `cut.path` is set, this run's calls of that gRPC method end with UNAVAILABLE "No connection
 * established" before reaching the engine: what a dead gRPC subchannel does (pulumi/pulumi#7125).
 * Unguarded, the Node SDK swallows that status and ends the run as a success without the resources
 * it could not declare, so the engine plans to delete them. Installed innermost, so hostnet's own
 * interceptor (scripts/engine.ts) sees the status.
 */
const cut: { path?: string } = {};
function cutRegistrations(options: any, nextCall: (options: any) => any): any {
  const grpc = require("@grpc/grpc-js");
  if (!cut.path || options.method_definition?.path !== cut.path)
    return nextCall(options);
  return new grpc.InterceptingCall(nextCall(options), {
    start: (_metadata: unknown, listener: any) =>
      listener.onReceiveStatus({
        code: grpc.status.UNAVAILABLE,
        details: "No connection established",
        metadata: new grpc.Metadata(),
      }),
    sendMessage: () => undefined,
    halfClose: () => undefined,
  });
}

describe("engine chain: pulumi up / destroy of a VmNetns on a lab host", function () {
  this.timeout(300_000);
  let host: LabHost;
  let stack: Stack;
  const nsName = `chain-${process.pid}`;

  before(async () => {
    host = labUp(2).hosts[0];
    require("@pulumi/pulumi/runtime/settings").grpcClientOptions.interceptors.push(
      cutRegistrations,
    );
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
    const interceptors: unknown[] = require("@pulumi/pulumi/runtime/settings")
      .grpcClientOptions.interceptors;
    interceptors.splice(interceptors.indexOf(cutRegistrations), 1);
    await stack?.destroy({ color: "never" }).catch(() => undefined);
    await stack?.workspace.removeStack("test-chain").catch(() => undefined);
  });

  it("creates the namespace, seen from a separate SSH session", async () => {
    const up = await stack.up({ color: "never" });
    expect(up.summary.result).to.equal("succeeded");
    expect(up.outputs.id.value).to.equal(`netns/${nsName}`);
    expect(up.outputs.machineId.value).to.equal(host.machineId);
    expect(sshRun(host, "ip netns list")).to.match(
      new RegExp(`^${nsName}( |$)`, "m"),
    );
    expect(
      sshRun(
        host,
        `ip netns exec ${nsName} sysctl -n net.ipv4.ip_forward`,
      ).trim(),
    ).to.equal("1");
    const lo = JSON.parse(sshRun(host, `ip -j -n ${nsName} link show lo`));
    expect(lo[0].flags).to.include("UP");
  });

  it("a second up changes nothing", async () => {
    const up = await stack.up({ color: "never" });
    expect(up.summary.resourceChanges).to.deep.equal({ same: 2 });
  });

  for (const [method, when] of [
    [
      "/pulumirpc.Engine/SetRootResource",
      "as the stack starts (the program never runs)",
    ],
    ["/pulumirpc.ResourceMonitor/RegisterResource", "for the resource itself"],
  ]) {
    it(`a lost engine call ${when} fails the run instead of deleting the resource`, async () => {
      cut.path = method;
      let err: Error | undefined;
      try {
        await stack.up({ color: "never" }).catch((e) => (err = e));
      } finally {
        cut.path = undefined;
      }
      expect(err?.message).to.include(
        `lost contact with the Pulumi engine during ${method.split("/").pop()}`,
      );
      expect(sshRun(host, "ip netns list")).to.match(
        new RegExp(`^${nsName}( |$)`, "m"),
      );
      const after = await stack.preview({ color: "never" });
      expect(after.changeSummary).to.deep.equal({ same: 2 });
    });
  }

  it("destroy removes it from the host", async () => {
    const res = await stack.destroy({ color: "never" });
    expect(res.summary.result).to.equal("succeeded");
    expect(sshRun(host, "ip netns list")).not.to.match(
      new RegExp(`^${nsName}( |$)`, "m"),
    );
  });
});
