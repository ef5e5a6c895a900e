// Topologies tested by their traffic, not by their objects: one stack on lab3 deploys every
// attachment kind through the fleet program (deployFleet), with VMs simulated by guest namespaces,
// and a separate OpenSSH session checks who can reach whom, what the filters drop, what the host
// bridge floods, what macvlan modes let through and how the host routes. Then drift at topology
// level is seen by preview --refresh and repaired by up --refresh, and destroy leaves lab3 as found.
//
// Captures: this machine has no tcpdump, so a "capture" is an nft netdev ingress counter on the
// watched interface (table netdev tcap). Ingress runs before the stack (and before a bridge's
// rx handler), so it counts every frame the interface is handed, whatever its destination MAC.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { independentSnapshot, StepReport, TestStack } from "../support/harness";
import { LabHost, labUp, privateKey, sshJson, sshRun } from "../support/lab";

const MAC = {
  ta: "02:00:00:1e:00:01",
  tb: "02:00:00:1e:00:02",
  tc: "02:00:00:1e:00:03",
  tm1: "02:00:00:1e:00:11",
  tm2: "02:00:00:1e:00:12",
  tr1: "02:00:00:1e:00:21",
  tr2: "02:00:00:1e:00:22",
};
const SPOOF_MAC = "02:00:00:1e:00:99";
const UNKNOWN_MAC = "02:00:00:1e:00:77";
const ROOT_TABLE = "thostnet"; // the root FilterChain of the bridged VM (BridgeSpec.filterTable)

const NAMESPACES = [
  "vm-ta",
  "vm-tb",
  "guest-ta",
  "guest-tb",
  "guest-tc",
  "guest-tm1",
  "guest-tm2",
  "guest-tr1",
  "guest-tr2",
];
const ROOT_LINKS = [
  "br-t",
  "hv-ta",
  "hv-tb",
  "tap-tc",
  "tnic0",
  "tnic0p",
  "hv-tr1",
  "hv-tr2",
];

type Mode = "private" | "bridge" | "vepa";

function rawConfig(h: LabHost, macvlanMode: Mode): Record<string, unknown> {
  const sim = { host: "lab3", simulate: true };
  const l2 = { ...sim, bridge: "br-t", managedFdb: true };
  const mv = { ...sim, attachment: "macvlan", lower: "tnic0", macvlanMode };
  return {
    hosts: [
      { name: "lab3", address: h.address, port: h.port, hostKey: h.hostKey },
    ],
    bridges: [{ name: "br-t", filterTable: ROOT_TABLE }],
    simulatedNics: ["tnic0"],
    vms: [
      {
        ...l2,
        name: "ta",
        attachment: "isolated-netns",
        mac: MAC.ta,
        ipv4: ["198.19.30.1/24"],
      },
      {
        ...l2,
        name: "tb",
        attachment: "isolated-netns",
        mac: MAC.tb,
        ipv4: ["198.19.30.2/24"],
      },
      {
        ...l2,
        name: "tc",
        attachment: "bridged",
        mac: MAC.tc,
        ipv4: ["198.19.30.3/24"],
      },
      { ...mv, name: "tm1", mac: MAC.tm1, ipv4: ["198.19.31.1/24"] },
      { ...mv, name: "tm2", mac: MAC.tm2, ipv4: ["198.19.31.2/24"] },
      {
        ...sim,
        name: "tr1",
        attachment: "routed",
        mac: MAC.tr1,
        ipv4: ["198.19.32.1/32"],
      },
      {
        ...sim,
        name: "tr2",
        attachment: "routed",
        mac: MAC.tr2,
        ipv4: ["198.19.32.2/32"],
      },
    ],
    rollout: { serial: [1], maxFailures: 0, healthCheck: true },
  };
}

/** Leftovers of an interrupted run (all names carry this test's prefix). */
const TEARDOWN =
  [
    ...NAMESPACES.map((ns) => `ip netns del ${ns}`),
    ...ROOT_LINKS.filter((l) => l !== "tnic0p").map((l) => `ip link del ${l}`),
    `nft delete table bridge ${ROOT_TABLE}`,
  ]
    .map((c) => `${c} 2>/dev/null`)
    .join("; ") + "; true";

/** Steps that changed something (refresh/read/same are bookkeeping). */
function changes(r: StepReport): Record<string, string> {
  return Object.fromEntries(
    Object.entries(r.ops).filter(
      ([, op]) => !["same", "refresh", "read"].includes(op),
    ),
  );
}

