// The HostBridge planner (providers/kinds/hostBridge/plan.ts): pure, no host. One planner for
// plain and commit-confirmed changes: each step carries the undo commit-confirm's revert is made of.
import { expect } from "chai";
import {
  confirmable,
  HostBridgeProps,
  hostBridgePlanner as planner,
} from "../../providers/kinds/hostBridge";
import type { Link, RouteRow } from "../../providers/state";
import type { Step } from "../../providers/kinds/plan";
import { link, MARK, ns, OWNER, snapshot } from "../support/snapshotBuilder";

const desired = HostBridgeProps.parse({ name: "br0", mtu: 9000, stp: false });
const lines = (steps: Step[]) =>
  steps.map((s) => (s.op.kind === "batch" ? s.op.lines : []));
const undos = (steps: Step[]) =>
  steps.map((s) => (s.undo?.kind === "batch" ? s.undo.lines : []));

function bridge(more: Partial<Link> = {}): Link {
  return link("br0", {
    kind: "bridge",
    alias: MARK,
    mtu: 9000,
    mac: "02:00:00:00:00:0b",
    bridge: { stp: false, forwardDelay: 1500, ageingTime: 30000 },
    ...more,
  });
}

const observe = (links: Link[], routes: RouteRow[] = []) =>
  planner.observe(snapshot({ "": ns(links, { routes }) }), desired);

describe("HostBridge planner", () => {
  it("plans the full creation against nothing, the mark in the step that makes the bridge", () => {
    const p = { ...desired, uplink: "eth1" };
    const steps = planner.plan(p, undefined, { owner: OWNER });
    expect(lines(steps)).to.deep.equal([
      [
        "link add br0 mtu 9000 type bridge stp_state 0",
        `link set br0 alias ${MARK}`,
        "link set br0 up",
      ],
      ["link set eth1 master br0"],
    ]);
    expect(steps.map((s) => !!s.makes)).to.deep.equal([true, false]);
    expect(undos(steps)).to.deep.equal([
      ["link del br0"],
      ["link set eth1 nomaster"],
    ]);
  });

  it("observes the namespace even without the bridge (creation sees the uplink), nothing without the namespace", () => {
    expect(observe([link("eth1")])?.bridge).to.equal(undefined);
    expect(
      planner.observe(snapshot({ "": ns([]) }), { ...desired, netns: "x" }),
    ).to.equal(undefined);
  });

  it("plans nothing when the host already matches", () => {
    expect(
      planner.plan(desired, observe([bridge()]), { owner: OWNER }),
    ).to.deep.equal([]);
  });

  it("fixes only the mtu that drifted, its undo restoring the old value", () => {
    const steps = planner.plan(desired, observe([bridge({ mtu: 1500 })]), {});
    expect(lines(steps)).to.deep.equal([["link set br0 mtu 9000"]]);
    expect(undos(steps)).to.deep.equal([["link set br0 mtu 1500"]]);
  });

  it("a bridge set down by hand is brought up, nothing else", () => {
    const steps = planner.plan(
      desired,
      observe([bridge({ adminUp: false })]),
      {},
    );
    expect(lines(steps)).to.deep.equal([["link set br0 up"]]);
    expect(undos(steps)).to.deep.equal([["link set br0 down"]]);
  });

  it("enslaves an uplink that is not a port yet, and releases the former one", () => {
    const p = { ...desired, uplink: "eth2" };
    const o = observe([
      bridge(),
      link("eth1", { master: "br0" }),
      link("eth2"),
    ]);
    const steps = planner.plan(p, o, { formerUplink: "eth1" });
    expect(lines(steps)).to.deep.equal([
      ["link set eth1 nomaster"],
      ["link set eth2 master br0"],
    ]);
    expect(undos(steps)).to.deep.equal([
      ["link set eth1 master br0"],
      ["link set eth2 nomaster"],
    ]);
  });

  it("its own leftover (marked, uplink already a port) needs no step that makes anything", () => {
    const p = { ...desired, uplink: "eth1" };
    const o = observe([bridge({ mtu: 1500 }), link("eth1", { master: "br0" })]);
    const steps = planner.plan(p, o, { owner: OWNER, formerUplink: "eth1" });
    expect(steps.some((s) => s.makes)).to.equal(false);
    expect(lines(steps)).to.deep.equal([["link set br0 mtu 9000"]]);
  });

  describe("on the management path (the uplink carries the SSH address)", () => {
    const mgmt = ["192.0.2.10"];
    const uplink = link("eth0", {
      mac: "52:54:00:aa:bb:cc",
      addresses: ["192.0.2.10/24"],
    });
    const route: RouteRow = {
      family: 4,
      dst: "0.0.0.0/0",
      type: "unicast",
      gateway: "192.0.2.1",
      dev: "eth0",
      protocol: "static",
    };
    const p = HostBridgeProps.parse({
      name: "br0",
      uplink: "eth0",
      safeApply: true,
    });

    it("creation takes the uplink's MAC and moves its address and routes onto the bridge; the undo moves them back", () => {
      const steps = planner.plan(p, observe([uplink], [route]), {
        owner: OWNER,
        management: mgmt,
      });
      expect(lines(steps)).to.deep.equal([
        [
          "link add br0 address 52:54:00:aa:bb:cc type bridge stp_state 0",
          `link set br0 alias ${MARK}`,
          "link set br0 up",
        ],
        [
          "link set eth0 master br0",
          "addr del 192.0.2.10/24 dev eth0",
          "addr replace 192.0.2.10/24 brd + dev br0",
          "route replace 0.0.0.0/0 via 192.0.2.1 dev br0 proto static",
        ],
      ]);
      expect(undos(steps)[1]).to.deep.equal([
        "link set eth0 nomaster",
        "addr del 192.0.2.10/24 dev br0",
        "addr replace 192.0.2.10/24 brd + dev eth0",
        "route replace 0.0.0.0/0 via 192.0.2.1 dev eth0 proto static",
      ]);
    });

    it("the same creation without management addresses is the plain one (what boot restore renders)", () => {
      const steps = planner.plan(p, observe([uplink], [route]), {
        owner: OWNER,
      });
      expect(lines(steps)[1]).to.deep.equal(["link set eth0 master br0"]);
      expect(lines(steps)[0][0]).to.equal(
        "link add br0 type bridge stp_state 0",
      );
    });

    it("setting a bridge that carries the address down: the undo brings the routes through it back", () => {
      const onBridge = bridge({ mtu: 1500, addresses: ["192.0.2.10/24"] });
      const o = observe(
        [onBridge, link("eth0", { master: "br0" })],
        [{ ...route, dev: "br0" }],
      );
      const steps = planner.plan({ ...p, up: false }, o, {
        management: mgmt,
        formerUplink: "eth0",
      });
      expect(lines(steps)).to.deep.equal([["link set br0 down"]]);
      expect(undos(steps)).to.deep.equal([
        [
          "link set br0 up",
          "route replace 0.0.0.0/0 via 192.0.2.1 dev br0 proto static",
        ],
      ]);
    });
  });
});

