// FdbEntry's planner, pure: creation from nothing, nothing to do when the namespace matches, only
// the drifted part fixed (port, underlay destination, neighbours, strangers), leftovers converged.
import { expect } from "chai";
import {
  FdbEntryProps,
  fdbEntryPlanner as planner,
} from "../../providers/kinds/fdbEntry";
import { removal } from "../../providers/kinds/fdbEntry/plan";
import type { FdbRow, NamespaceState } from "../../providers/state";
import type { Step } from "../../providers/kinds/plan";
import { linkOf as link, snapshotWith } from "../support/snapshotBuilder";

const MAC = "02:00:00:00:00:01";
const local = FdbEntryProps.parse({
  bridge: "br0",
  port: "tap1",
  mac: MAC,
  neighbours: ["192.0.2.1"],
  exclusive: true,
});
const remote = FdbEntryProps.parse({
  bridge: "br0",
  port: "vx0",
  mac: MAC,
  neighbours: ["192.0.2.1"],
  remote: { dst: "198.51.100.7" },
});

const row = (over: Partial<FdbRow> = {}): FdbRow => ({
  mac: MAC,
  dev: "tap1",
  master: "br0",
  state: "static",
  flags: [],
  ...over,
});
const selfRow = (dst: string, dev = "vx0"): FdbRow => ({
  mac: MAC,
  dev,
  state: "static",
  flags: ["self"],
  dst,
});
const neigh = (dst: string) => ({ dst, dev: "br0", lladdr: MAC });

/** The namespace: the bridge, its ports, and whatever the test adds. */
function planAgainst(p: FdbEntryProps, ns: Partial<NamespaceState>): Step[] {
  const snap = snapshotWith({
    "": {
      links: [
        link({ name: "br0", kind: "bridge" }),
        link({
          name: "tap1",
          kind: "tap",
          master: "br0",
          mac: "fe:00:00:00:00:01",
        }),
        link({ name: "tap2", kind: "tap", master: "br0" }),
        link({ name: "vx0", kind: "vxlan", master: "br0", vxlan: { vni: 42 } }),
      ],
      ...ns,
    },
  });
  return planner.plan(p, planner.observe(snap, p), {});
}

const lines = (steps: Step[]) =>
  steps.map((s) => (s.op.kind === "batch" ? s.op.lines : []));

