import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import {
  BridgePort,
  FdbEntry,
  HostSnapshot,
  IpAddr,
  IpLink,
  NftRuleset,
  ROOT_NS,
  Route,
  SnapshotParseError,
  buildNamespaceState,
  canonicalNftTable,
  findFdb,
  findLink,
  parseNetdevHooks,
  parseSnapshot,
  snapshotScript,
  type Link,
  type NamespaceState,
} from "../../providers/state";

// Fixtures were captured from iproute2 6.1 / nftables 1.0.6 / kernel 6.18 in throwaway netns
// hnfx-a (bridge br0, ports vethA/tapx/vethC, macvlans, nft table) and hnfx-b (veth peers).
const FIXTURES = [
  path.resolve(__dirname, "../fixtures"),
  path.resolve(__dirname, "../../../test/fixtures"),
].find((d) => fs.existsSync(path.join(d, "snapshot.txt")));

function fixture(name: string): string {
  if (FIXTURES === undefined) throw new Error("test/fixtures not found");
  return fs.readFileSync(path.join(FIXTURES, name), "utf8");
}

const json = (name: string): unknown => JSON.parse(fixture(name));

function stateFromRawFixtures(ns: string): NamespaceState {
  return buildNamespaceState({
    links: z.array(IpLink).parse(json(`ip-link.${ns}.json`)),
    addrs: z.array(IpAddr).parse(json(`ip-addr.${ns}.json`)),
    routes: z.array(Route).parse(json(`ip-route.${ns}.json`)),
    routes6: z.array(Route).parse(json(`ip-route6.${ns}.json`)),
    bports: z.array(BridgePort).parse(json(`bridge-link.${ns}.json`)),
    fdb: z.array(FdbEntry).parse(json(`bridge-fdb.${ns}.json`)),
    sysctl: {},
    nft: NftRuleset.parse(json(`nft-ruleset.${ns}.json`)),
  });
}

function link(state: NamespaceState, name: string): Link {
  const l = state.links.find((x) => x.name === name);
  if (l === undefined) throw new Error(`no link ${name}`);
  return l;
}

/** Replaces the body of one section of a snapshot output. */
function withSection(
  text: string,
  ns: string,
  section: string,
  body: string | null,
): string {
  const lines = text.split("\n");
  const start = lines.findIndex(
    (l) => l === `@@hostnet ns=${ns} section=${section}`,
  );
  if (start < 0) throw new Error(`no section ${ns}/${section}`);
  let end = start + 1;
  while (!lines[end].startsWith("@@hostnet")) end++;
  const replacement = body === null ? [] : [lines[start], body];
  return [...lines.slice(0, start), ...replacement, ...lines.slice(end)].join(
    "\n",
  );
}

function sectionBody(text: string, ns: string, section: string): string {
  const lines = text.split("\n");
  return lines[
    lines.findIndex((l) => l === `@@hostnet ns=${ns} section=${section}`) + 1
  ];
}

