// MacvlanPort's planner, pure: the whole creation against nothing, nothing against a matching
// port, only the drifted property against a drifted one.
import { expect } from "chai";
import type { HostSnapshot, Link } from "../../providers/state";
import { ownerMark } from "../../providers/state";
import {
  MacvlanPortProps,
  macvlanPortPlanner as planner,
} from "../../providers/kinds/macvlanPort";
import type { Step } from "../../providers/kinds/plan";
import { namespaceOf } from "../support/snapshotBuilder";

const OWNER = "0123abcd-0123456789";
const MARK = ownerMark(OWNER);

const desired = (over: Record<string, unknown> = {}): MacvlanPortProps =>
  MacvlanPortProps.parse({
    name: "mv0",
    lower: "eth1",
    netns: "vm1",
    mode: "source",
    sourceMacs: ["52:54:00:00:00:02", "52:54:00:00:00:01"],
    mtu: 1400,
    addresses: ["10.0.0.2/24"],
    ...over,
  });

/** The host after a complete create of desired(). */
function matching(): HostSnapshot {
  const port: Link = {
    name: "mv0",
    index: 7,
    kind: "macvlan",
    infoKind: "macvlan",
    mtu: 1400,
    mac: "52:54:00:aa:bb:cc",
    operUp: true,
    adminUp: true,
    alias: MARK,
    peerIndex: 2,
    peerNetnsId: 0,
    macvlan: {
      mode: "source",
      macs: ["52:54:00:00:00:01", "52:54:00:00:00:02"],
    },
    addresses: ["10.0.0.2/24", "fe80::5054:ff:feaa:bbcc/64"],
  };
  const eth1: Link = {
    name: "eth1",
    index: 2,
    kind: "other" as Link["kind"],
    mtu: 1500,
    operUp: true,
    adminUp: true,
    addresses: [],
  };
  return {
    machineId: "m",
    hostname: "h",
    absent: [],
    namespaces: { "": namespaceOf([eth1]), vm1: namespaceOf([port]) },
  };
}

const linesOf = (steps: Step[]): string[] =>
  steps.flatMap((s) =>
    s.op.kind === "batch"
      ? s.op.lines.map((l) => `${s.op.netns ?? "-"} ${l}`)
      : [],
  );

function planAgainst(snap: HostSnapshot, p = desired()): Step[] {
  return planner.plan(p, planner.observe(snap, p), { owner: OWNER });
}

describe("MacvlanPort planner", () => {
  it("scope: where the lower lives and where the port goes", () => {
    expect(planner.scope(desired({ lowerNetns: "up0" }))).to.deep.equal([
      "up0",
      "vm1",
    ]);
  });

  it("against nothing: make in the target namespace in one undoable step, then mark and configure there", () => {
    const steps = planner.plan(desired(), undefined, { owner: OWNER });
    expect(steps.map((s) => s.makes ?? false)).to.deep.equal([true, false]);
    expect(steps[0].undo).to.deep.include({
      netns: "vm1",
      lines: ["link del mv0"],
    });
    expect(linesOf(steps)).to.deep.equal([
      "- link add link eth1 name mv0 netns vm1 type macvlan mode source macaddr set 52:54:00:00:00:02 52:54:00:00:00:01",
      `vm1 link set mv0 alias ${MARK}`,
      "vm1 link set mv0 mtu 1400",
      "vm1 addr replace 10.0.0.2/24 dev mv0",
      "vm1 link set mv0 up",
    ]);
  });

  it("a port that stays beside its lower and stays down: no move, no up", () => {
    const p = desired({ netns: undefined, up: false, addresses: [] });
    expect(linesOf(planner.plan(p, undefined, {}))).to.deep.equal([
      "- link add link eth1 name mv0 type macvlan mode source macaddr set 52:54:00:00:00:02 52:54:00:00:00:01",
      "- link set mv0 alias hostnet",
      "- link set mv0 mtu 1400",
    ]);
  });

  it("the declared lower at the kernel's index wins over a link elsewhere whose indexes cross the port's", () => {
    const snap = matching();
    // What the snapshot's veth pairing makes of the lab stack: another namespace holds a link at
    // the lower's index whose own peer index is the port's, so the port's peer was resolved to it.
    const port = snap.namespaces.vm1.links[0];
    port.peerNetns = "vm-other";
    port.peerName = "tap0";
    expect(planner.observe(snap, desired())?.lower).to.deep.equal({
      lower: "eth1",
      lowerNetns: undefined,
    });
    expect(planAgainst(snap)).to.deep.equal([]);
  });

  it("against a matching port: no steps (source order and kernel fe80:: are not drift)", () => {
    expect(planAgainst(matching())).to.deep.equal([]);
  });

  it("read is derived from observe: the live props equal the desired ones", () => {
    const p = desired();
    const o = planner.observe(matching(), p)!;
    expect(o.lower).to.deep.equal({ lower: "eth1", lowerNetns: undefined });
    expect(o.addresses).to.deep.equal(["10.0.0.2/24"]);
  });

  const drifts: Array<[string, (l: Link) => void, string[]]> = [
    [
      "mode",
      (l) => (l.macvlan = { mode: "bridge" }),
      [
        "vm1 link set mv0 type macvlan mode source macaddr set 52:54:00:00:00:02 52:54:00:00:00:01",
      ],
    ],
    [
      "a source MAC dropped",
      (l) => (l.macvlan!.macs = ["52:54:00:00:00:01"]),
      [
        "vm1 link set mv0 type macvlan mode source macaddr set 52:54:00:00:00:02 52:54:00:00:00:01",
      ],
    ],
    ["MTU", (l) => (l.mtu = 1500), ["vm1 link set mv0 mtu 1400"]],
    [
      "a stranger address",
      (l) => l.addresses.push("10.9.9.9/32"),
      ["vm1 addr del 10.9.9.9/32 dev mv0"],
    ],
    [
      "addresses flushed",
      (l) => (l.addresses = []),
      ["vm1 addr add 10.0.0.2/24 dev mv0"],
    ],
    ["set down", (l) => (l.adminUp = false), ["vm1 link set mv0 up"]],
  ];
  for (const [what, drift, expected] of drifts) {
    it(`drift (${what}): only that is fixed`, () => {
      const snap = matching();
      drift(snap.namespaces.vm1.links[0]);
      expect(linesOf(planAgainst(snap))).to.deep.equal(expected);
    });
  }

  it("a MAC asked for and changed live is set back", () => {
    const p = desired({ mac: "52:54:00:aa:bb:dd" });
    expect(linesOf(planAgainst(matching(), p))).to.deep.equal([
      "vm1 link set mv0 address 52:54:00:aa:bb:dd",
    ]);
  });
});
