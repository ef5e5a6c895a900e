// One L2 segment across three lab hosts (issue 15): VXLAN between the hosts' management addresses,
// every remote VM programmed as a static fdb entry with an underlay destination plus a permanent
// neighbour, learning off, neigh_suppress on the vxlan port. Traffic is observed on the underlay
// (tcpdump on mgmt0, UDP 4789) and in the guests; a head-end replication entry added by hand is the
// positive control that shows the capture sees flooded frames when there are some.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { arpTableName } from "../../components/arpAnswer";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig } from "../../stacks/config";
import { TestStack } from "../support/harness";
import { LabHost, labUp, privateKey, sshJson, sshRun } from "../support/lab";

const mac = (n: number) => `02:00:00:5e:00:${n.toString(16).padStart(2, "0")}`;
const ip = (n: number) => `198.19.70.${n}`;

describe("segments: one L2 segment across hosts over VXLAN (lab1-3)", function () {
  this.timeout(900_000);
  let hosts: LabHost[];
  const host = (name: string) => hosts.find((h) => h.name === name)!;
  const vm = (
    name: string,
    n: number,
    onHost: string,
    segment: string,
    attachment = "bridged",
    managedFdb = true,
  ) => ({
    name,
    host: onHost,
    attachment,
    bridge: segment === "sa" ? "br-sa" : "br-sb",
    mac: mac(n),
    ipv4: [`${ip(n)}/24`],
    managedFdb,
    filter: "none",
    simulate: true,
    segment,
  });
  /** `left`: VMs taken out of their segment; dropSb: segment sb removed from the config. */
  const raw = (
    a4host: string,
    floodTo?: string[],
    left: string[] = [],
    dropSb = false,
  ) => ({
    inventory: "lab",
    bridges: [{ name: "br-sa" }, { name: "br-sb" }],
    segments: [
      {
        name: "sa",
        vni: 5001,
        bridge: "br-sa",
        ...(floodTo ? { floodTo } : {}),
      },
      ...(dropSb ? [] : [{ name: "sb", vni: 5002, bridge: "br-sb" }]),
    ],
    vms: [
      vm("sa1", 1, "lab1", "sa"),
      vm("sa2", 2, "lab2", "sa", "isolated-netns"),
      vm("sa3", 3, "lab3", "sa", "bridged", false),
      vm("sa4", 4, a4host, "sa"),
      // Same IPv4 subnet, other segment: must not be reachable from segment sa.
      vm("sb1", 11, "lab2", "sb"),
      vm("sb2", 12, "lab3", "sb"),
    ].map(({ segment, ...v }) =>
      left.includes(v.name) ? v : { ...v, segment },
    ),
    rollout: { serial: ["100%"], maxFailures: 0, healthCheck: false },
  });
  const config = (
    a4host = "lab3",
    floodTo?: string[],
    left: string[] = [],
    dropSb = false,
  ) =>
    (({ hosts: all, ...rest }) => ({
      ...rest,
      hosts: all.filter((x) => ["lab1", "lab2", "lab3"].includes(x.name)),
    }))(parseStackConfig(raw(a4host, floodTo, left, dropSb)));
  const stack = new TestStack(
    "test-segment",
    undefined as unknown as ReturnType<typeof config>,
    async (c) => deployFleet(c, pulumi.secret(privateKey())),
  );

  const ping = (h: string, guest: string, to: string) =>
    sshRun(host(h), `ip netns exec guest-${guest} ping -c 2 -W 1 ${to}`, {
      allowFail: true,
    });
  const reaches = (h: string, guest: string, to: string) =>
    / 0% packet loss/.test(ping(h, guest, to));

  /** Fdb rows of a MAC in lab host h's root namespace. */
  const fdbOf = (h: string, m: string) =>
    sshJson(host(h), "bridge -j fdb show").filter((r: any) => r.mac === m);

  /**
   * Run `action` in lab host h while capturing the underlay (mgmt0, UDP 4789); returns the number of
   * VXLAN packets whose inner frame matches `inner` (a pcap filter on the UDP payload).
   */
  const underlay = (
    h: string,
    action: string,
    inner: Record<string, string>,
  ): Record<string, number> => {
    const pcap = "/tmp/hn-segment-test.pcap";
    sshRun(
      host(h),
      `rm -f ${pcap}; (tcpdump -i mgmt0 -nn -U -w ${pcap} udp port 4789 >/dev/null 2>&1 & echo $! > ${pcap}.pid); sleep 1; ${action}; sleep 1; kill $(cat ${pcap}.pid); sleep 0.5`,
      { allowFail: true },
    );
    const counts: Record<string, number> = {};
    for (const [k, f] of Object.entries(inner)) {
      counts[k] = Number(
        sshRun(
          host(h),
          `tcpdump -r ${pcap} -nn '${f}' 2>/dev/null | wc -l`,
        ).trim(),
      );
    }
    sshRun(host(h), `rm -f ${pcap} ${pcap}.pid`);
    return counts;
  };
  // UDP payload: 8 bytes UDP header + 8 bytes VXLAN header, then the inner Ethernet frame.
  const INNER_ARP = "udp port 4789 and udp[28:2] = 0x0806";
  const INNER_ANY = "udp port 4789";

  before(async () => {
    hosts = labUp(3).hosts;
    stack.config = config();
    await stack.up();
  });

  after(async () => {
    sshRun(
      host("lab1"),
      `bridge fdb del 00:00:00:00:00:00 dev vx-sa self dst ${host("lab2").address} 2>/dev/null; true`,
      { allowFail: true },
    );
    await stack.dispose();
  });

  it("puts a vxlan device on every member host: segment VNI, local = management address, learning off, neigh_suppress on", () => {
    for (const [h, addr] of [
      ["lab1", `${host("lab1").address}`],
      ["lab2", `${host("lab2").address}`],
      ["lab3", `${host("lab3").address}`],
    ]) {
      const [link] = sshJson(host(h), "ip -j -d link show vx-sa");
      expect(link.linkinfo.info_data, h).to.include({
        id: 5001,
        local: addr,
        port: 4789,
        learning: false,
      });
      expect(link.master, h).to.equal("br-sa");
      expect(link.linkinfo.info_slave_data, h).to.include({
        learning: false,
        flood: false,
        neigh_suppress: true,
      });
    }
    // Segment sb has VMs on lab2 and lab3 only: lab1 is not a member.
    expect(sshRun(host("lab1"), "ip -br link show type vxlan")).to.not.include(
      "vx-sb",
    );
  });

  it("programs every remote VM: bridge entry on the vxlan port, underlay destination, permanent neighbour", () => {
    for (const [n, remoteHost] of [
      [2, `${host("lab2").address}`],
      [3, `${host("lab3").address}`],
      [4, `${host("lab3").address}`],
    ] as const) {
      const rows = fdbOf("lab1", mac(n));
      expect(
        rows
          .map((r: any) => [
            r.ifname ?? "vx-sa",
            r.master ?? "",
            r.dst ?? "",
            r.state,
          ])
          .sort(),
        `lab1 ${mac(n)}`,
      ).to.deep.equal([
        ["vx-sa", "", remoteHost, "static"],
        ["vx-sa", "br-sa", "", "static"],
      ]);
    }
    const neigh = sshJson(
      host("lab1"),
      "ip -j neigh show dev br-sa nud permanent",
    )
      .map((x: any) => `${x.dst} ${x.lladdr}`)
      .sort();
    expect(neigh).to.deep.equal([1, 2, 3, 4].map((n) => `${ip(n)} ${mac(n)}`));
    // The local VM's entry points at its own port, with no underlay destination.
    expect(
      fdbOf("lab1", mac(1)).map((r: any) => [r.ifname, r.master, r.dst ?? ""]),
    ).to.deep.equal([["tap-sa1", "br-sa", ""]]);
  });

  it("answers ARP at the local VMs' ports: one netdev table per segment bridge, the segment's addresses only", () => {
    const listing = (h: string, t: string) =>
      sshRun(host(h), `nft list table netdev ${t}`);
    const table = arpTableName("br-sa");
    // lab3 has sa3 and sa4 on br-sa: both ports ask through one chain.
    expect(listing("lab3", table)).to.match(
      /hook ingress devices = \{ tap-sa3, tap-sa4 \}/,
    );
    expect(listing("lab2", table)).to.match(/hook ingress device "hv-sa2"/);
    const answers = (h: string, t: string) =>
      sshJson(host(h), `nft -j list map netdev ${t} ip2mac`)
        .nftables.find((i: any) => i.map)
        .map.elem.map((e: any) => `${e[0]} ${e[1]}`);
    expect(answers("lab1", table)).to.deep.equal(
      [1, 2, 3, 4].map((n) => `${ip(n)} ${mac(n)}`),
    );
    expect(answers("lab2", arpTableName("br-sb"))).to.deep.equal(
      [11, 12].map((n) => `${ip(n)} ${mac(n)}`),
    );
  });

  it("lets VMs on different hosts reach each other in one subnet", () => {
    expect(reaches("lab1", "sa1", ip(2)), "sa1@lab1 -> sa2@lab2").to.equal(
      true,
    );
    expect(reaches("lab1", "sa1", ip(3)), "sa1@lab1 -> sa3@lab3").to.equal(
      true,
    );
    expect(reaches("lab2", "sa2", ip(4)), "sa2@lab2 -> sa4@lab3").to.equal(
      true,
    );
    expect(reaches("lab3", "sb2", ip(11)), "sb2@lab3 -> sb1@lab2").to.equal(
      true,
    );
  });

  it("does not reach a VM of another segment", () => {
    expect(reaches("lab2", "sa2", ip(12)), "sa2@lab2 -> sb2@lab3").to.equal(
      false,
    );
    expect(reaches("lab3", "sa3", ip(11)), "sa3@lab3 -> sb1@lab2").to.equal(
      false,
    );
  });

  it("answers broadcast ARP for a remote VM locally and floods neither ARP nor unknown unicast to the underlay", () => {
    // Positive control: a head-end replication entry (all-zeros MAC) makes the vxlan device send
    // what the bridge floods to it; ARP for an address nobody has is flooded, so it must be seen.
    sshRun(
      host("lab1"),
      `bridge fdb append 00:00:00:00:00:00 dev vx-sa self dst ${host("lab2").address}`,
    );
    try {
      const control = underlay(
        "lab1",
        `ip netns exec guest-sa1 ping -c 2 -W 1 ${ip(99)}`,
        { arp: INNER_ARP },
      );
      expect(
        control.arp,
        "ARP requests for an unknown address sent over VXLAN (control)",
      ).to.be.greaterThan(0);

      const known = underlay(
        "lab1",
        `ip -n guest-sa1 neigh flush all; ip netns exec guest-sa1 ping -c 2 -W 1 ${ip(2)}`,
        { arp: INNER_ARP, any: INNER_ANY },
      );
      expect(known.arp, "ARP frames on the underlay for a remote VM").to.equal(
        0,
      );
      expect(
        known.any,
        "VXLAN packets at all (the pings themselves)",
      ).to.be.greaterThan(0);
      expect(
        sshRun(host("lab1"), `ip -n guest-sa1 neigh show ${ip(2)}`),
      ).to.include(mac(2));
    } finally {
      sshRun(
        host("lab1"),
        `bridge fdb del 00:00:00:00:00:00 dev vx-sa self dst ${host("lab2").address}; ip -n guest-sa1 neigh del ${ip(98)} dev eth0`,
        { allowFail: true },
      );
    }
    // On lab3, sa3's request for sa1 is answered at sa3's port: sa4 (same bridge) never sees it;
    // a request for an address nobody has still reaches sa4 (the control).
    const seenBySa4 = (target: string) => {
      const pcap = "/tmp/hn-segment-sa4.txt";
      sshRun(
        host("lab3"),
        `(timeout 4 tcpdump -i tap-sa4 -nn -l arp and arp[6:2] = 1 > ${pcap} 2>/dev/null &); sleep 1; ip -n guest-sa3 neigh flush all; ip netns exec guest-sa3 ping -c 1 -W 1 ${target}; sleep 3.5`,
        { allowFail: true },
      );
      const lines = sshRun(host("lab3"), `cat ${pcap}; rm -f ${pcap}`);
      return lines.split("\n").filter((l) => l.includes(`who-has ${target}`))
        .length;
    };
    expect(
      seenBySa4(ip(99)),
      "requests for an unknown address at sa4 (control)",
    ).to.be.greaterThan(0);
    expect(seenBySa4(ip(1)), "sa3's requests for sa1 at sa4").to.equal(0);
    expect(
      sshRun(host("lab3"), `ip -n guest-sa3 neigh show ${ip(1)}`),
    ).to.include(mac(1));

    // Unknown unicast, in hostnet's own configuration (no head-end entry): a frame to a MAC no
    // bridge knows is not sent to the underlay. (With a hand-added all-zeros head-end entry, 4
    // VXLAN packets were seen here after the merge of 2026-11-30; not yet explained.)
    try {
      // Unknown unicast: a frame to a MAC no bridge knows is not flooded to the vxlan port (flood off).
      const unknown = underlay(
        "lab1",
        `ip -n guest-sa1 neigh replace ${ip(98)} lladdr 02:00:00:5e:99:99 dev eth0 nud permanent; ip netns exec guest-sa1 ping -c 2 -W 1 ${ip(98)}`,
        { any: INNER_ANY },
      );
      expect(unknown.any, "VXLAN packets for unknown unicast").to.equal(0);
    } finally {
      sshRun(host("lab1"), `ip -n guest-sa1 neigh del ${ip(98)} dev eth0`, {
        allowFail: true,
      });
    }
  });

  it("sees a missing remote entry, a lost neighbour, learning turned on and a different VNI as drift, and repairs them", async () => {
    await stack.preview({ refresh: true, expectNoChanges: true });
    sshRun(host("lab1"), `bridge fdb del ${mac(2)} dev vx-sa self`);
    sshRun(host("lab1"), `ip neigh del ${ip(3)} dev br-sa`);
    sshRun(host("lab2"), "ip link set vx-sa type vxlan learning");
    sshRun(
      host("lab2"),
      `nft delete element netdev ${arpTableName("br-sa")} ip2mac { ${ip(4)} }`,
    );
    sshRun(
      host("lab3"),
      [
        "ip link del vx-sb",
        `ip link add vx-sb type vxlan id 999 local ${host("lab3").address} dstport 4789 nolearning`,
        "ip link set vx-sb alias hostnet master br-sb up",
      ].join(" && "),
    );
    let failed = false;
    try {
      await stack.preview({ refresh: true, expectNoChanges: true });
    } catch {
      failed = true;
    }
    expect(
      failed,
      "preview --refresh --expect-no-changes must fail on drift",
    ).to.equal(true);
    const p = await stack.preview({ refresh: true });
    expect(p.ops["lab1-seg-sa-sa2"], "missing underlay destination").to.equal(
      "update",
    );
    expect(p.diffs["lab1-seg-sa-sa2"]).to.include("remote");
    expect(p.ops["lab1-seg-sa-sa3"], "lost neighbour").to.equal("update");
    expect(p.diffs["lab1-seg-sa-sa3"]).to.include("neighbours");
    expect(p.ops["lab2-seg-sa-vx"], "learning on").to.equal("update");
    expect(p.diffs["lab2-seg-sa-vx"]).to.include("learning");
    expect(p.ops["lab3-seg-sb-vx"], "different VNI").to.equal("replace");
    expect(p.ops["lab2-arp-br-sa"], "a lost ARP answer").to.equal("update");
    expect(p.diffs["lab2-arp-br-sa"]).to.include("inSync");

    await stack.up({ refresh: true });
    expect(
      fdbOf("lab1", mac(2)).some(
        (r: any) => r.dst === `${host("lab2").address}`,
      ),
    ).to.equal(true);
    expect(sshRun(host("lab1"), `ip neigh show ${ip(3)} dev br-sa`))
      .to.include(mac(3))
      .and.include("PERMANENT");
    expect(
      sshJson(host("lab2"), "ip -j -d link show vx-sa")[0].linkinfo.info_data
        .learning,
    ).to.equal(false);
    expect(
      sshJson(host("lab3"), "ip -j -d link show vx-sb")[0].linkinfo.info_data
        .id,
    ).to.equal(5002);
    expect(
      reaches("lab3", "sb2", ip(11)),
      "sb2@lab3 -> sb1@lab2 after the vxlan device was replaced",
    ).to.equal(true);
    expect(
      reaches("lab1", "sa1", ip(2)),
      "sa1@lab1 -> sa2@lab2 after repair",
    ).to.equal(true);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("moves a VM's entries on every host when the VM moves to another host, in one up", async () => {
    stack.config = config("lab2");
    const p = await stack.preview();
    // A managedFdb VM's local entry is its own (`-fdb`); the move renames it on lab2 and lab3.
    for (const name of ["lab1-seg-sa-sa4", "lab2-sa4-fdb", "lab3-seg-sa-sa4"])
      expect(p.ops[name], `${name}: sa4's entry changes in place`).to.equal(
        "update",
      );
    expect(p.ops["lab3-sa4-fdb"], "lab3's old name is not deleted").to.equal(
      undefined,
    );
    await stack.up();
    expect(
      fdbOf("lab1", mac(4)).find((r: any) => r.dst)?.dst,
      "lab1: sa4 now behind lab2",
    ).to.equal(`${host("lab2").address}`);
    expect(
      fdbOf("lab3", mac(4)).find((r: any) => r.dst)?.dst,
      "lab3: sa4 now behind lab2",
    ).to.equal(`${host("lab2").address}`);
    expect(
      fdbOf("lab2", mac(4)).map((r: any) => [r.ifname, r.master, r.dst ?? ""]),
      "lab2: sa4 is local",
    ).to.deep.equal([["tap-sa4", "br-sa", ""]]);
    expect(reaches("lab1", "sa1", ip(4)), "sa1@lab1 -> sa4@lab2").to.equal(
      true,
    );
    const devices = (h: string) =>
      sshRun(
        host(h),
        `nft list chain netdev ${arpTableName("br-sa")} ingress_0`,
      );
    expect(devices("lab2"), "lab2 answers sa4's requests now").to.match(
      /devices = \{ hv-sa2, tap-sa4 \}/,
    );
    expect(devices("lab3"), "lab3 no longer").to.match(
      /hook ingress device "tap-sa3"/,
    );
    expect(reaches("lab3", "sa3", ip(4)), "sa3@lab3 -> sa4@lab2").to.equal(
      true,
    );
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("floodTo: broadcasts cross the underlay around the listed host only; a lost flood entry is drift; without it nothing is flooded", async () => {
    const floodDsts = (h: string) =>
      sshJson(host(h), "bridge -j fdb show dev vx-sa")
        .filter((r: any) => r.mac === "00:00:00:00:00:00")
        .map((r: any) => r.dst)
        .sort();
    const addr = (...hs: string[]) => hs.map((h) => host(h).address).sort();
    /** Broadcast pings from `guest` on host `from`, counted at each [host, bridge port]. */
    const broadcastSeen = (
      from: string,
      guest: string,
      at: Array<[string, string]>,
    ): number[] => {
      const file = (port: string) => `/tmp/hn-segment-bcast-${port}`;
      for (const [h, port] of at)
        sshRun(
          host(h),
          `f=${file(port)}; rm -f $f*; (timeout 60 tcpdump -i ${port} -nn -l 'ether broadcast and icmp' > $f 2> $f.err & echo $! > $f.pid); ` +
            `for i in $(seq 300); do grep -q listening $f.err && break; sleep 0.1; done`,
        );
      sshRun(
        host(from),
        `ip netns exec guest-${guest} ping -b -c 2 -W 1 ${ip(255)}`,
        { allowFail: true },
      );
      return at.map(([h, port]) => {
        const text = sshRun(
          host(h),
          `f=${file(port)}; sleep 1; kill $(cat $f.pid); sleep 0.5; cat $f; rm -f $f*`,
          { allowFail: true },
        );
        return text.split("\n").filter((l) => l.includes(`> ${ip(255)}`))
          .length;
      });
    };

    stack.config = config("lab2", ["lab1"]);
    const p = await stack.preview();
    for (const h of ["lab1", "lab2", "lab3"])
      expect(p.ops[`${h}-seg-sa-vx`], `${h}: flood list in place`).to.equal(
        "update",
      );
    await stack.up();
    expect(floodDsts("lab1"), "the hub floods to every member").to.deep.equal(
      addr("lab2", "lab3"),
    );
    expect(floodDsts("lab2"), "lab2 floods to the hub").to.deep.equal(
      addr("lab1"),
    );
    expect(floodDsts("lab3"), "lab3 floods to the hub").to.deep.equal(
      addr("lab1"),
    );
    // sa4 sits on lab2 since the move above; sa2 is lab2's isolated-netns VM.
    const [atHub, atLab2] = broadcastSeen("lab3", "sa3", [
      ["lab1", "tap-sa1"],
      ["lab2", "tap-sa4"],
    ]);
    expect(
      atHub,
      "sa3@lab3's broadcast at sa1@lab1 (the hub)",
    ).to.be.greaterThan(0);
    expect(atLab2, "sa3@lab3's broadcast at sa4@lab2 (not a hub)").to.equal(0);
    const fromHub = broadcastSeen("lab1", "sa1", [
      ["lab2", "tap-sa4"],
      ["lab3", "tap-sa3"],
    ]);
    expect(fromHub, "sa1@lab1's broadcast at lab2 and lab3").to.satisfy(
      (n: number[]) => n.every((x) => x > 0),
    );

    sshRun(
      host("lab3"),
      `bridge fdb del 00:00:00:00:00:00 dev vx-sa dst ${host("lab1").address} self`,
    );
    const drift = await stack.preview({ refresh: true });
    expect(drift.ops["lab3-seg-sa-vx"], "a lost flood entry").to.equal(
      "update",
    );
    expect(drift.diffs["lab3-seg-sa-vx"]).to.include("floodTo");
    await stack.up({ refresh: true });
    expect(floodDsts("lab3"), "repaired").to.deep.equal(addr("lab1"));

    stack.config = config("lab2");
    await stack.up();
    for (const h of ["lab1", "lab2", "lab3"])
      expect(floodDsts(h), `${h}: no flood entry left`).to.deep.equal([]);
    const [quiet] = broadcastSeen("lab1", "sa1", [["lab3", "tap-sa3"]]);
    expect(quiet, "without floodTo no broadcast crosses").to.equal(0);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("takes VMs out of their segment, and a whole segment out of the config, in one up: a managedFdb VM's entry is updated in place, never made beside the segment's", async () => {
    const staticAt = (h: string, m: string) =>
      fdbOf(h, m)
        .filter((r: any) => r.state !== "learned" && !r.flags?.includes("self"))
        .map((r: any) => r.ifname);
    stack.config = config("lab2", undefined, ["sa4", "sb1", "sb2"], true);
    const p = await stack.preview();
    for (const name of ["lab2-sa4-fdb", "lab2-sb1-fdb", "lab3-sb2-fdb"])
      expect(p.ops[name], `${name}: the VM keeps its entry`).to.equal("update");
    for (const name of [
      "lab1-seg-sa-sa4",
      "lab3-seg-sa-sa4",
      "lab2-seg-sb-sb2",
      "lab3-seg-sb-sb1",
      "lab2-seg-sb-vx",
    ])
      expect(p.ops[name], `${name}: gone with the membership`).to.equal(
        "delete",
      );
    const creates = Object.entries(p.ops).filter(([, op]) => op === "create");
    expect(creates, "nothing is created").to.deep.equal([]);
    await stack.up();
    expect(staticAt("lab2", mac(4)), "sa4's own entry").to.deep.equal([
      "tap-sa4",
    ]);
    expect(staticAt("lab2", mac(11)), "sb1's own entry").to.deep.equal([
      "tap-sb1",
    ]);
    expect(staticAt("lab3", mac(12)), "sb2's own entry").to.deep.equal([
      "tap-sb2",
    ]);
    for (const [h, m] of [
      ["lab1", mac(4)],
      ["lab3", mac(4)],
      ["lab3", mac(11)],
      ["lab2", mac(12)],
    ] as const)
      expect(fdbOf(h, m), `${h}: no entry for ${m} left`).to.deep.equal([]);
    expect(
      sshRun(host("lab2"), "ip -j link show vx-sb", { allowFail: true }),
      "vx-sb gone",
    ).to.not.match(/vx-sb/);
    expect(reaches("lab1", "sa1", ip(4)), "sa4 is out of the segment").to.equal(
      false,
    );
    await stack.preview({ refresh: true, expectNoChanges: true });

    stack.config = config("lab2");
    const back = await stack.preview();
    for (const name of ["lab2-sa4-fdb", "lab2-sb1-fdb", "lab3-sb2-fdb"])
      expect(back.ops[name], `${name}: joins in place`).to.equal("update");
    await stack.up();
    expect(reaches("lab1", "sa1", ip(4)), "sa4 is back").to.equal(true);
    expect(reaches("lab2", "sb1", ip(12)), "sb is back").to.equal(true);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });
});