describe("hoststate raw models (captured fixtures)", () => {
  it("parses ip -j -d link with bridge port flags in info_slave_data", () => {
    const links = z.array(IpLink).parse(json("ip-link.hnfx-a.json"));
    const vethA = links.find((l) => l.ifname === "vethA");
    expect(vethA?.linkinfo?.info_slave_kind).to.equal("bridge");
    expect(vethA?.linkinfo?.info_slave_data).to.include({
      learning: false,
      flood: false,
      mcast_flood: false,
      bcast_flood: false,
      neigh_suppress: true,
      isolated: true,
      hairpin: true,
    });
    expect(vethA?.link_netnsid).to.equal(0);
  });

  it("parses bridge -j -d link show", () => {
    const ports = z.array(BridgePort).parse(json("bridge-link.hnfx-a.json"));
    expect(ports.map((p) => p.ifname).sort()).to.deep.equal([
      "tapx",
      "vethA",
      "vethC",
    ]);
    const vethA = ports.find((p) => p.ifname === "vethA");
    expect(vethA).to.include({
      master: "br0",
      learning: false,
      flood: false,
      hairpin: true,
      isolated: true,
      neigh_suppress: true,
    });
    expect(ports.find((p) => p.ifname === "tapx")).to.include({
      learning: true,
      flood: true,
      bcast_flood: true,
    });
  });

  it("parses bridge -j fdb show including the static entry", () => {
    const fdb = z.array(FdbEntry).parse(json("bridge-fdb.hnfx-a.json"));
    expect(fdb).to.deep.include({
      mac: "02:00:00:00:00:01",
      ifname: "vethA",
      flags: [],
      master: "br0",
      state: "static",
    });
  });

  it("parses ip -j addr show", () => {
    const addrs = z.array(IpAddr).parse(json("ip-addr.hnfx-a.json"));
    const br0 = addrs.find((a) => a.ifname === "br0");
    expect(
      br0?.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
    ).to.include.members(["10.77.0.1/24", "fd00:77::1/64"]);
  });

  it("parses nft -j list ruleset with a verdict map", () => {
    const rs = NftRuleset.parse(json("nft-ruleset.hnfx-a.json"));
    const map = rs.nftables.find((i) => i.map?.name === "in_ports")?.map;
    expect(map).to.include({
      family: "bridge",
      table: "hostnet",
      type: "ifname",
      map: "verdict",
    });
    expect(map?.elem).to.deep.include(["vethA", { jump: { target: "p1" } }]);
    expect(map?.elem).to.deep.include(["tapx", { jump: { target: "p2" } }]);
  });

  it("rejects kind-specific info_data of the wrong shape", () => {
    const links = json("ip-link.hnfx-a.json") as {
      ifname: string;
      linkinfo: { info_data: Record<string, unknown> };
    }[];
    links.find((l) => l.ifname === "br0")!.linkinfo.info_data.stp_state = "on";
    const r = z.array(IpLink).safeParse(links);
    expect(r.success).to.equal(false);
    expect(JSON.stringify(r.error?.issues[0].path)).to.include("stp_state");
  });
});

describe("buildNamespaceState (raw fixture files)", () => {
  const a = stateFromRawFixtures("hnfx-a");

  it("merges bridge port flags into the link", () => {
    expect(link(a, "vethA").port).to.deep.equal({
      state: "forwarding",
      learning: false,
      flood: false,
      hairpin: true,
      mcastFlood: false,
      bcastFlood: false,
      neighSuppress: true,
      isolated: true,
    });
    expect(link(a, "vethA").master).to.equal("br0");
    expect(link(a, "tapx").port).to.include({
      learning: true,
      flood: true,
      hairpin: false,
      isolated: false,
    });
    expect(link(a, "br0").port).to.equal(undefined);
  });

  it("reports bridge options (ageing_time 12345 reads back as 12344 here)", () => {
    expect(link(a, "br0").bridge).to.deep.equal({
      stp: true,
      forwardDelay: 400,
      ageingTime: 12344,
      mcastSnooping: false,
      vlanFiltering: false,
    });
    expect(link(a, "br0").kind).to.equal("bridge");
  });

  it("reports veth peers by index and netnsid", () => {
    expect(link(a, "vethA")).to.include({
      kind: "veth",
      peerIndex: 2,
      peerNetnsId: 0,
    });
  });

  it("reports macvlan/macvtap modes and lowers", () => {
    const modes = Object.fromEntries(
      ["mvb", "mvp", "mvv", "mvs", "mvpt", "mvtap0"].map((n) => [
        n,
        link(a, n).macvlan?.mode,
      ]),
    );
    expect(modes).to.deep.equal({
      mvb: "bridge",
      mvp: "private",
      mvv: "vepa",
      mvs: "source",
      mvpt: "passthru",
      mvtap0: "bridge",
    });
    expect(link(a, "mvtap0").kind).to.equal("macvtap");
    expect(link(a, "mvb").macvlan?.lower).to.equal("vlow1");
    expect(link(a, "mvpt").macvlan?.lower).to.equal("vlow2");
    expect(link(a, "mvs").macvlan?.macs).to.deep.equal([
      "02:00:00:00:0a:01",
      "02:00:00:00:0a:02",
    ]);
    expect(link(a, "mvx").macvlan).to.deep.equal({ mode: "bridge", lower: 3 });
  });

  it("reports tap ownership and flags", () => {
    const tapx = link(a, "tapx");
    expect(tapx.kind).to.equal("tap");
    // uid/gid 1000 resolved to a name on the capture host; unresolvable ids stay numbers.
    expect(tapx.tun).to.deep.equal({
      type: "tap",
      owner: "cloudsdk",
      group: "cloudsdk",
      multiQueue: true,
      vnetHdr: true,
      persist: true,
      pi: false,
    });
    expect(tapx).to.include({ adminUp: true, operUp: false });
  });

  it("attaches addresses from a separate addrs section", () => {
    expect(link(a, "br0").addresses).to.include.members([
      "10.77.0.1/24",
      "fd00:77::1/64",
    ]);
    expect(link(a, "lo").addresses).to.deep.equal(["127.0.0.1/8", "::1/128"]);
    expect(link(a, "lo").kind).to.equal("loopback");
  });

  it("normalizes routes to CIDRs with a family and type", () => {
    expect(a.routes).to.deep.include({
      family: 4,
      dst: "10.88.0.5/32",
      type: "unicast",
      dev: "br0",
      scope: "link",
    });
    expect(a.routes).to.deep.include({
      family: 4,
      dst: "10.55.0.0/16",
      type: "blackhole",
    });
    expect(a.routes).to.deep.include({
      family: 6,
      dst: "fd00:99::5/128",
      type: "unicast",
      dev: "br0",
      metric: 1024,
    });
    const b = stateFromRawFixtures("hnfx-b");
    expect(b.routes).to.deep.include({
      family: 4,
      dst: "0.0.0.0/0",
      type: "unicast",
      gateway: "10.77.0.1",
      dev: "vethB",
    });
    expect(
      b.routes.find((r) => r.family === 6 && r.dst === "::/0")?.gateway,
    ).to.equal("fd00:77::1");
    expect(
      b.routes.find((r) => r.dst === "10.66.0.0/16")?.nexthops,
    ).to.deep.equal([
      { gateway: "10.77.0.1", dev: "vethB", weight: 1 },
      { gateway: "10.77.1.1", dev: "vethD", weight: 1 },
    ]);
  });

  it("normalizes fdb rows (empty state means reachable)", () => {
    expect(a.fdb).to.deep.include({
      mac: "02:00:00:00:00:01",
      dev: "vethA",
      master: "br0",
      state: "static",
      flags: [],
    });
    expect(
      a.fdb.find((r) => r.dev === "vethC" && r.mac === "32:9e:6b:b5:99:bc")
        ?.state,
    ).to.equal("reachable");
  });
});

