// The VmNetns planner (providers/kinds/vmNetns/plan.ts): pure, no host.
import { expect } from "chai";
import {
  VmNetnsProps,
  vmNetnsPlanner as planner,
} from "../../providers/kinds/vmNetns";
import { link, MARK, ns, OWNER, snapshot } from "../support/snapshotBuilder";

const desired = VmNetnsProps.parse({
  name: "vm1",
  sysctls: {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.disable_ipv6": "1",
  },
});

const host = (
  lo: { up?: boolean; alias?: string },
  sysctls: Record<string, string>,
) =>
  snapshot({
    "": ns([]),
    vm1: ns(
      [
        link("lo", {
          kind: "loopback",
          adminUp: lo.up ?? true,
          alias: lo.alias,
        }),
      ],
      {
        sysctls,
      },
    ),
  });

const asWanted = {
  "net.ipv4.ip_forward": "1",
  "net.ipv6.conf.all.disable_ipv6": "1",
};

describe("VmNetns planner", () => {
  it("reads only the namespace it names", () => {
    expect(planner.scope(desired)).to.deep.equal(["vm1"]);
  });

  it("plans the full creation against nothing, the mark in the step that makes the namespace", () => {
    const steps = planner.plan(desired, undefined, { owner: OWNER });
    expect(steps.map((s) => s.op.kind)).to.deep.equal(["sh", "batch", "sh"]);
    const [make, lo, sysctls] = steps;
    expect(make.makes).to.equal(true);
    expect(make.op).to.deep.include({
      commands: [
        ["ip", "netns", "add", "vm1"],
        ["ip", "-n", "vm1", "link", "set", "lo", "alias", MARK],
      ],
    });
    expect(make.undo).to.deep.include({ lines: ["netns del vm1"] });
    expect(lo.op).to.deep.include({ netns: "vm1", lines: ["link set lo up"] });
    expect(sysctls.op).to.deep.include({
      netns: "vm1",
      commands: [
        ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
        ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
      ],
    });
  });

  it("without an owner token marks with the plain legacy mark", () => {
    const [make] = planner.plan(desired, undefined, {});
    expect(JSON.stringify(make.op)).to.contain('"alias","hostnet"]');
  });

  it("observes nothing when the namespace is absent", () => {
    expect(planner.observe(snapshot({ "": ns([]) }), desired)).to.equal(
      undefined,
    );
  });

  it("plans nothing when the host already matches", () => {
    const observed = planner.observe(host({ alias: MARK }, asWanted), desired);
    expect(planner.plan(desired, observed, { owner: OWNER })).to.deep.equal([]);
  });

  it("fixes only the sysctl that drifted", () => {
    const observed = planner.observe(
      host({ alias: MARK }, { ...asWanted, "net.ipv4.ip_forward": "0" }),
      desired,
    );
    const steps = planner.plan(desired, observed, { owner: OWNER });
    expect(steps).to.have.length(1);
    expect(steps[0].op).to.deep.include({
      commands: [["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]],
    });
  });

  it("fixes only a loopback that was set down", () => {
    const observed = planner.observe(
      host({ up: false, alias: MARK }, asWanted),
      desired,
    );
    const steps = planner.plan(desired, observed, { owner: OWNER });
    expect(steps.map((s) => s.op)).to.deep.equal([
      {
        kind: "batch",
        tool: "ip",
        netns: "vm1",
        lines: ["link set lo up"],
        what: "set up loopback of netns vm1",
      },
    ]);
  });

  it("sees its own leftover by the mark, and converges it without making anything", () => {
    const observed = planner.observe(
      host({ up: false, alias: MARK }, {}),
      desired,
    );
    expect(observed?.mark).to.equal(MARK);
    const steps = planner.plan(desired, observed, { owner: OWNER });
    expect(steps.some((s) => s.makes)).to.equal(false);
    expect(steps.map((s) => s.op.kind)).to.deep.equal(["batch", "sh"]);
  });
});
