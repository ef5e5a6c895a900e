// The TapPort planner (providers/kinds/tapPort/plan.ts): pure, no host.
import { expect } from "chai";
import {
  TapPortProps,
  tapPortPlanner as planner,
} from "../../providers/kinds/tapPort";
import type { Link } from "../../providers/state";
import { link, MARK, ns, OWNER, snapshot } from "../support/snapshotBuilder";

const desired = TapPortProps.parse({
  name: "tap1",
  netns: "vm1",
  owner: 1000,
  mtu: 1400,
  mac: "52:54:00:00:00:01",
  master: "br0",
  portFlags: { learning: false, flood: false },
});

const port = { learning: false, flood: false, hairpin: false };

function tap(more: Partial<Link> = {}): Link {
  return link("tap1", {
    kind: "tap",
    alias: MARK,
    mtu: 1400,
    mac: "52:54:00:00:00:01",
    master: "br0",
    port,
    tun: {
      type: "tap",
      owner: 1000,
      multiQueue: false,
      vnetHdr: true,
      persist: true,
    },
    ...more,
  });
}

const observe = (l: Link) =>
  planner.observe(
    snapshot({ "": ns([]), vm1: ns([link("br0", { kind: "bridge" }), l]) }),
    desired,
  );

describe("TapPort planner", () => {
  it("reads only the tap's namespace", () => {
    expect(planner.scope(desired)).to.deep.equal(["vm1"]);
    expect(planner.scope({ ...desired, netns: undefined })).to.deep.equal([]);
  });

  it("plans the full creation against nothing: tap, mark and settings in one step, then the port flags", () => {
    const steps = planner.plan(desired, undefined, { owner: OWNER });
    expect(steps).to.have.length(2);
    expect(steps[0].makes).to.equal(true);
    expect(steps[0].op).to.deep.include({
      tool: "ip",
      netns: "vm1",
      lines: [
        "tuntap add dev tap1 mode tap user 1000 vnet_hdr",
        `link set tap1 alias ${MARK} mtu 1400 address 52:54:00:00:00:01 master br0 up`,
      ],
    });
    expect(steps[0].undo).to.deep.include({ lines: ["link del tap1"] });
    expect(steps[1].op).to.deep.include({
      tool: "bridge",
      lines: ["link set dev tap1 learning off flood off"],
    });
  });

  it("observes nothing when no device has the name", () => {
    expect(
      planner.observe(snapshot({ "": ns([]), vm1: ns([]) }), desired),
    ).to.equal(undefined);
  });

  it("plans nothing when the host already matches", () => {
    expect(
      planner.plan(desired, observe(tap()), { owner: OWNER }),
    ).to.deep.equal([]);
  });

  it("fixes only the mtu that drifted", () => {
    const steps = planner.plan(desired, observe(tap({ mtu: 1500 })), {
      owner: OWNER,
    });
    expect(steps.map((s) => s.op)).to.deep.equal([
      {
        kind: "batch",
        tool: "ip",
        netns: "vm1",
        lines: ["link set tap1 mtu 1400"],
        what: "reconfigure tap tap1 in netns vm1",
      },
    ]);
  });

  it("a MAC read back in another case is not drift", () => {
    expect(
      planner.plan(
        desired,
        observe(tap({ mac: "52:54:00:00:00:01".toUpperCase() })),
        {},
      ),
    ).to.deep.equal([]);
  });

  it("fixes only the port flag that drifted", () => {
    const steps = planner.plan(
      desired,
      observe(tap({ port: { ...port, flood: true } })),
      {},
    );
    expect(steps).to.have.length(1);
    expect(steps[0].op).to.deep.include({
      tool: "bridge",
      lines: ["link set dev tap1 flood off"],
    });
  });

  it("re-attaching to the bridge sets every port flag again (a new port starts with the kernel's defaults)", () => {
    const steps = planner.plan(
      desired,
      observe(tap({ master: undefined, port: undefined })),
      {},
    );
    expect(steps[0].op).to.deep.include({
      lines: ["link set tap1 master br0"],
    });
    expect(steps[1].op).to.deep.include({
      lines: ["link set dev tap1 learning off flood off"],
    });
  });

  it("a tap set down by hand is brought up, nothing else", () => {
    const steps = planner.plan(desired, observe(tap({ adminUp: false })), {});
    expect(
      steps.map((s) => (s.op.kind === "batch" ? s.op.lines : [])),
    ).to.deep.equal([["link set tap1 up"]]);
  });

  it("its own leftover (marked, half-configured) converges without making anything", () => {
    const observed = observe(
      tap({ mtu: 1500, adminUp: false, master: undefined, port: undefined }),
    );
    expect(observed?.alias).to.equal(MARK);
    const steps = planner.plan(desired, observed, { owner: OWNER });
    expect(steps.some((s) => s.makes)).to.equal(false);
    expect(steps[0].op).to.deep.include({
      lines: ["link set tap1 mtu 1400 master br0 up"],
    });
  });
});