describe("parseSnapshot (captured snapshot output)", () => {
  const text = fixture("snapshot.txt");
  const snap: HostSnapshot = parseSnapshot(text);

  it("reads the header, namespaces and absent ones", () => {
    expect(snap.machineId).to.match(/^[0-9a-f]{32}$/);
    expect(snap.hostname).to.equal("vm");
    expect(Object.keys(snap.namespaces).sort()).to.deep.equal([
      ROOT_NS,
      "hnfx-a",
      "hnfx-b",
    ]);
    expect(snap.absent).to.deep.equal(["hnfx-nope"]);
    expect(snap.namespaces["hnfx-a"].failedSections).to.deep.equal([]);
  });

  it("links carry addresses from ip -d addr", () => {
    expect(findLink(snap, "hnfx-a", "br0")?.addresses).to.include.members([
      "10.77.0.1/24",
      "fd00:77::1/64",
    ]);
    expect(findLink(snap, "hnfx-b", "vethB")?.addresses).to.include.members([
      "10.77.0.2/24",
      "fd00:77::2/64",
    ]);
    expect(findLink(snap, ROOT_NS, "lo")?.kind).to.equal("loopback");
    expect(findLink(snap, "hnfx-a", "nope")).to.equal(undefined);
    expect(findLink(snap, "no-such-ns", "lo")).to.equal(undefined);
  });

  it("reports interface aliases (ownership marks)", () => {
    expect(findLink(snap, "hnfx-a", "lo")?.alias).to.equal("hostnet");
    expect(findLink(snap, "hnfx-a", "vethA")?.alias).to.equal("hostnet");
    expect(findLink(snap, "hnfx-a", "vlow2")?.alias).to.equal(
      "hostnet:test owner",
    );
    expect(findLink(snap, "hnfx-a", "mvb")).to.not.have.property("alias");
  });

  it("resolves veth peers and cross-netns macvlan lowers by nsid", () => {
    expect(findLink(snap, "hnfx-a", "vethA")).to.include({
      peerNetns: "hnfx-b",
      peerName: "vethB",
    });
    expect(findLink(snap, "hnfx-b", "vethB")).to.include({
      peerNetns: "hnfx-a",
      peerName: "vethA",
    });
    expect(findLink(snap, "hnfx-a", "mvx")).to.include({
      peerNetns: "hnfx-b",
      peerName: "vlow1p",
    });
    // Same-netns lowers: ip gives only the name; the index and netns are filled in.
    expect(findLink(snap, "hnfx-a", "mvb")).to.include({
      peerNetns: "hnfx-a",
      peerName: "vlow1",
      peerIndex: 9,
    });
  });

  it("falls back to mutual matching for veths when nsids are unavailable", () => {
    const noIds = withSection(
      withSection(text, "hnfx-a", "nsids", "[]"),
      "hnfx-b",
      "nsids",
      "[]",
    );
    const s = parseSnapshot(noIds);
    expect(findLink(s, "hnfx-a", "vethA")).to.include({
      peerNetns: "hnfx-b",
      peerName: "vethB",
    });
    // A macvlan's lower does not point back, so nothing can be inferred without names.
    expect(findLink(s, "hnfx-a", "mvx")?.peerNetns).to.equal(undefined);
  });

  it("finds the static fdb entry (MAC case-insensitive)", () => {
    expect(
      findFdb(snap, "hnfx-a", "02:00:00:00:00:01".toUpperCase(), "vethA"),
    ).to.deep.equal({
      mac: "02:00:00:00:00:01",
      dev: "vethA",
      master: "br0",
      state: "static",
      flags: [],
    });
    expect(findFdb(snap, "hnfx-a", "02:00:00:00:00:01", "tapx")).to.equal(
      undefined,
    );
  });

  it("reads sysctls as dotted keys", () => {
    const s = snap.namespaces["hnfx-a"].sysctls;
    expect(s["net.ipv4.ip_forward"]).to.equal("1");
    expect(s["net.ipv4.conf.vethA.proxy_arp"]).to.equal("1");
    expect(s["net.ipv4.conf.br0.proxy_arp"]).to.equal("0");
    expect(s["net.ipv6.conf.all.disable_ipv6"]).to.equal("0");
    expect(s).to.not.have.property("net.ipv4.conf.lo.proxy_arp");
  });

  it("carries the nft ruleset, matching the raw nft fixture", () => {
    const live = snap.namespaces["hnfx-a"].nft;
    expect(live).to.not.equal(null);
    const raw = NftRuleset.parse(json("nft-ruleset.hnfx-a.json"));
    expect(canonicalNftTable(live!, "bridge", "hostnet")).to.equal(
      canonicalNftTable(raw, "bridge", "hostnet"),
    );
    expect(
      canonicalNftTable(snap.namespaces["hnfx-b"].nft!, "bridge", "hostnet"),
    ).to.equal(null);
  });

  it("tolerates unknown fields a newer kernel might add", () => {
    const links = JSON.parse(sectionBody(text, "hnfx-a", "links")) as Record<
      string,
      any
    >[];
    const br0 = links.find((l) => l.ifname === "br0")!;
    br0.future_field = { nested: [1, 2] };
    br0.linkinfo.info_data.mcast_future = 7;
    const vethA = links.find((l) => l.ifname === "vethA")!;
    vethA.linkinfo.info_slave_data.brand_new_flag = true;
    const s = parseSnapshot(
      withSection(text, "hnfx-a", "links", JSON.stringify(links)),
    );
    expect(findLink(s, "hnfx-a", "br0")?.bridge?.stp).to.equal(true);
    expect(findLink(s, "hnfx-a", "vethA")?.port?.isolated).to.equal(true);
  });

  it("names the namespace and section of broken JSON", () => {
    const broken = withSection(text, "hnfx-b", "routes", '[{"dst":');
    expect(() => parseSnapshot(broken)).to.throw(
      SnapshotParseError,
      /ns "hnfx-b" section routes: invalid JSON/,
    );
  });

  it("names the namespace, section and field of a schema violation", () => {
    const links = JSON.parse(sectionBody(text, ROOT_NS, "links")) as Record<
      string,
      unknown
    >[];
    links[0].mtu = "big";
    const bad = withSection(text, ROOT_NS, "links", JSON.stringify(links));
    try {
      parseSnapshot(bad);
      expect.fail("should throw");
    } catch (e) {
      expect(e).to.be.instanceOf(SnapshotParseError);
      expect((e as SnapshotParseError).ns).to.equal(ROOT_NS);
      expect((e as SnapshotParseError).section).to.equal("links");
      expect((e as Error).message).to.include("links[0].mtu");
    }
  });

  it("treats empty output as [] and records failed or missing sections", () => {
    let t = withSection(text, "hnfx-a", "fdb", "").replace(
      "@@hostnet ns=hnfx-a section=fdb",
      "@@hostnet ns=hnfx-a section=fdb rc=127",
    );
    t = withSection(t, "hnfx-a", "routes6", null);
    const s = parseSnapshot(t);
    expect(s.namespaces["hnfx-a"].failedSections).to.deep.equal([
      "routes6",
      "fdb",
    ]);
    expect(s.namespaces["hnfx-a"].fdb).to.deep.equal([]);
    expect(s.namespaces["hnfx-a"].routes.every((r) => r.family === 4)).to.equal(
      true,
    );
  });

  it("reads nft null (no nft binary) and [] (nft failed) as no ruleset", () => {
    expect(
      parseSnapshot(withSection(text, "hnfx-a", "nft", "null")).namespaces[
        "hnfx-a"
      ].nft,
    ).to.equal(null);
    expect(
      parseSnapshot(withSection(text, "hnfx-a", "nft", "[]")).namespaces[
        "hnfx-a"
      ].nft,
    ).to.equal(null);
  });

  it("keeps a namespace whose dump failed as present with every section failed", () => {
    const t = text.replace(
      "@@hostnet end",
      "@@hostnet ns=gone section=error rc=255\n@@hostnet end",
    );
    const s = parseSnapshot(t);
    expect(s.namespaces.gone.links).to.deep.equal([]);
    expect(s.namespaces.gone.failedSections).to.include.members([
      "links",
      "nft",
      "sysctl",
    ]);
  });

  it("rejects truncated output", () => {
    const cut = text.slice(0, text.indexOf("@@hostnet end"));
    expect(() => parseSnapshot(cut)).to.throw(SnapshotParseError, /truncated/);
  });
});

