// VethLink's planner, pure: the whole creation against nothing, nothing against a host that
// matches, only the drifted property against a drifted one, and the marks on own leftovers.
import { expect } from "chai";
import type {
  HostSnapshot,
  Link,
  NamespaceState,
  RouteRow,
} from "../../providers/state";
import { ownerMark } from "../../providers/state";
import {
  VethLinkProps,
  vethLinkPlanner as planner,
} from "../../providers/kinds/vethLink";
import type { Step } from "../../providers/kinds/plan";
import { namespaceOf } from "../support/snapshotBuilder";
import { mayCut } from "../../providers/kinds/vethLink/guard";
import type { ManagementPath } from "../../providers/host";

const OWNER = "0123abcd-0123456789";
const MARK = ownerMark(OWNER);

const desired = (): VethLinkProps =>
  VethLinkProps.parse({
    a: {
      name: "h0",
      master: "br0",
      portFlags: { learning: false, flood: false },
      proxyArp: true,
    },
    b: {
      name: "v0",
      netns: "ns1",
      addresses: ["10.0.0.2/24"],
      routes: [{ to: "10.1.0.0/16", via: "10.0.0.1" }],
      forwarding: false,
    },
    mtu: 1400,
  });

function link(name: string, over: Partial<Link>): Link {
  return {
    name,
    index: 1,
    kind: "veth",
    mtu: 1400,
    operUp: true,
    adminUp: true,
    addresses: [],
    ...over,
  };
}

const ns = (
  links: Link[],
  routes: RouteRow[],
  sysctls: Record<string, string>,
): NamespaceState => namespaceOf(links, { routes, sysctls });

const route = (dst: string, over: Partial<RouteRow>): RouteRow => ({
  family: 4,
  dst,
  type: "unicast",
  ...over,
});

/** The host as it is after a complete create of `desired()` (owner's marks on both ends). */
function matching(): HostSnapshot {
  return {
    machineId: "m",
    hostname: "h",
    absent: [],
    namespaces: {
      "": ns(
        [
          { ...link("br0", { kind: "bridge" }) },
          link("h0", {
            master: "br0",
            alias: MARK,
            peerName: "v0",
            peerNetns: "ns1",
            port: { learning: false, flood: false, hairpin: false },
          }),
        ],
        [],
        {
          "net.ipv4.conf.h0.proxy_arp": "1",
          "net.ipv4.conf.h0.forwarding": "1",
        },
      ),
      ns1: ns(
        [
          link("v0", {
            alias: MARK,
            peerName: "h0",
            peerNetns: "",
            addresses: ["10.0.0.2/24", "fe80::1/64"],
          }),
        ],
        [
          route("10.0.0.0/24", {
            dev: "v0",
            protocol: "kernel",
            scope: "link",
          }),
          route("10.1.0.0/16", { dev: "v0", gateway: "10.0.0.1" }),
          route("fe80::/64", { family: 6, dev: "v0", protocol: "kernel" }),
        ],
        {
          "net.ipv4.conf.v0.forwarding": "0",
          "net.ipv4.conf.v0.proxy_arp": "0",
        },
      ),
    },
  };
}

const linesOf = (steps: Step[]): string[] =>
  steps.flatMap((s) =>
    s.op.kind === "batch"
      ? s.op.lines.map(
          (l) => `${s.op.netns ?? "-"} ${(s.op as { tool: string }).tool} ${l}`,
        )
      : s.op.kind === "sh"
        ? s.op.commands.map((c) => `${s.op.netns ?? "-"} sh ${c.join(" ")}`)
        : [],
  );

function planAgainst(
  snap: HostSnapshot,
  owner: string | undefined = OWNER,
): Step[] {
  const p = desired();
  return planner.plan(p, planner.observe(snap, p), { owner });
}

