// VxlanDevice's planner, pure: creation from nothing, nothing to do when the host matches, only the
// drifted property fixed, an own leftover converged.
import { expect } from "chai";
import {
  VxlanDeviceProps,
  vxlanDevicePlanner as planner,
} from "../../providers/kinds/vxlanDevice";
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
});
