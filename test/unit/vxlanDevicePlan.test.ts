// VxlanDevice's planner, pure: creation from nothing, nothing to do when the host matches, only the
// drifted property fixed, an own leftover converged.
import { expect } from "chai";
import {
  VxlanDeviceProps,
  vxlanDevicePlanner as planner,
} from "../../providers/kinds/vxlanDevice";
import { floodToProblems } from "../../providers/kinds/vxlanDevice/schema";
import { liveProps } from "../../providers/kinds/vxlanDevice/plan";
import { ownerMark, ownerToken } from "../../providers/state";
import type { Link } from "../../providers/state";
import { linkOf as link, snapshotWith } from "../support/snapshotBuilder";

const owner = ownerToken("hostnet", "unit", "VxlanDevice", "vx");
const desired = VxlanDeviceProps.parse({
  name: "vx0",
  vni: 7001,
  local: "192.0.2.10",
  bridge: "br0",
  mtu: 1400,
});

/** The device exactly as desired, with this resource's mark. */
function device(over: Partial<Link> = {}): Link {
  return link({
    name: "vx0",
    kind: "vxlan",
    mtu: 1400,
    master: "br0",
    alias: ownerMark(owner),
    vxlan: { vni: 7001, local: "192.0.2.10", port: 4789, learning: false },
    port: {
      learning: false,
      flood: false,
      hairpin: false,
      neighSuppress: true,
    },
    ...over,
  });
}

function planAgainst(dev: Link | undefined) {
  const snap = snapshotWith({
    "": {
      links: [link({ name: "br0", kind: "bridge" }), ...(dev ? [dev] : [])],
    },
  });
  return planner.plan(desired, planner.observe(snap, desired), { owner });
}

const lines = (steps: ReturnType<typeof planAgainst>) =>
  steps.map((s) => (s.op.kind === "batch" ? s.op.lines : []));

