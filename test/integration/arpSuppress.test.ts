// ARP suppression (managed fdb + neigh_suppress + permanent neighbours on the bridge): broadcast
// ARP for a known VM is answered by the bridge itself and never reaches the other suppressed VM
// ports, while ARP for an unknown address is still flooded (the positive control that shows the
// check can fail). Kernel rule (br_do_proxy_suppress_arp): the bridge answers only requests that
// arrive on a port WITHOUT neigh_suppress (the uplink side, in EVPN terms) — requests from a
// suppressed port are forwarded as usual — so as1 here stands for that side.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig } from "../../stacks/config";
import { fullSnapshot, snapshotDiff, TestStack } from "../support/harness";
import { LabHost, labUp, privateKey, sshJson, sshRun } from "../support/lab";

describe("managed fdb with ARP suppression (bridged VMs on lab3)", function () {
  this.timeout(600_000);
  let h: LabHost;
  let baseline: Record<string, any>;
  const vm = (n: number, arpSuppress: boolean) => ({
    name: `as${n}`,
    host: "lab3",
    attachment: "bridged",
    bridge: "br-as",
    mac: `02:00:00:3c:00:0${n}`,
    ipv4: [`198.19.60.${n}/24`],
    managedFdb: true,
    arpSuppress,
    filter: "none",
    simulate: true,
  });
  const config = () =>
    (({ hosts, ...rest }) => ({
      ...rest,
      hosts: hosts.filter((x) => x.name === "lab3"),
    }))(
      parseStackConfig({
        inventory: "lab",
        bridges: [{ name: "br-as" }],
        vms: [vm(1, false), vm(2, true), vm(3, true)],
        rollout: { serial: [1], maxFailures: 0, healthCheck: false },
      }),
    );
  const stack = new TestStack(
    "test-arpsuppress",
    undefined as unknown as ReturnType<typeof config>,
    async (c) => deployFleet(c, pulumi.secret(privateKey())),
  );

  /** Count ARP requests for `ip` arriving at guest-as3's interface. */
  const arpCounter = (ip: string) => {
    sshRun(
      h,
      `ip netns exec guest-as3 sh -c 'nft delete table netdev arpcap 2>/dev/null; nft -f -' <<'EOF'
table netdev arpcap {
  counter seen {}
  chain ingress { type filter hook ingress device "eth0" priority -500; policy accept;
    ether type arp arp operation request arp daddr ip ${ip} counter name "seen"
  }
}
EOF`,
    );
    return () =>
      sshJson(
        h,
        "ip netns exec guest-as3 nft -j list counter netdev arpcap seen",
      ).nftables.find((i: any) => i.counter).counter.packets as number;
  };

  before(async () => {
    h = labUp(3).hosts[2];
    baseline = fullSnapshot(h);
    stack.config = config();
    await stack.up();
  });

  after(async () => {
    sshRun(
      h,
      "ip netns exec guest-as3 nft delete table netdev arpcap 2>/dev/null; true",
      { allowFail: true },
    );
    await stack.dispose();
  });

  it("publishes each VM as a permanent neighbour with neigh_suppress on its port", () => {
    const neigh = sshJson(h, "ip -j neigh show dev br-as nud permanent");
    expect(neigh.map((n: any) => `${n.dst} ${n.lladdr}`).sort()).to.deep.equal([
      "198.19.60.2 02:00:00:3c:00:02",
      "198.19.60.3 02:00:00:3c:00:03",
    ]);
    const ports = sshJson(h, "bridge -j -d link show").filter((p: any) =>
      /^tap-as/.test(p.ifname),
    );
    ports.sort((x: any, y: any) => x.ifname.localeCompare(y.ifname));
    expect(
      ports.map((p: any) => [p.ifname, p.neigh_suppress, p.learning, p.flood]),
    ).to.deep.equal([
      ["tap-as1", false, false, false],
      ["tap-as2", true, false, false],
      ["tap-as3", true, false, false],
    ]);
  });

  it("answers ARP for a known VM without flooding it; unknown addresses are still flooded", () => {
    const known = arpCounter("198.19.60.2");
    sshRun(
      h,
      "ip -n guest-as1 neigh flush all; ip netns exec guest-as1 ping -c 2 -W 1 198.19.60.2",
    );
    expect(known(), "ARP requests for as2 that reached as3").to.equal(0);
    const unknown = arpCounter("198.19.60.99");
    sshRun(h, "ip netns exec guest-as1 ping -c 2 -W 1 198.19.60.99", {
      allowFail: true,
    });
    expect(
      unknown(),
      "ARP requests for an unknown address that reached as3",
    ).to.be.greaterThan(0);
  });

  it("reports a deleted neighbour as drift and restores it", async () => {
    sshRun(h, "ip neigh del 198.19.60.2 dev br-as");
    const preview = await stack.preview({ refresh: true });
    expect(preview.ops["lab3-as2-fdb"]).to.equal("update");
    expect(preview.diffs["lab3-as2-fdb"]).to.include("neighbours");
    await stack.up({ refresh: true });
    expect(sshRun(h, "ip neigh show 198.19.60.2 dev br-as"))
      .to.include("02:00:00:3c:00:02")
      .and.include("PERMANENT");
  });

  it("destroy leaves the host exactly as before (full snapshot)", async () => {
    sshRun(
      h,
      "ip netns exec guest-as3 nft delete table netdev arpcap 2>/dev/null; true",
    );
    await stack.destroy();
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });
});
