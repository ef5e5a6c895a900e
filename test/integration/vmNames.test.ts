// Long VM names on a lab host: one VM of every attachment kind named as real fleets name them,
// plus an ifname override; the interfaces carry the derived short names, the health check (the
// simulated VMs reach each other) passes, and a refresh finds nothing to change.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { vmKey } from "../../components/spec";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { TestStack } from "../support/harness";
import { LabHost, labUp, privateKey, sshRun } from "../support/lab";

const VMS = [
  {
    name: "k8s-worker-prod-017",
    attachment: "isolated-netns",
    bridge: "br-ln",
    managedFdb: true,
    mac: "02:00:00:3c:00:01",
    ipv4: ["198.19.64.1/24"],
  },
  {
    name: "3f2a9c1e-8b7d-4e2f-9a1b-0c4d5e6f7a8b",
    attachment: "bridged",
    bridge: "br-ln",
    managedFdb: true,
    mac: "02:00:00:3c:00:02",
    ipv4: ["198.19.64.2/24"],
  },
  {
    name: "Cache.Node_eu-west-1",
    attachment: "macvlan",
    lower: "nic0",
    mac: "02:00:00:3c:00:03",
    ipv4: ["198.19.65.3/24"],
  },
  {
    name: "api-gateway-blue-0001",
    attachment: "routed",
    ifname: "apib1",
    mac: "02:00:00:3c:00:04",
    ipv4: ["198.19.66.4/32"],
  },
];

describe("VM names of any length on a lab host", function () {
  this.timeout(900_000);
  let lab1: LabHost;
  const stack = new TestStack<StackConfig>(
    "test-vmnames",
    undefined as unknown as StackConfig,
    async (c) => deployFleet(c, pulumi.secret(privateKey())),
  );

  before(() => {
    lab1 = labUp(1).hosts[0];
    const config = parseStackConfig({
      inventory: "lab",
      simulatedNics: ["nic0"],
      bridges: [{ name: "br-ln" }],
      vms: VMS.map((v) => ({ ...v, host: "lab1", simulate: true })),
    });
    stack.config = {
      ...config,
      hosts: config.hosts.filter((h) => h.name === "lab1"),
    };
  });
  after(() => stack.dispose());

  it("deploys every attachment kind under derived interface names, healthy, and refreshes with no changes", async () => {
    const keys = VMS.map((v) => vmKey(v));
    expect(keys[3]).to.equal("apib1");
    for (const k of keys) expect(k.length).to.be.at.most(10);
    const up = await stack.up();
    expect(
      (up.outputs.vms as Array<{ name: string; ifname: string }>).map((v) => [
        v.name,
        v.ifname,
      ]),
    ).to.deep.equal(VMS.map((v, i) => [v.name, keys[i]]));
    const links = sshRun(lab1, "ip -o link show");
    expect(links)
      .to.include(`hv-${keys[0]}@`)
      .and.include(`tap-${keys[1]}@`)
      .and.include(`hv-${keys[3]}@`);
    expect(sshRun(lab1, "ip netns list"))
      .to.include(`vm-${keys[0]}`)
      .and.include(`guest-${keys[2]}`);
    expect(
      sshRun(
        lab1,
        `ip netns exec guest-${keys[2]} ip -d -o link show mv-${keys[2]}`,
      ),
    ).to.include("macvlan");
    expect(sshRun(lab1, "ip route show 198.19.66.4")).to.include(
      `dev hv-${keys[3]}`,
    );
    // The health check ran: the two simulated VMs on br-ln reach each other.
    expect(
      sshRun(lab1, `ip netns exec guest-${keys[0]} ping -c 1 -W 2 198.19.64.2`),
    ).to.include("1 received");
    const again = await stack.preview({ refresh: true, expectNoChanges: true });
    expect(
      Object.entries(again.ops).filter(
        ([, op]) => !["same", "refresh", "read"].includes(op),
      ),
      again.stdout,
    ).to.deep.equal([]);
  });
});