describe("VethLink planner", () => {
  it("scope: the namespaces of both ends", () => {
    expect(planner.scope(desired())).to.deep.equal(["ns1"]);
  });

  it("against nothing: the whole creation, marks included, the make step undoable", () => {
    const steps = planner.plan(desired(), undefined, { owner: OWNER });
    expect(steps[0].makes).to.equal(true);
    expect(steps[0].undo).to.deep.include({ netns: undefined });
    expect((steps[0].undo as { lines: string[] }).lines).to.deep.equal([
      "link del dev h0",
    ]);
    expect(steps.slice(1).every((s) => !s.makes)).to.equal(true);
    expect(linesOf(steps)).to.deep.equal([
      "- ip link add h0 type veth peer name v0 netns ns1",
      `- ip link set dev h0 alias ${MARK}`,
      `- ip link set dev h0 alias ${MARK}`,
      "- ip link set dev h0 mtu 1400",
      "- ip link set dev h0 master br0",
      "- ip link set dev h0 up",
      "- bridge link set dev h0 learning off flood off",
      "- sh sysctl -q -w net/ipv4/conf/h0/proxy_arp=1",
      `ns1 ip link set dev v0 alias ${MARK}`,
      "ns1 ip link set dev v0 mtu 1400",
      "ns1 ip addr replace 10.0.0.2/24 dev v0",
      "ns1 ip link set dev v0 up",
      "ns1 ip route replace 10.1.0.0/16 via 10.0.0.1 dev v0",
      "ns1 sh sysctl -q -w net/ipv4/conf/v0/forwarding=0",
    ]);
  });

  it("without an owner, marks with the plain legacy mark", () => {
    const steps = planner.plan(desired(), undefined, {});
    expect(linesOf(steps)[1]).to.equal("- ip link set dev h0 alias hostnet");
  });

  it("anchors a pair whose a end is in a namespace and b in the root on b", () => {
    const p = desired();
    const swapped = VethLinkProps.parse({ a: p.b, b: { ...p.a } });
    const steps = planner.plan(swapped, undefined, { owner: OWNER });
    expect(linesOf(steps)[0]).to.equal(
      "- ip link add h0 type veth peer name v0 netns ns1",
    );
  });

  it("observe: undefined when an end is missing or its peer is another interface", () => {
    const p = desired();
    const snap = matching();
    snap.namespaces.ns1.links = [];
    expect(planner.observe(snap, p)).to.equal(undefined);
    const other = matching();
    other.namespaces[""].links[1].peerName = "x0";
    expect(planner.observe(other, p)).to.equal(undefined);
    expect(planner.observe(matching(), p)).to.not.equal(undefined);
  });

  it("against a host that matches: no steps (kernel routes and fe80:: are not drift)", () => {
    expect(planAgainst(matching())).to.deep.equal([]);
  });

  const drifts: Array<[string, (s: HostSnapshot) => void, string[]]> = [
    [
      "the port left its bridge",
      (s) => {
        s.namespaces[""].links[1].master = undefined;
        s.namespaces[""].links[1].port = undefined;
      },
      [
        "- ip link set dev h0 master br0",
        "- bridge link set dev h0 learning off flood off",
      ],
    ],
    [
      "one port flag flipped",
      (s) => {
        s.namespaces[""].links[1].port!.flood = true;
      },
      ["- bridge link set dev h0 flood off"],
    ],
    [
      "addresses flushed",
      (s) => {
        s.namespaces.ns1.links[0].addresses = [];
      },
      ["ns1 ip addr add 10.0.0.2/24 dev v0"],
    ],
    [
      "a stranger address",
      (s) => {
        s.namespaces.ns1.links[0].addresses.push("10.9.9.9/32");
      },
      ["ns1 ip addr del 10.9.9.9/32 dev v0"],
    ],
    [
      "the MTU of one end",
      (s) => {
        s.namespaces.ns1.links[0].mtu = 1500;
      },
      ["ns1 ip link set dev v0 mtu 1400"],
    ],
    [
      "an end set down",
      (s) => {
        s.namespaces.ns1.links[0].adminUp = false;
      },
      ["ns1 ip link set dev v0 up"],
    ],
    [
      "the route removed",
      (s) => {
        s.namespaces.ns1.routes.splice(1, 1);
      },
      ["ns1 ip route replace 10.1.0.0/16 via 10.0.0.1 dev v0"],
    ],
    [
      "a stranger route through the end",
      (s) => {
        s.namespaces.ns1.routes.push(route("192.0.2.0/24", { dev: "v0" }));
      },
      ["ns1 ip route del 192.0.2.0/24 dev v0"],
    ],
    [
      "proxy ARP turned off",
      (s) => {
        s.namespaces[""].sysctls["net.ipv4.conf.h0.proxy_arp"] = "0";
      },
      ["- sh sysctl -q -w net/ipv4/conf/h0/proxy_arp=1"],
    ],
  ];
  for (const [what, drift, expected] of drifts) {
    it(`drift (${what}): only that is fixed`, () => {
      const snap = matching();
      drift(snap);
      expect(linesOf(planAgainst(snap))).to.deep.equal(expected);
    });
  }

  it("own leftover whose peer lost its mark: the peer is stamped, nothing else", () => {
    const snap = matching();
    snap.namespaces.ns1.links[0].alias = undefined;
    expect(linesOf(planAgainst(snap))).to.deep.equal([
      `ns1 ip link set dev v0 alias ${MARK}`,
    ]);
  });

  it("someone else's pair (adopted, or of an older release): aliases are left alone", () => {
    const snap = matching();
    snap.namespaces[""].links[1].alias = "hostnet";
    snap.namespaces.ns1.links[0].alias = "theirs";
    expect(planAgainst(snap)).to.deep.equal([]);
  });

  it("an end without master keeps whatever master it has", () => {
    const p = desired();
    const plain = VethLinkProps.parse({
      ...p,
      a: { ...p.a, master: undefined, portFlags: undefined },
    });
    expect(
      planner.plan(plain, planner.observe(matching(), plain), { owner: OWNER }),
    ).to.deep.equal([]);
  });

  it("each end's ip step carries its exact inverse, in reverse order", () => {
    const snap = matching();
    const v0 = snap.namespaces.ns1.links[0];
    v0.mtu = 1500;
    v0.addresses = ["10.9.9.9/32"];
    snap.namespaces.ns1.routes.splice(1, 1);
    const [step] = planAgainst(snap);
    expect(linesOf([step])).to.deep.equal([
      "ns1 ip link set dev v0 mtu 1400",
      "ns1 ip addr del 10.9.9.9/32 dev v0",
      "ns1 ip addr add 10.0.0.2/24 dev v0",
      "ns1 ip route replace 10.1.0.0/16 via 10.0.0.1 dev v0",
    ]);
    expect(linesOf([{ op: step.undo! }])).to.deep.equal([
      "ns1 ip route del 10.1.0.0/16 via 10.0.0.1 dev v0",
      "ns1 ip addr del 10.0.0.2/24 dev v0",
      "ns1 ip addr add 10.9.9.9/32 dev v0",
      "ns1 ip link set dev v0 mtu 1500",
    ]);
  });
});