describe("topology: functional traffic tests of every attachment kind (lab3, deployFleet)", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<StackConfig>;
  let pristine: unknown;
  const timings: Record<string, number> = {};

  const sh = (cmd: string): string => sshRun(h, cmd);
  const inNs = (ns: string, cmd: string): string =>
    sh(`ip netns exec ${ns} ${cmd}`);
  /** ping exits 0 when any reply came back. */
  const pings = (ns: string, to: string, extra = ""): boolean =>
    sshRun(
      h,
      `ip netns exec ${ns} ping ${extra} -c 2 -W 1 -q ${to} >/dev/null 2>&1 && echo ok || echo fail`,
    ).trim() === "ok";
  /** What an operator would look at when traffic goes the unexpected way. */
  const why = (...nss: string[]): string =>
    sshRun(
      h,
      [
        "bridge -d link show",
        "bridge fdb show br br-t",
        ...nss.map(
          (ns) =>
            `echo "== ${ns}"; ip -n ${ns} -d addr; ip -n ${ns} neigh; ip -n ${ns} route; ip netns exec ${ns} nft list ruleset`,
        ),
      ].join("; "),
      { allowFail: true },
    );

  /** Packets counted by every rule of a bridge table that ends in drop. */
  const dropped = (
    ns: string | undefined,
    table: string,
    chainSuffix = "",
  ): number => {
    const listing = sshJson(
      h,
      `${ns ? `ip netns exec ${ns} ` : ""}nft -j list table bridge ${table}`,
    );
    let n = 0;
    for (const item of listing.nftables) {
      const expr: any[] = item.rule?.expr ?? [];
      if (
        !item.rule?.chain.endsWith(chainSuffix) ||
        !expr.some((e) => "drop" in e)
      )
        continue;
      n += expr.find((e) => "counter" in e)?.counter.packets ?? 0;
    }
    return n;
  };

  /** Start counting frames arriving at `dev` in `ns` that match each named nft expression. */
  const capture = (
    ns: string,
    dev: string,
    matches: Record<string, string>,
  ): void => {
    const counters = Object.keys(matches)
      .map((k) => `counter ${k} {}`)
      .join("\n");
    const rules = Object.entries(matches)
      .map(([k, m]) => `${m} counter name "${k}"`)
      .join("\n");
    inNs(
      ns,
      `sh -c 'nft delete table netdev tcap 2>/dev/null; nft -f -' <<'EOF'
table netdev tcap {
${counters}
chain ingress { type filter hook ingress device "${dev}" priority -500; policy accept;
${rules}
}
}
EOF`,
    );
  };
  const captured = (ns: string, name: string): number =>
    sshJson(
      h,
      `ip netns exec ${ns} nft -j list counter netdev tcap ${name}`,
    ).nftables.find((i: any) => i.counter)!.counter.packets;
  const endCapture = (ns: string): void =>
    void sshRun(
      h,
      `ip netns exec ${ns} nft delete table netdev tcap 2>/dev/null; true`,
    );

  const stats = (
    ns: string | undefined,
    dev: string,
  ): { rx: number; tx: number } => {
    const s = sshJson(h, `ip ${ns ? `-n ${ns} ` : ""}-j -s link show ${dev}`)[0]
      .stats64;
    return { rx: s.rx.packets, tx: s.tx.packets };
  };

  /** Only this test's objects: other engineers share lab3 (and some of their names start with t). */
  const mine = (): Record<string, unknown> => {
    const snap = independentSnapshot(h) as Record<
      string,
      { links: Array<{ name: string }>; fdb: string[]; nft: string[] }
    >;
    const out: Record<string, unknown> = {};
    for (const [ns, state] of Object.entries(snap))
      if (NAMESPACES.includes(ns)) out[ns] = state;
    const root = snap["(root)"];
    out["(root)"] = {
      links: root.links.filter((l) => ROOT_LINKS.includes(l.name)),
      fdb: root.fdb.filter((row) =>
        row
          .split(" ")
          .slice(1, 3)
          .some((n) => ROOT_LINKS.includes(n)),
      ),
      nft: root.nft.filter((t) => t === `table bridge ${ROOT_TABLE}`),
    };
    return out;
  };

  const timed = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      timings[label] = Date.now() - t0;
    }
  };

  /** Seed 000's filter: a spoofed source MAC from ta is dropped (and counted) in vm-ta; the real one passes. */
  const spoofIsDropped = (): void => {
    expect(
      pings("guest-ta", "198.19.30.2"),
      `ta -> tb before spoofing\n${why("guest-ta", "vm-ta")}`,
    ).to.equal(true);
    const before = dropped("vm-ta", "hostnet");
    sh(`ip -n guest-ta link set eth0 address ${SPOOF_MAC}`);
    try {
      expect(
        pings("guest-ta", "198.19.30.2"),
        "ta -> tb with a spoofed source MAC",
      ).to.equal(false);
      expect(
        dropped("vm-ta", "hostnet"),
        "drop counters of table bridge hostnet in vm-ta",
      ).to.be.greaterThan(before);
    } finally {
      sh(`ip -n guest-ta link set eth0 address ${MAC.ta}`);
    }
    expect(
      pings("guest-ta", "198.19.30.2"),
      `ta -> tb after restoring the MAC\n${why("guest-ta", "vm-ta")}`,
    ).to.equal(true);
  };

  const setMode = (mode: Mode): void => {
    stack.config = parseStackConfig(rawConfig(h, mode));
  };

  before(async () => {
    h = labUp(3).hosts[2];
    stack = new TestStack<StackConfig>(
      "test-topology",
      parseStackConfig(rawConfig(h, "private")),
      async (config) => deployFleet(config, pulumi.secret(privateKey())),
    );
    await stack.clearLeftovers(); // state left by an interrupted run
    sh(TEARDOWN);
    pristine = mine();
  });

  after(async () => {
    await stack?.dispose(); // capture tables live in this stack's namespaces and go with them
    console.log(`      timings (ms): ${JSON.stringify(timings)}`);
  });

  it("1. up succeeds; lab3's HostHealth ran its checks (pings included) and is healthy; the rollout gate passed", async () => {
    const up = await timed("up (create)", () => stack.up());
    expect(up.ops["lab3-health"]).to.equal("create");
    expect(up.ops["rollout-batch-0"]).to.equal("create");
    expect(up.outputs.batches).to.deep.equal([["lab3"]]);
    const state = JSON.parse(await stack.exportState());
    const byName = (n: string) =>
      state.deployment.resources.find((r: any) => r.urn.endsWith(`::${n}`));
    const health = byName("lab3-health");
    expect(health.outputs.problems, "HostHealth problems").to.deep.equal([]);
    expect(health.outputs.healthy).to.equal(true);
    // The verdict is not vacuous: it pinged along the bridge (ta -> tb, tb -> tc).
    expect(health.outputs.checks.pings).to.deep.equal([
      { netns: "guest-ta", to: "198.19.30.2" },
      { netns: "guest-tb", to: "198.19.30.3" },
    ]);
    expect(health.outputs.checks.fdb).to.have.length(3);
    const gate = byName("rollout-batch-0");
    expect(gate.outputs.failedHosts).to.deep.equal([]);
    expect(gate.outputs.results).to.deep.equal([
      { host: "lab3", healthy: true, problems: [] },
    ]);
  });

  it("2. isolated-netns: ta reaches tb through vm-ta/br-t/vm-tb; a spoofed source MAC is dropped and counted in vm-ta", () => {
    // The path really runs through both VM namespaces and the host bridge.
    expect(sh("ip -j link show hv-ta")).to.include('"master":"br-t"');
    expect(inNs("vm-ta", "ip -j link show up0")).to.include('"master":"br0"');
    expect(inNs("vm-ta", "ip -j link show tap0")).to.include('"master":"br0"');
    spoofIsDropped();
  });

  it("3. managed fdb: learning/flood off and static entries on the right ports; unknown unicast is not flooded", () => {
    const ports = sshJson<any[]>(h, "bridge -j -d link show");
    for (const name of ["hv-ta", "hv-tb", "tap-tc"]) {
      const p = ports.find((x) => x.ifname === name);
      expect(p, `bridge port ${name}`).to.include({
        master: "br-t",
        learning: false,
        flood: false,
      });
    }
    const fdb = sshJson<any[]>(h, "bridge -j fdb show br br-t");
    for (const [mac, port] of [
      [MAC.ta, "hv-ta"],
      [MAC.tb, "hv-tb"],
      [MAC.tc, "tap-tc"],
    ]) {
      const row = fdb.find(
        (r) =>
          r.mac === mac &&
          r.state === "static" &&
          !(r.flags ?? []).includes("self"),
      );
      expect(row, `static fdb entry ${mac}`).to.not.equal(undefined);
      expect(row.ifname, `port of ${mac}`).to.equal(port);
    }
    // Observation points: vm-tb's up0 (where br-t hands frames to tb's port; tb's own to-vm filter
    // would drop the frame before guest-tb, so a capture there proves nothing) and tc's to-vm drop
    // counter in the root table (the first thing a frame flooded to tap-tc meets).
    sh(
      `ip -n guest-ta neigh replace 198.19.30.99 lladdr ${UNKNOWN_MAC} dev eth0 nud permanent`,
    );
    capture("vm-tb", "up0", { unknown: `ether daddr ${UNKNOWN_MAC}` });
    const tcDrops = dropped(undefined, ROOT_TABLE, "_out");
    const sent0 = stats("guest-ta", "eth0").tx;
    expect(pings("guest-ta", "198.19.30.99")).to.equal(false);
    expect(
      stats("guest-ta", "eth0").tx - sent0,
      "frames ta sent to the unknown MAC",
    ).to.be.at.least(2);
    expect(
      captured("vm-tb", "unknown"),
      "unknown unicast seen on tb's port",
    ).to.equal(0);
    expect(
      dropped(undefined, ROOT_TABLE, "_out"),
      "unknown unicast reaching tc's port",
    ).to.equal(tcDrops);
    // Positive control: with flood on, the same frames do reach both ports.
    sh(
      "bridge link set dev hv-tb flood on; bridge link set dev tap-tc flood on",
    );
    try {
      expect(pings("guest-ta", "198.19.30.99")).to.equal(false);
      expect(
        captured("vm-tb", "unknown"),
        "with flood on, unknown unicast reaches tb's port",
      ).to.be.at.least(1);
      expect(
        dropped(undefined, ROOT_TABLE, "_out"),
        "with flood on, unknown unicast reaches tc's port",
      ).to.be.greaterThan(tcDrops);
    } finally {
      sh(
        "bridge link set dev hv-tb flood off; bridge link set dev tap-tc flood off",
      );
      sh("ip -n guest-ta neigh del 198.19.30.99 dev eth0");
      endCapture("vm-tb");
    }
  });

  it("4. macvlan: private isolates, bridge (an in-place update) connects, vepa sends frames out to the lower's peer", async () => {
    const flushNeigh = () =>
      sh("ip -n guest-tm1 neigh flush all; ip -n guest-tm2 neigh flush all");
    // private: no tm1 -> tm2, although tm1's frames do leave through the lower
    flushNeigh();
    let peer0 = stats(undefined, "tnic0p").rx;
    let mv0 = stats("guest-tm1", "mv-tm1").tx;
    expect(pings("guest-tm1", "198.19.31.2"), "private: tm1 -> tm2").to.equal(
      false,
    );
    let sent = stats("guest-tm1", "mv-tm1").tx - mv0;
    expect(sent, "private: frames tm1 sent").to.be.at.least(1);
    expect(
      stats(undefined, "tnic0p").rx - peer0,
      "private: frames that reached tnic0p",
    ).to.be.at.least(sent);

    setMode("bridge");
    const up = await timed("up (macvlan private -> bridge)", () => stack.up());
    // In place: only the two ports change, and the health check runs again for the new topology.
    expect(changes(up)).to.deep.equal({
      "lab3-tm1-mv": "update",
      "lab3-tm2-mv": "update",
      "lab3-health": "update",
    });
    for (const vm of ["tm1", "tm2"])
      expect(up.diffs[`lab3-${vm}-mv`]).to.include("mode");
    expect(
      sshJson(h, "ip -n guest-tm1 -j -d link show mv-tm1")[0].linkinfo.info_data
        .mode,
    ).to.equal("bridge");
    flushNeigh();
    expect(
      pings("guest-tm1", "198.19.31.2"),
      `bridge: tm1 -> tm2\n${why("guest-tm1", "guest-tm2")}`,
    ).to.equal(true);

    setMode("vepa");
    const up2 = await timed("up (macvlan bridge -> vepa)", () => stack.up());
    expect(changes(up2)).to.deep.equal({
      "lab3-tm1-mv": "update",
      "lab3-tm2-mv": "update",
      "lab3-health": "update",
    });
    flushNeigh();
    peer0 = stats(undefined, "tnic0p").rx;
    mv0 = stats("guest-tm1", "mv-tm1").tx;
    expect(
      pings("guest-tm1", "198.19.31.2"),
      "vepa: tm1 -> tm2 (nothing reflects at tnic0p)",
    ).to.equal(false);
    sent = stats("guest-tm1", "mv-tm1").tx - mv0;
    expect(sent, "vepa: frames tm1 sent").to.be.at.least(1);
    expect(
      stats(undefined, "tnic0p").rx - peer0,
      "vepa: frames that reached tnic0p",
    ).to.be.at.least(sent);
  });

  it("5. routed: the host forwards tr1 -> tr2 with proxy ARP; no frame of tr1 (broadcast included) reaches tr2's L2", () => {
    const hvMac = sshJson(h, "ip -j link show hv-tr1")[0].address;
    expect(
      sh(
        "sysctl -n net.ipv4.conf.hv-tr1.forwarding net.ipv4.conf.hv-tr1.proxy_arp",
      )
        .trim()
        .split("\n"),
    ).to.deep.equal(["1", "1"]);
    capture("guest-tr2", "eth0", {
      fromTr1: `ether saddr ${MAC.tr1}`, // tr1's own frames: only if tr1 and tr2 shared a segment
      echo: "ip saddr 198.19.32.1 icmp type echo-request", // routed traffic of tr1 (positive control)
    });
    sh("ip -n guest-tr1 neigh flush all");
    expect(
      pings("guest-tr1", "198.19.32.2"),
      `tr1 -> tr2\n${why("guest-tr1", "guest-tr2")}`,
    ).to.equal(true);
    const neigh = sshJson<any[]>(
      h,
      "ip -n guest-tr1 -j neigh show 198.19.32.2",
    );
    expect(
      neigh[0]?.lladdr,
      "tr1's neighbour entry for tr2 (answered by proxy ARP)",
    ).to.equal(hvMac);
    expect(
      captured("guest-tr2", "echo"),
      "tr1's echo requests reached tr2, routed",
    ).to.be.at.least(1);
    const tx0 = stats("guest-tr1", "eth0").tx;
    sshRun(
      h,
      "ip netns exec guest-tr1 ping -b -c 2 -W 1 198.19.32.255; ip netns exec guest-tr1 ping -b -c 2 -W 1 255.255.255.255",
      { allowFail: true },
    );
    expect(
      stats("guest-tr1", "eth0").tx - tx0,
      "broadcasts tr1 sent",
    ).to.be.at.least(2);
    expect(
      captured("guest-tr2", "fromTr1"),
      "frames with tr1's source MAC seen by tr2",
    ).to.equal(0);
    endCapture("guest-tr2");
  });

  it("6. drift at topology level: preview --refresh names exactly the lost fdb entry and the flushed filter (and the gate whose verdict is due again); up --refresh repairs", async () => {
    sh(`bridge fdb del ${MAC.ta} dev hv-ta master`);
    inNs("vm-ta", "nft flush table bridge hostnet");
    const pv = await timed("preview --refresh (drift)", () =>
      stack.preview({ refresh: true }),
    );
    // The refresh also re-ran the health check (it now finds the fdb entry missing), so the gate's verdict is due again.
    expect(changes(pv), pv.stdout).to.deep.equal({
      "lab3-ta-fdb": "create",
      "lab3-ta-filter": "update",
      "rollout-batch-0": "update",
    });
    expect(pv.diffs["lab3-ta-filter"]).to.include("inSync");
    const up = await timed("up --refresh (repair)", () =>
      stack.up({ refresh: true }),
    );
    // After the repair the health check runs again and is healthy again (the gate's recorded verdict never changed).
    expect(changes(up)).to.deep.equal({
      "lab3-ta-fdb": "create",
      "lab3-ta-filter": "update",
      "lab3-health": "update",
    });
    const row = sshJson<any[]>(h, "bridge -j fdb show br br-t").find(
      (r) => r.mac === MAC.ta && r.state === "static",
    );
    expect(row?.ifname).to.equal("hv-ta");
    spoofIsDropped();
    const clean = await timed("preview --refresh (clean)", () =>
      stack.preview({ refresh: true }),
    );
    expect(changes(clean), clean.stdout).to.deep.equal({});
  });

  it("7. destroy leaves lab3 as it was before the first up", async () => {
    const deployed = mine() as Record<string, any>;
    // The comparison below is not vacuous: the filter sees this stack's objects while they exist.
    expect(Object.keys(deployed)).to.include.members(NAMESPACES);
    expect(deployed["(root)"].links.map((l: any) => l.name)).to.have.members(
      ROOT_LINKS,
    );
    expect(
      deployed["(root)"].fdb.filter((row: string) => row.endsWith(" static")),
    ).to.have.length(3);
    expect(deployed["(root)"].nft).to.deep.equal([
      `table bridge ${ROOT_TABLE}`,
    ]);
    await timed("destroy", () => stack.destroy());
    expect(mine()).to.deep.equal(pristine);
  });
});