describe("HostBridge plan under commit-confirm", () => {
  it("applies the steps in order and reverts with their undos in reverse, the routes through the bridge last", () => {
    const mgmt = ["192.0.2.10"];
    const p = HostBridgeProps.parse({
      name: "br0",
      uplink: "eth0",
      mtu: 9000,
      safeApply: true,
    });
    const o = planner.observe(
      snapshot({
        "": ns(
          [
            link("br0", {
              kind: "bridge",
              mtu: 1500,
              mac: "02:00:00:00:00:0b",
              alias: MARK,
            }),
            link("eth0", {
              mac: "52:54:00:aa:bb:cc",
              addresses: ["192.0.2.10/24"],
            }),
          ],
          {
            routes: [
              {
                family: 4,
                dst: "198.51.100.0/24",
                type: "unicast",
                gateway: "192.0.2.1",
                dev: "br0",
              },
            ],
          },
        ),
      }),
      p,
    );
    const plan = confirmable(planner.plan(p, o, { management: mgmt }));
    expect(plan.apply.map((t) => t.join(" "))).to.deep.equal([
      "link set br0 mtu 9000",
      "link set br0 address 52:54:00:aa:bb:cc",
      "link set eth0 master br0",
      "addr del 192.0.2.10/24 dev eth0",
      "addr replace 192.0.2.10/24 brd + dev br0",
    ]);
    expect(plan.revert.map((t) => t.join(" "))).to.deep.equal([
      "link set eth0 nomaster",
      "addr del 192.0.2.10/24 dev br0",
      "addr replace 192.0.2.10/24 brd + dev eth0",
      "link set br0 address 02:00:00:00:00:0b",
      "link set br0 mtu 1500",
      "route replace 198.51.100.0/24 via 192.0.2.1 dev br0",
    ]);
  });
});
