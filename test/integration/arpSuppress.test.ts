// ARP suppression (managed fdb + neigh_suppress + permanent neighbours on the bridge, and the
// bridge's ArpAnswer table on every VM port): broadcast ARP for a known VM is answered before it
// reaches any other VM port, while ARP for an unknown address is still flooded (the positive
// control that shows the check can fail). Kernel rule (br_do_proxy_suppress_arp): the bridge itself
// answers only requests that arrive on a port WITHOUT neigh_suppress (the uplink side, in EVPN
// terms) and forwards requests from a suppressed port as usual; the ArpAnswer table answers at
// every VM port, so as2's requests are answered too. The VMs are
// dual-stack: the bridge answers IPv6 neighbour solicitations for a suppressed VM from its
// permanent IPv6 neighbour entry in the same way (br_do_suppress_nd), so the NS never reaches the
// target's port; without that entry (drift) it does, which is also the check's positive control.
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
    ipv6: [`2001:db8:3c::${n}/64`],
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

  /** Count the frames matching `match` that arrive at `guest`'s interface (table `table`, fresh). */
  const ingressCounter = (guest: string, table: string, match: string) => {
    sshRun(
      h,
      `ip netns exec ${guest} sh -c 'nft delete table netdev ${table} 2>/dev/null; nft -f -' <<'EOF'
table netdev ${table} {
  counter seen {}
  chain ingress { type filter hook ingress device "eth0" priority -500; policy accept;
    ${match} counter name "seen"
  }
}
EOF`,
    );
    return () =>
      sshJson(
        h,
        `ip netns exec ${guest} nft -j list counter netdev ${table} seen`,
      ).nftables.find((i: any) => i.counter).counter.packets as number;
  };
  /** Count ARP requests for `ip` arriving at guest-as3's interface. */
  const arpCounter = (ip: string) =>
    ingressCounter(
      "guest-as3",
      "arpcap",
      `ether type arp arp operation request arp daddr ip ${ip}`,
    );
  /** Count neighbour solicitations (multicast or unicast) for as2's IPv6 address arriving at as2. */
  const nsCounter = () =>
    ingressCounter(
      "guest-as2",
      "nscap",
      // The NS target (2001:db8:3c::2) is the 16 bytes after the ICMPv6 header's first 8.
      "icmpv6 type nd-neighbor-solicit @th,64,128 0x20010db8003c00000000000000000002",
    );
  /** as2's neighbour `ip` was deleted from the bridge: the drift gate names it, up restores it. */
  const driftRepaired = async (ip: string) => {
    const preview = await stack.preview({ refresh: true });
    expect(preview.ops["lab3-as2-fdb"]).to.equal("update");
    expect(preview.diffs["lab3-as2-fdb"]).to.include("neighbours");
    await stack.up({ refresh: true });
    expect(sshRun(h, `ip neigh show ${ip} dev br-as`))
      .to.include("02:00:00:3c:00:02")
      .and.include("PERMANENT");
  };
  const CLEAN_CAPTURES =
    "ip netns exec guest-as3 nft delete table netdev arpcap 2>/dev/null; ip netns exec guest-as2 nft delete table netdev nscap 2>/dev/null; true";

  before(async () => {
    h = labUp(3).hosts[2];
    baseline = fullSnapshot(h);
    stack.config = config();
    await stack.up();
  });

  after(async () => {
    sshRun(h, CLEAN_CAPTURES, { allowFail: true });
    await stack.dispose();
  });

  it("publishes each VM as a permanent neighbour with neigh_suppress on its port", () => {
    const neigh = sshJson(h, "ip -j neigh show dev br-as nud permanent");
    expect(neigh.map((n: any) => `${n.dst} ${n.lladdr}`).sort()).to.deep.equal([
      "198.19.60.2 02:00:00:3c:00:02",
      "198.19.60.3 02:00:00:3c:00:03",
      "2001:db8:3c::2 02:00:00:3c:00:02",
      "2001:db8:3c::3 02:00:00:3c:00:03",
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

  it("answers a suppressed VM's own request at its port (the bridge alone would flood it)", () => {
    const atAs1 = ingressCounter(
      "guest-as1",
      "arpcap1",
      "ether type arp arp operation request arp daddr ip 198.19.60.3",
    );
    sshRun(
      h,
      "ip -n guest-as2 neigh flush all; ip netns exec guest-as2 ping -c 2 -W 1 198.19.60.3",
    );
    expect(atAs1(), "as2's requests for as3 that reached as1").to.equal(0);
    expect(sshRun(h, "ip -n guest-as2 neigh show 198.19.60.3")).to.include(
      "02:00:00:3c:00:03",
    );
    sshRun(h, "ip netns exec guest-as1 nft delete table netdev arpcap1");
  });

  it("reports a deleted neighbour as drift and restores it", async () => {
    sshRun(h, "ip neigh del 198.19.60.2 dev br-as");
    await driftRepaired("198.19.60.2");
  });

  it("answers IPv6 neighbour solicitations for a known VM: none reaches its port; a deleted IPv6 neighbour is drift, lets them through, and up restores it", async () => {
    const ping6 =
      "ip -n guest-as1 -6 neigh flush all; ip netns exec guest-as1 ping -6 -c 2 -W 1 2001:db8:3c::2";
    const answered = nsCounter();
    sshRun(h, ping6);
    expect(
      sshRun(h, "ip -n guest-as1 -6 neigh show 2001:db8:3c::2"),
      "as1 resolved as2's IPv6 address",
    ).to.include("02:00:00:3c:00:02");
    expect(answered(), "NS for as2's IPv6 address that reached as2").to.equal(
      0,
    );

    sshRun(h, "ip -6 neigh del 2001:db8:3c::2 dev br-as");
    const flooded = nsCounter();
    sshRun(h, ping6);
    expect(
      flooded(),
      "NS for as2's IPv6 address that reached as2 without its bridge neighbour",
    ).to.be.greaterThan(0);

    await driftRepaired("2001:db8:3c::2");
    const restored = nsCounter();
    sshRun(h, ping6);
    expect(
      restored(),
      "NS for as2's IPv6 address that reached as2 after the repair",
    ).to.equal(0);
  });

  it("destroy leaves the host exactly as before (full snapshot)", async () => {
    sshRun(h, CLEAN_CAPTURES);
    await stack.destroy();
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });
});