describe("canonicalNftTable", () => {
  const base = NftRuleset.parse(json("nft-ruleset.hnfx-a.json"));
  const clone = (): NftRuleset =>
    JSON.parse(JSON.stringify(base)) as NftRuleset;
  const canon = (rs: NftRuleset): string | null =>
    canonicalNftTable(rs, "bridge", "hostnet");

  it("is stable under handle and counter changes", () => {
    const rs = clone();
    for (const item of rs.nftables) {
      for (const body of Object.values(item) as Record<string, unknown>[]) {
        if (typeof body.handle === "number") body.handle += 100;
      }
      for (const e of (item.rule?.expr ?? []) as Record<string, any>[]) {
        if (e.counter) e.counter = { packets: 42, bytes: 4242 };
      }
    }
    expect(canon(rs)).to.equal(canon(base));
    expect(canon(base)).to.not.match(/handle|packets/);
  });

  it("is stable under element order and the order of non-rule items", () => {
    const rs = clone();
    // Rule order within a chain is semantic, so only the other items are shuffled.
    const rules = rs.nftables.filter((i) => i.rule !== undefined);
    rs.nftables = [
      ...rs.nftables.filter((i) => i.rule === undefined).reverse(),
      ...rules,
    ];
    for (const item of rs.nftables) item.map?.elem?.reverse();
    expect(canon(rs)).to.equal(canon(base));
  });

  it("lists base-chain properties and map elements", () => {
    const text = canon(base)!;
    expect(text).to.include(
      'chain forward_hook {"hook":"forward","policy":"accept","prio":0,"type":"filter"}',
    );
    expect(text).to.include('  elem ["vethA",{"jump":{"target":"p1"}}]');
  });

  it("changes when a rule is removed, reordered or an element changes", () => {
    const removed = clone();
    removed.nftables = removed.nftables.filter((i) => i.rule?.chain !== "p1");
    expect(canon(removed)).to.not.equal(canon(base));

    const reordered = clone();
    const p2 = reordered.nftables.filter((i) => i.rule?.chain === "p2");
    const others = reordered.nftables.filter((i) => i.rule?.chain !== "p2");
    reordered.nftables = [...others, ...p2.reverse()];
    expect(canon(reordered)).to.not.equal(canon(base));

    const elem = clone();
    elem.nftables.find((i) => i.map)!.map!.elem!.pop();
    expect(canon(elem)).to.not.equal(canon(base));
  });

  it("is null when the table is absent", () => {
    expect(canonicalNftTable(base, "inet", "hostnet")).to.equal(null);
    expect(canonicalNftTable(base, "bridge", "other")).to.equal(null);
  });
});

