// MacvlanPort lifecycle with the real engine on lab2: macvlan ports moved into namespaces, checked
// functionally (who can ping whom in each mode), in-place mode and source-list changes, passthru
// (which the kernel can only get by replacement), macvtap's character device, drift, adopt, destroy.
import { expect } from "chai";
import { MacvlanPort } from "../../providers/kinds/macvlanPort";
import { independentSnapshot, TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

type PortArgs = Record<string, unknown>;
type Config = Record<string, PortArgs>;

const NS1 = "mvns1";
const NS2 = "mvns2";
const ADDR1 = "198.19.7.1/24";
const ADDR2 = "198.19.7.2/24";
const SRC = ["52:54:00:7a:00:01", "52:54:00:7a:00:02", "52:54:00:7a:00:03"];

/** Lower devices: veth ends (no dummy on this kernel; a bridge port cannot be a macvlan lower). */
const SETUP = [
  "ip link add mvlow0 type veth peer name mvpeer0",
  "ip link add mvlow1 type veth peer name mvpeer1",
  "ip link add mvlow2 type veth peer name mvpeer2",
  "for d in mvlow0 mvpeer0 mvlow1 mvpeer1 mvlow2 mvpeer2; do ip link set $d up; done",
  // A fixed MAC, so the bridge keeps its address when a port leaves it (before == after).
  // Other tests' nft rules in lab2's root must not see frames crossing it: no br_netfilter here.
  "ip link add mvbr0 address 52:54:00:7a:ff:ff type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0",
  "ip link set mvbr0 up",
  `ip netns add ${NS1}`,
  `ip netns add ${NS2}`,
  // A lower that lives in a namespace: the port is made beside it, then moved.
  `ip -n ${NS1} link add mvlow3 type veth peer name mvpeer3`,
  `ip -n ${NS1} link set mvlow3 up`,
  `ip -n ${NS1} link set mvpeer3 up`,
].join(" && ");

const TEARDOWN =
  [
    `ip netns del ${NS1}`,
    `ip netns del ${NS2}`,
    "ip link del mvlow0",
    "ip link del mvlow1",
    "ip link del mvlow2",
    "ip link del mvbr0",
    "ip link del mvh0",
  ]
    .map((c) => `${c} 2>/dev/null`)
    .join("; ") + "; true";

describe("MacvlanPort: macvlan/macvtap lifecycle on a lab host", function () {
  this.timeout(600_000);
  let host: LabHost;
  let stack: TestStack<Config>;
  let pristine: unknown;
  const program = async (config: Config) => {
    const outs: Record<string, unknown> = {};
    for (const [key, args] of Object.entries(config)) {
      const port = new MacvlanPort(key, {
        connection: labConnection(host),
        ...(args as any),
      });
      outs[key] = {
        ifindex: port.ifindex,
        devicePath: port.devicePath,
        id: port.id,
        created: port.created,
      };
    }
    return outs;
  };

  /** Only this test's objects: other engineers share lab2's root namespace. */
  const ours = (): unknown => {
    const snap = independentSnapshot(host) as Record<
      string,
      { links: Array<{ name: string }>; fdb: string[] }
    >;
    const out: Record<string, unknown> = {};
    for (const [ns, state] of Object.entries(snap)) {
      if (ns.startsWith("mv")) out[ns] = state;
      if (ns !== "(root)") continue;
      out[ns] = {
        links: state.links.filter((l) => l.name.startsWith("mv")),
        fdb: state.fdb.filter((f) => / mv/.test(f)),
      };
    }
    return out;
  };
  const link = (ns: string | undefined, name: string): any =>
    sshJson(host, `ip ${ns ? `-n ${ns} ` : ""}-j -d addr show ${name}`)[0];
  const exists = (ns: string | undefined, name: string): boolean =>
    sshRun(
      host,
      `ip ${ns ? `-n ${ns} ` : ""}link show ${name} >/dev/null 2>&1 && echo yes || echo no`,
    ).trim() === "yes";
  /** Fresh ARP each time: a cached neighbour would let unicast through where broadcast is refused. */
  const pings = (): boolean =>
    sshRun(
      host,
      `ip -n ${NS1} neigh flush all; ip -n ${NS2} neigh flush all; ` +
        `ip netns exec ${NS1} ping -c 2 -W 1 ${ADDR2.split("/")[0]} >/dev/null 2>&1 && echo ok || echo fail`,
    ).trim() === "ok";
  /** What an operator would look at when a ping goes the unexpected way. */
  const why = (): string =>
    sshRun(
      host,
      `ip -n ${NS1} -d link show mv0; ip -n ${NS2} -d link show mv1; bridge -d link show dev mvpeer0; ` +
        `ip -n ${NS1} neigh; bridge fdb show br mvbr0; nft list ruleset | head -40`,
      { allowFail: true },
    );
  const rxPackets = (dev: string): number =>
    sshJson(host, `ip -j -s link show ${dev}`)[0].stats64.rx.packets;

  const portA = {
    name: "mv0",
    lower: "mvlow0",
    netns: NS1,
    addresses: [ADDR1],
  };
  const portB = {
    name: "mv1",
    lower: "mvlow0",
    netns: NS2,
    addresses: [ADDR2],
  };

  before(() => {
    host = labUp(3).hosts[1];
    sshRun(host, TEARDOWN); // leftovers of an interrupted run
    sshRun(host, SETUP);
    pristine = ours();
    stack = new TestStack<Config>("test-macvlan", {}, program);
  });

  after(async () => {
    await stack?.dispose();
    if (host) sshRun(host, TEARDOWN);
  });

  it("creates two bridge-mode macvlans in their namespaces, and they reach each other", async () => {
    stack.config = { a: { ...portA }, b: { ...portB } };
    const up = await stack.up();
    expect(up.ops).to.include({ a: "create", b: "create" });
    const a = link(NS1, "mv0");
    expect(a.linkinfo.info_kind).to.equal("macvlan");
    expect(a.linkinfo.info_data.mode).to.equal("bridge");
    expect(a.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
    expect(a.flags).to.include("UP");
    expect(a.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`)).to.include(
      ADDR1,
    );
    expect((up.outputs.a as any).ifindex).to.equal(a.ifindex);
    expect((up.outputs.a as any).devicePath).to.equal(undefined);
    expect(
      exists(undefined, "mv0"),
      "moved out of the lower's namespace",
    ).to.equal(false);
    expect(link(NS2, "mv1").linkinfo.info_data.mode).to.equal("bridge");
    expect(
      pings(),
      "bridge mode switches port to port inside the lower",
    ).to.equal(true);
  });

  it("reads back exactly what it made: a refreshing preview sees no changes", async () => {
    const pv = await stack.preview({ refresh: true, expectNoChanges: true });
    expect(pv.ops).to.include({ a: "same", b: "same" });
  });

  it("changes mode to private in place; private ports cannot reach each other, even through a hairpin switch", async () => {
    const ifindex = link(NS1, "mv0").ifindex;
    stack.config = {
      a: { ...portA, mode: "private" },
      b: { ...portB, mode: "private" },
    };
    const pv = await stack.preview();
    expect(pv.ops).to.include({ a: "update", b: "update" });
    expect(pv.stdout, pv.stdout).to.match(
      /mode\s*:\s*"bridge"\s*=>\s*"private"/,
    );
    await stack.up();
    expect(link(NS1, "mv0").linkinfo.info_data.mode).to.equal("private");
    expect(link(NS1, "mv0").ifindex, "same device, changed in place").to.equal(
      ifindex,
    );
    sshRun(
      host,
      "ip link set mvpeer0 master mvbr0 && bridge link set dev mvpeer0 hairpin on",
    );
    expect(pings(), why()).to.equal(false);
  });

  it("vepa sends port-to-port traffic out through the lower: it works with a hairpin switch, fails without", async () => {
    stack.config = {
      a: { ...portA, mode: "vepa" },
      b: { ...portB, mode: "vepa" },
    };
    const up = await stack.up();
    expect(up.ops).to.include({ a: "update", b: "update" });
    expect(link(NS2, "mv1").linkinfo.info_data.mode).to.equal("vepa");
    expect(
      pings(),
      `the outside bridge reflects frames back (hairpin on mvpeer0)\n${why()}`,
    ).to.equal(true);
    sshRun(host, "ip link set mvpeer0 nomaster");
    const rx = rxPackets("mvpeer0");
    expect(pings(), "no hairpin switch outside: nothing comes back").to.equal(
      false,
    );
    expect(
      rxPackets("mvpeer0"),
      "frames left through the lower device",
    ).to.be.greaterThan(rx);
  });

  it("back to bridge mode: the ports reach each other again", async () => {
    stack.config = { a: { ...portA }, b: { ...portB } };
    await stack.up();
    expect(pings()).to.equal(true);
  });

  it("a macvtap exposes /dev/tap<ifindex> of the namespace it lives in", async () => {
    stack.config = {
      ...stack.config,
      t: {
        name: "mvt0",
        type: "macvtap",
        lower: "mvlow1",
        netns: NS2,
        mode: "bridge",
      },
    };
    const up = await stack.up();
    expect(up.ops.t).to.equal("create");
    const t = link(NS2, "mvt0");
    expect(t.linkinfo.info_kind).to.equal("macvtap");
    const out = up.outputs.t as any;
    expect(out.ifindex).to.equal(t.ifindex);
    expect(out.devicePath).to.equal(`/dev/tap${t.ifindex}`);
    expect(
      sshRun(host, `test -c ${out.devicePath} && echo char`).trim(),
    ).to.equal("char");
  });

  it("a port whose lower lives in a namespace is made there and moved on; changing netns replaces it", async () => {
    const l = {
      name: "mvl0",
      lower: "mvlow3",
      lowerNetns: NS1,
      netns: NS2,
      addresses: ["198.19.8.1/24"],
    };
    stack.config = { ...stack.config, l };
    expect((await stack.up()).ops.l).to.equal("create");
    const moved = link(NS2, "mvl0");
    expect(moved.linkinfo.info_kind).to.equal("macvlan");
    expect(exists(NS1, "mvl0")).to.equal(false);
    expect(
      moved.link_index,
      "its lower, named by index across namespaces",
    ).to.equal(link(NS1, "mvlow3").ifindex);
    await stack.preview({ refresh: true, expectNoChanges: true });
    stack.config = { ...stack.config, l: { ...l, netns: undefined } };
    expect((await stack.preview()).ops.l).to.equal("replace");
    expect((await stack.up()).ops.l).to.equal("replace");
    expect(exists(NS2, "mvl0")).to.equal(false);
    const stayed = link(NS1, "mvl0");
    expect(stayed.link).to.equal("mvlow3");
    expect(
      stayed.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`),
    ).to.include("198.19.8.1/24");
  });

  it("source mode admits listed MACs; the list changes in place", async () => {
    stack.config = {
      ...stack.config,
      s: {
        name: "mvs0",
        lower: "mvlow1",
        mode: "source",
        sourceMacs: SRC.slice(0, 2),
      },
    };
    await stack.up();
    const s = link(undefined, "mvs0");
    expect(s.linkinfo.info_data.mode).to.equal("source");
    expect([...s.linkinfo.info_data.macaddr_data].sort()).to.deep.equal(
      SRC.slice(0, 2),
    );
    stack.config = {
      ...stack.config,
      s: { ...stack.config.s, sourceMacs: [SRC[2], SRC[0]] },
    };
    const pv = await stack.preview();
    expect(pv.ops.s).to.equal("update");
    expect(pv.stdout, pv.stdout).to.match(/sourceMacs/);
    const up = await stack.up();
    const after = link(undefined, "mvs0");
    expect((up.outputs.s as any).ifindex).to.equal(after.ifindex);
    expect([...after.linkinfo.info_data.macaddr_data].sort()).to.deep.equal([
      SRC[0],
      SRC[2],
    ]);
    expect(after.ifindex).to.equal(s.ifindex);
  });

  it("switching a port to passthru replaces it (the kernel refuses it in place)", async () => {
    stack.config = {
      ...stack.config,
      p: { name: "mvp0", lower: "mvlow2", mode: "bridge" },
    };
    await stack.up();
    const before = link(undefined, "mvp0").ifindex;
    expect(
      sshRun(host, "ip link set mvp0 type macvlan mode passthru 2>&1 || true"),
      "kernel refuses in place",
    ).to.match(/Invalid argument/);
    stack.config = {
      ...stack.config,
      p: { ...stack.config.p, mode: "passthru" },
    };
    const pv = await stack.preview();
    expect(pv.ops.p).to.equal("replace");
    const up = await stack.up();
    expect(up.ops.p).to.equal("replace");
    const p = link(undefined, "mvp0");
    expect(p.linkinfo.info_data.mode).to.equal("passthru");
    expect(p.ifindex).to.not.equal(before);
    expect(
      (up.outputs.p as any).ifindex,
      "outputs describe the new device",
    ).to.equal(p.ifindex);
    expect(p.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
  });

  it("a second port on a passthru lower fails with a message that says why, leaving nothing behind", async () => {
    const good = stack.config;
    stack.config = {
      ...good,
      q: { name: "mvq0", lower: "mvlow2", mode: "bridge" },
    };
    let message = "";
    await stack.up().catch((e) => (message = String(e)));
    expect(message).to.match(/passthru/);
    expect(exists(undefined, "mvq0")).to.equal(false);
    stack.config = good;
  });

  it("preview --refresh reports out-of-band changes and up repairs them", async () => {
    sshRun(
      host,
      `ip -n ${NS1} link set mv0 type macvlan mode vepa && ip -n ${NS2} link del mv1 && ip link set mvs0 type macvlan macaddr add 52:54:00:7a:00:09`,
    );
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops).to.include({
      a: "update",
      b: "create",
      s: "update",
      t: "same",
      p: "same",
    });
    // The refresh step shows what the host holds now, against what the state recorded.
    expect(pv.stdout, pv.stdout).to.match(/mode\s*:\s*"bridge"\s*=>\s*"vepa"/);
    expect(pv.stdout, pv.stdout).to.match(
      /sourceMacs[^]*\+ \[2\]: "52:54:00:7a:00:09"/,
    );
    await stack.up({ refresh: true });
    expect(link(NS1, "mv0").linkinfo.info_data.mode).to.equal("bridge");
    expect(link(NS2, "mv1").linkinfo.info_data.mode).to.equal("bridge");
    expect(
      [...link(undefined, "mvs0").linkinfo.info_data.macaddr_data].sort(),
    ).to.deep.equal([SRC[0], SRC[2]]);
    expect(pings()).to.equal(true);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("refuses to create over an existing interface and adopts it with adopt: true, untouched", async () => {
    sshRun(host, "ip link add link mvlow1 name mvh0 type macvlan mode private");
    const hand = link(undefined, "mvh0");
    const good = stack.config;
    stack.config = {
      ...good,
      h: { name: "mvh0", lower: "mvlow1", mode: "private" },
    };
    let message = "";
    await stack.up().catch((e) => (message = String(e)));
    expect(message).to.match(/adopt: true/);
    stack.config = {
      ...good,
      h: { name: "mvh0", lower: "mvlow1", mode: "private", adopt: true },
    };
    const up = await stack.up();
    expect((up.outputs.h as any).created).to.equal(false);
    expect(link(undefined, "mvh0")).to.deep.include({
      ifindex: hand.ifindex,
      flags: hand.flags,
    });
    expect(link(undefined, "mvh0").ifalias).to.equal(undefined);
    stack.config = good;
    await stack.up();
    expect(
      exists(undefined, "mvh0"),
      "releasing an adopted port keeps it",
    ).to.equal(true);
    sshRun(host, "ip link del mvh0");
  });

  it("destroy leaves the host as it was", async () => {
    await stack.destroy();
    expect(ours()).to.deep.equal(pristine);
  });

  describe("invalid inputs fail at preview, naming the field, with the host unchanged", () => {
    const cases: Array<[string, PortArgs, RegExp]> = [
      [
        "an unknown mode",
        { name: "mvbad0", lower: "mvlow0", mode: "hub" },
        /mode/,
      ],
      [
        "source mode without sourceMacs",
        { name: "mvbad1", lower: "mvlow0", mode: "source" },
        /sourceMacs/,
      ],
      [
        "a lower device name with '/'",
        { name: "mvbad2", lower: "x/y" },
        /lower/,
      ],
    ];
    for (const [what, args, field] of cases) {
      it(what, async () => {
        const before = ours();
        const bad = new TestStack<Config>(
          "test-macvlan-bad",
          { x: args },
          program,
        );
        let message = "";
        try {
          await bad.preview();
        } catch (e) {
          message = String(e);
        } finally {
          await bad.dispose();
        }
        expect(message).to.match(field);
        expect(ours()).to.deep.equal(before);
      });
    }
  });
});