describe("VxlanDevice planner", () => {
  it("plans the whole device from nothing, marked in the step that makes it", () => {
    const steps = planner.plan(desired, undefined, { owner });
    expect(lines(steps)).to.deep.equal([
      [
        "link add vx0 type vxlan id 7001 local 192.0.2.10 dstport 4789 nolearning",
        `link set vx0 alias ${ownerMark(owner)} master br0 mtu 1400 up`,
      ],
      ["link set dev vx0 learning off flood off neigh_suppress on"],
    ]);
    expect(steps[0].makes).to.equal(true);
    expect(steps[0].undo).to.deep.include({ lines: ["link del vx0"] });
    expect(steps[1].makes).to.equal(undefined);
  });

  it("without an owner (the boot restore script) it marks with the plain mark", () => {
    const [make] = planner.plan(desired, undefined, {});
    expect((make.op as { lines: string[] }).lines[1]).to.match(
      /^link set vx0 alias hostnet master/,
    );
  });

  it("plans nothing when the device is as desired", () => {
    expect(planAgainst(device())).to.deep.equal([]);
  });

  it("fixes only learning when learning was turned on", () => {
    const dev = device({
      vxlan: { vni: 7001, local: "192.0.2.10", port: 4789, learning: true },
    });
    expect(lines(planAgainst(dev))).to.deep.equal([
      ["link set vx0 type vxlan nolearning"],
    ]);
  });

  it("fixes only the flipped port flag", () => {
    const dev = device({
      port: {
        learning: false,
        flood: false,
        hairpin: false,
        neighSuppress: false,
      },
    });
    expect(lines(planAgainst(dev))).to.deep.equal([
      ["link set dev vx0 neigh_suppress on"],
    ]);
  });

  it("puts a device back on its bridge with all its port flags (joining resets them)", () => {
    const dev = device({ master: undefined, port: undefined, adminUp: false });
    expect(lines(planAgainst(dev))).to.deep.equal([
      ["link set vx0 master br0 up"],
      ["link set dev vx0 learning off flood off neigh_suppress on"],
    ]);
  });

  it("converges an own leftover with another mtu and local address in place", () => {
    const dev = device({
      mtu: 1500,
      vxlan: { vni: 7001, local: "192.0.2.99", port: 4789, learning: false },
    });
    expect(lines(planAgainst(dev))).to.deep.equal([
      ["link set vx0 type vxlan local 192.0.2.10", "link set vx0 mtu 1400"],
    ]);
  });

  it("makes a leftover with another VNI again (the kernel cannot change it in place)", () => {
    const dev = device({
      vxlan: { vni: 9, local: "192.0.2.10", port: 4789, learning: false },
    });
    const steps = planAgainst(dev);
    expect(lines(steps)[0]).to.deep.equal(["link del vx0"]);
    expect(lines(steps)[1][0]).to.match(/^link add vx0 type vxlan id 7001 /);
  });

  it("observes only a vxlan device of that name", () => {
    const snap = snapshotWith({
      "": { links: [link({ name: "vx0", kind: "dummy" })] },
    });
    expect(planner.observe(snap, desired)).to.equal(undefined);
    expect(planner.scope({ ...desired, netns: "vm1" })).to.deep.equal(["vm1"]);
  });

  describe("flood list (head-end replication)", () => {
    const flooding = VxlanDeviceProps.parse({
      ...desired,
      floodTo: ["192.0.2.20", "192.0.2.30"],
    });
    /** The all-zeros entries of vx0 towards `dsts`, as `bridge -j fdb` shows them. */
    const floodRows = (...dsts: string[]) =>
      dsts.map((dst) => ({
        mac: "00:00:00:00:00:00",
        dev: "vx0",
        state: "permanent",
        flags: ["self"],
        dst,
      }));
    const observed = (...dsts: string[]) =>
      planner.observe(
        snapshotWith({
          "": {
            links: [link({ name: "br0", kind: "bridge" }), device()],
            fdb: floodRows(...dsts),
          },
        }),
        flooding,
      );

    it("makes one all-zeros entry per address after the device and its port flags", () => {
      const steps = planner.plan(flooding, undefined, { owner });
      expect(lines(steps)[2]).to.deep.equal([
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.20 self permanent",
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.30 self permanent",
      ]);
      expect(steps[2].op).to.deep.include({ tool: "bridge" });
    });

    it("adds only the missing destination and removes a stranger one, in one batch", () => {
      const live = observed("192.0.2.99", "192.0.2.30");
      expect(live?.floodTo).to.deep.equal(["192.0.2.30", "192.0.2.99"]);
      expect(lines(planner.plan(flooding, live, { owner }))).to.deep.equal([
        [
          "fdb del 00:00:00:00:00:00 dev vx0 dst 192.0.2.99 self",
          "fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.20 self permanent",
        ],
      ]);
    });

    it("reads the list as a set: the same addresses in another order are no change", () => {
      const live = observed("192.0.2.30", "192.0.2.20")!;
      expect(planner.plan(flooding, live, { owner })).to.deep.equal([]);
      expect(liveProps(live, flooding).floodTo).to.deep.equal(flooding.floodTo);
    });

    it("without a flood list, an entry added by hand is drift and is removed", () => {
      const live = planner.observe(
        snapshotWith({
          "": {
            links: [link({ name: "br0", kind: "bridge" }), device()],
            fdb: floodRows("192.0.2.20"),
          },
        }),
        desired,
      )!;
      expect(liveProps(live, desired).floodTo).to.deep.equal(["192.0.2.20"]);
      expect(lines(planner.plan(desired, live, { owner }))).to.deep.equal([
        ["fdb del 00:00:00:00:00:00 dev vx0 dst 192.0.2.20 self"],
      ]);
      expect(
        liveProps(
          { ...device(), floodTo: [] } as NonNullable<typeof live>,
          desired,
        ).floodTo,
      ).to.equal(undefined);
    });

    it("refuses its own local address and an address listed twice, naming the entry", () => {
      expect(
        floodToProblems(
          VxlanDeviceProps.parse({
            ...desired,
            floodTo: ["192.0.2.10", "192.0.2.20", "192.0.2.20"],
          }),
        ),
      ).to.deep.equal([
        [
          "floodTo[0]",
          "192.0.2.10 is this device's own local address; list only other hosts' underlay addresses",
        ],
        ["floodTo[2]", "192.0.2.20 is already listed at floodTo[1]"],
      ]);
      expect(() =>
        VxlanDeviceProps.parse({ ...desired, floodTo: ["192.0.2.300"] }),
      ).to.throw(/IPv4/);
    });
  });
});