describe("snapshotScript", () => {
  it("lists every namespace by default and always includes root", () => {
    const s = snapshotScript();
    expect(s).to.include("ip netns list");
    expect(s).to.include('sh -c "$HN_NS" hn ""');
    expect(s).to.include("@@hostnet end");
  });

  it("dumps only the given namespaces, quoted", () => {
    const s = snapshotScript({ namespaces: ["vm-1", "vm_2.x"] });
    expect(s).to.include("printf '%s\\n' vm-1 vm_2.x");
    expect(s).to.not.include("ip netns list 2>");
    expect(snapshotScript({ namespaces: [] })).to.include("hn_list=\n");
  });

  it("refuses namespace names that could escape or inject", () => {
    for (const bad of ["a b", "-x", "..", "x;reboot", "a'b", ""]) {
      expect(() => snapshotScript({ namespaces: [bad] }), bad).to.throw();
    }
  });

  it("validates parallel", () => {
    expect(snapshotScript({ parallel: 1 })).to.include("hn_all 1");
    for (const bad of [0, 65, 1.5])
      expect(() => snapshotScript({ parallel: bad })).to.throw(RangeError);
  });

  it("is syntactically valid POSIX sh", function () {
    for (const shell of ["sh", "dash"]) {
      try {
        execFileSync(shell, ["-n"], {
          input: snapshotScript({ namespaces: ["a"] }),
        });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw e;
      }
    }
  });
});