describe("VethLink guard: which steps may cut the management path", () => {
  const mp: ManagementPath = {
    peer: "198.18.2.1",
    dev: "mgmt0",
    peerRoute: "198.18.2.0/24",
    gateways: ["198.18.2.254"],
    addresses: ["198.18.2.11"],
  };
  const step = (netns: string | undefined, ...lines: string[]): Step => ({
    op: { kind: "batch", tool: "ip", netns, lines, what: "x" },
  });
  const cases: Array<[string, Step, ManagementPath | undefined, boolean]> = [
    [
      "a route to the peer",
      step(undefined, "route replace 198.18.2.1/32 dev h0"),
      mp,
      true,
    ],
    [
      "a wide route over the gateway",
      step(undefined, "route replace 198.18.0.0/16 dev h0"),
      mp,
      true,
    ],
    [
      "removing an address in the management subnet",
      step(undefined, "addr del 198.18.2.77/24 dev h0"),
      mp,
      true,
    ],
    [
      "anything on the management interface",
      step(undefined, "route del 10.0.0.0/8 dev mgmt0"),
      mp,
      true,
    ],
    [
      "a VM's /32 route",
      step(undefined, "route replace 10.0.0.5/32 dev h0"),
      mp,
      false,
    ],
    [
      "link settings only",
      step(undefined, "link set dev h0 mtu 1400"),
      mp,
      false,
    ],
    [
      "a route in a VM namespace",
      step("ns1", "route replace 198.18.2.1/32 dev v0"),
      mp,
      false,
    ],
    [
      "any route when the path is unknown",
      step(undefined, "route replace 10.0.0.5/32 dev h0"),
      undefined,
      true,
    ],
  ];
  for (const [what, s, path, expected] of cases) {
    it(`${what}: ${expected ? "commit-confirm" : "applied as usual"}`, () => {
      expect(mayCut(s, path)).to.equal(expected);
    });
  }
});