describe("FdbEntry planner", () => {
  it("plans the entry, its underlay destination and its neighbours from nothing", () => {
    const steps = planner.plan(remote, undefined, {});
    expect(lines(steps)).to.deep.equal([
      [`fdb add ${MAC} dev vx0 master static`],
      [`fdb replace ${MAC} dev vx0 self dst 198.51.100.7 static`],
      [`neigh replace 192.0.2.1 lladdr ${MAC} dev br0 nud permanent`],
    ]);
    expect(steps.map((s) => s.makes)).to.deep.equal([
      true,
      undefined,
      undefined,
    ]);
    expect(
      steps.map((s) => s.undo && (s.undo as { lines: string[] }).lines),
    ).to.deep.equal([
      [`fdb del ${MAC} dev vx0 master`],
      [`fdb del ${MAC} dev vx0 self`],
      ["neigh del 192.0.2.1 dev br0"],
    ]);
  });

  it("plans nothing when the namespace holds exactly the entry", () => {
    expect(
      planAgainst(local, { fdb: [row()], neigh: [neigh("192.0.2.1")] }),
    ).to.deep.equal([]);
    expect(
      planAgainst(remote, {
        fdb: [row({ dev: "vx0" }), selfRow("198.51.100.7")],
        neigh: [neigh("192.0.2.1")],
      }),
    ).to.deep.equal([]);
  });

  it("moves an entry pointed at another port, and nothing else", () => {
    const steps = planAgainst(local, {
      fdb: [row({ dev: "tap2" })],
      neigh: [neigh("192.0.2.1")],
    });
    expect(lines(steps)).to.deep.equal([
      [`fdb replace ${MAC} dev tap1 master static`],
    ]);
    expect(steps[0].undo).to.deep.include({
      lines: [`fdb replace ${MAC} dev tap2 master static`],
    });
  });

  it("takes over a learned entry with replace, not add", () => {
    const steps = planAgainst(local, {
      fdb: [row({ state: "reachable" })],
      neigh: [neigh("192.0.2.1")],
    });
    expect(lines(steps)).to.deep.equal([
      [`fdb replace ${MAC} dev tap1 master static`],
    ]);
  });

  it("fixes a changed underlay destination and drops one left on another port", () => {
    const steps = planAgainst(remote, {
      fdb: [
        row({ dev: "vx0" }),
        selfRow("198.51.100.9"),
        selfRow("198.51.100.7", "tap2"),
      ],
      neigh: [neigh("192.0.2.1")],
    });
    expect(lines(steps)).to.deep.equal([
      [`fdb del ${MAC} dev tap2 self`],
      [`fdb replace ${MAC} dev vx0 self dst 198.51.100.7 static`],
    ]);
  });

  it("compares the VNI only when one is set (else the device's own counts)", () => {
    const withVni = { ...remote, remote: { dst: "198.51.100.7", vni: 43 } };
    const ns = {
      fdb: [row({ dev: "vx0" }), selfRow("198.51.100.7")],
      neigh: [neigh("192.0.2.1")],
    };
    expect(planAgainst(remote, ns)).to.deep.equal([]);
    expect(lines(planAgainst(withVni, ns))).to.deep.equal([
      [`fdb replace ${MAC} dev vx0 self dst 198.51.100.7 vni 43 static`],
    ]);
  });

  it("publishes a lost neighbour and removes one that is no longer listed", () => {
    const steps = planAgainst(local, {
      fdb: [row()],
      neigh: [neigh("192.0.2.9")],
    });
    expect(lines(steps)).to.deep.equal([
      [
        `neigh replace 192.0.2.1 lladdr ${MAC} dev br0 nud permanent`,
        "neigh del 192.0.2.9 dev br0",
      ],
    ]);
  });

  it("removes strangers on an exclusive port, but not the port's own permanent entry", () => {
    const ns = {
      fdb: [
        row(),
        row({ mac: "02:00:00:00:00:99" }),
        row({ mac: "fe:00:00:00:00:01", state: "permanent" }),
      ],
      neigh: [neigh("192.0.2.1")],
    };
    expect(lines(planAgainst(local, ns))).to.deep.equal([
      ["fdb del 02:00:00:00:00:99 dev tap1 master"],
    ]);
    expect(planAgainst({ ...local, exclusive: undefined }, ns)).to.deep.equal(
      [],
    );
  });

  it("converges an own leftover that has the entry but not its neighbours", () => {
    expect(lines(planAgainst(local, { fdb: [row()] }))).to.deep.equal([
      [`neigh replace 192.0.2.1 lladdr ${MAC} dev br0 nud permanent`],
    ]);
  });

  it("removes only what is ours: a static entry and the listed neighbours", () => {
    const snap = snapshotWith({
      "": {
        links: [link({ name: "vx0", kind: "vxlan", master: "br0" })],
        fdb: [row({ dev: "vx0" }), selfRow("198.51.100.7")],
        neigh: [neigh("192.0.2.1"), neigh("192.0.2.5")],
      },
    });
    expect(lines(removal(remote, planner.observe(snap, remote)))).to.deep.equal(
      [
        [`fdb del ${MAC} dev vx0 self`],
        ["neigh del 192.0.2.1 dev br0"],
        [`fdb del ${MAC} dev vx0 master`],
      ],
    );
    const permanent = snapshotWith({
      "": { fdb: [row({ state: "permanent" })] },
    });
    expect(removal(local, planner.observe(permanent, local))).to.deep.equal([]);
  });

  it("observes nothing in a namespace without any trace of the entry", () => {
    expect(planner.observe(snapshotWith({ "": {} }), local)).to.equal(
      undefined,
    );
    expect(
      planner.observe(snapshotWith({}), { ...local, netns: "vm1" }),
    ).to.equal(undefined);
  });
});