describe("netdev hooks (nft list chains netdev: devices the JSON leaves out)", () => {
  const LISTING = [
    "table netdev hostnet_arp_br0 {",
    "\tchain ingress_0 {",
    '\t\ttype filter hook ingress devices = { tap-a, "tap.b" } priority filter; policy accept;',
    "\t}",
    "\tchain ingress_1 {",
    '\t\ttype filter hook ingress device "tap-c" priority filter; policy accept;',
    "\t}",
    "}",
    "table netdev empty {",
    "}",
  ];

  it("reads each table's hooked devices across its chains, quoted or not", () => {
    expect(parseNetdevHooks(LISTING)).to.deep.equal({
      hostnet_arp_br0: ["tap-a", "tap.b", "tap-c"],
      empty: [],
    });
    expect(parseNetdevHooks(["[]"])).to.deep.equal({});
  });

  /** The captured snapshot with a hooks section after hnfx-a's nft section. */
  const withHooks = (marker: string, body: string[]): string => {
    const lines = fixture("snapshot.txt").split("\n");
    const nft = lines.indexOf("@@hostnet ns=hnfx-a section=nft");
    let end = nft + 1;
    while (!lines[end].startsWith("@@hostnet")) end++;
    return [...lines.slice(0, end), marker, ...body, ...lines.slice(end)].join(
      "\n",
    );
  };

  it("parseSnapshot: a hooks section fills netdevHooks; a failed one leaves it unknown and says so", () => {
    const ok = parseSnapshot(
      withHooks("@@hostnet ns=hnfx-a section=hooks", LISTING),
    ).namespaces["hnfx-a"];
    expect(ok.netdevHooks?.hostnet_arp_br0).to.deep.equal([
      "tap-a",
      "tap.b",
      "tap-c",
    ]);
    expect(ok.failedSections).to.deep.equal([]);
    const failed = parseSnapshot(
      withHooks("@@hostnet ns=hnfx-a section=hooks rc=1", ["[]"]),
    ).namespaces["hnfx-a"];
    expect(failed.netdevHooks).to.equal(undefined);
    expect(failed.failedSections).to.deep.equal(["hooks"]);
    const older = parseSnapshot(fixture("snapshot.txt")).namespaces["hnfx-a"];
    expect(older.netdevHooks, "a snapshot without the section").to.equal(
      undefined,
    );
    expect(older.failedSections).to.deep.equal([]);
  });
});
