// Dual-stack VMs (issue 14 item 2), pure: which IPv6 addresses a VM may have (each refusal names
// its field), duplicates across VMs, the props a VM's resources get with and without IPv6 (without:
// exactly those of old, so an upgrade shows no diff), `nodad` in the VethLink/MacvlanPort plans, and
// the ARP/ND-suppression neighbours (managed fdb, segments) with IPv6 compared as addresses.
import { expect } from "chai";
import { parseStackConfig, StackConfigError } from "../../stacks/config";
import {
  filterAddresses,
  guestAddressing,
  l3NamespaceSysctls,
  VmSpec,
} from "../../components/spec";
import type { HostPlan } from "../../components/hostPlan";
import { managedFdbEntry } from "../../components/managedFdb";
import { simulatedPings } from "../../components/hostTopology";
import { HealthChecks } from "../../providers/kinds/hostHealth";
import { memberNeighbours, segmentsForHost } from "../../components/segment";
import { FdbEntryProps, fdbEntryPlanner } from "../../providers/kinds/fdbEntry";
import { liveProps } from "../../providers/kinds/fdbEntry/plan";
import {
  validate as validateVeth,
  VethLinkProps,
  vethLinkPlanner,
} from "../../providers/kinds/vethLink";
import {
  MacvlanPortProps,
  macvlanPortPlanner,
} from "../../providers/kinds/macvlanPort";
import type { Step } from "../../providers/kinds/plan";
import { forceForwardingKnown } from "../../providers/kinds/vethLink/observe";
import { ROOT_NS } from "../../providers/state";
import { linkOf, namespaceOf, snapshotWith } from "../support/snapshotBuilder";

const host = { name: "h1", address: "198.18.1.10" };
const vm = (
  name: string,
  mac: string,
  ipv6: string[],
  attachment = "bridged",
) => ({
  name,
  host: "h1",
  mac,
  ipv4: [`198.19.10.${mac.slice(-1)}/24`],
  ipv6,
  attachment,
  bridge: "br0",
});

function problems(vms: Record<string, unknown>[]): string[] {
  try {
    parseStackConfig({ hosts: [host], bridges: [{ name: "br0" }], vms });
  } catch (err) {
    expect(err).to.be.instanceOf(StackConfigError);
    return (err as StackConfigError).problems;
  }
  return [];
}

const REFUSED: Array<[string, RegExp]> = [
  ["::/64", /unspecified/],
  ["::1/128", /loopback/],
  ["ff02::1/64", /multicast/],
  ["fe80::11/64", /link-local/],
  ["2001:db8:10::/64", /subnet-router anycast/],
  ["2001:db8:10::11/0", /prefix length 0/],
  ["::ffff:198.19.10.1/120", /IPv4-mapped/],
  ["2001:db8:10::11", /address\/prefix/],
  ["2001:db8:10::11/129", /prefix length/],
  ["fe80::1%eth0/64", /zone id/],
  ["198.19.10.11/24", /IPv6/],
];

describe("dual-stack VMs: VmSpec.ipv6", () => {
  for (const [bad, why] of REFUSED) {
    it(`refuses ${bad}, naming vms[0].ipv6[1]`, () => {
      const got = problems([
        vm("a", "52:54:00:00:00:01", ["2001:db8:10::11/64", bad]),
      ]);
      expect(got, got.join("\n")).to.have.length(1);
      expect(got[0])
        .to.match(/^vms\[0\]\.ipv6\[1\]: /)
        .and.to.match(why);
    });
  }

  for (const ok of ["2001:db8:10::11/64", "fd00::1/128", "2001:db8::/127"]) {
    it(`accepts ${ok}`, () => {
      expect(problems([vm("a", "52:54:00:00:00:01", [ok])])).to.deep.equal([]);
    });
  }

  it("defaults to no IPv6 and canonicalizes what it gets", () => {
    const base = vm("a", "52:54:00:00:00:01", []);
    const { ipv6: _, ...noV6 } = base;
    expect(VmSpec.parse(noV6).ipv6).to.deep.equal([]);
    expect(
      VmSpec.parse({ ...base, ipv6: ["2001:DB8:10:0:0:0:0:11/64"] }).ipv6,
    ).to.deep.equal(["2001:db8:10::11/64"]);
  });

  it("refuses an IPv6 address two VMs share, however it is spelled", () => {
    const got = problems([
      vm("a", "52:54:00:00:00:01", ["2001:db8:10::11/64"]),
      vm("b", "52:54:00:00:00:02", ["2001:DB8:10:0::11/64"]),
    ]);
    expect(got).to.deep.equal([
      "vms[1].ipv6[0]: 2001:db8:10::11 is already used by vms[0]",
    ]);
  });

  it("accepts IPv6 on a routed VM", () => {
    expect(
      problems([
        vm("r", "52:54:00:00:00:03", ["2001:db8:10::13/64"], "routed"),
      ]),
    ).to.deep.equal([]);
  });
});

describe("dual-stack VMs: the props a VM's resources get", () => {
  const v4 = VmSpec.parse(vm("a", "52:54:00:00:00:01", []));
  const v6 = VmSpec.parse(vm("b", "52:54:00:00:00:02", ["2001:db8:10::12/64"]));

  it("a VM without IPv6 gets exactly the props of old (no diff on upgrade)", () => {
    expect(l3NamespaceSysctls(v4)).to.deep.equal({
      "net.ipv6.conf.all.disable_ipv6": "1",
    });
    expect(guestAddressing(v4)).to.deep.equal({
      addresses: ["198.19.10.1/24"],
    });
    expect(filterAddresses(v4)).to.deep.equal({ ipv4: ["198.19.10.1"] });
  });

  it("a dual-stack VM gets IPv6 enabled, its addresses with nodad, and its filter told", () => {
    expect(l3NamespaceSysctls(v6)).to.deep.equal({
      "net.ipv6.conf.all.disable_ipv6": "0",
      "net.ipv6.conf.default.disable_ipv6": "0",
    });
    expect(guestAddressing(v6)).to.deep.equal({
      addresses: ["198.19.10.2/24", "2001:db8:10::12/64"],
      nodad: true,
    });
    expect(filterAddresses(v6)).to.deep.equal({
      ipv4: ["198.19.10.2"],
      ipv6: ["2001:db8:10::12"],
      allowIpv6: true,
    });
  });
});

const batchLines = (steps: Step[]): string[] =>
  steps.flatMap((s) => (s.op.kind === "batch" ? s.op.lines : []));

describe("dual-stack VMs: nodad in the planners", () => {
  const addrs = ["198.19.10.2/24", "2001:db8:10::12/64"];

  it("VethLink adds an end's IPv6 addresses with nodad when asked, IPv4 as ever", () => {
    const p = (nodad?: boolean) =>
      VethLinkProps.parse({
        a: { name: "h0" },
        b: { name: "eth0", netns: "g1", addresses: addrs, nodad },
      });
    const lines = batchLines(vethLinkPlanner.plan(p(true), undefined, {}));
    expect(lines).to.include("addr replace 2001:db8:10::12/64 dev eth0 nodad");
    expect(lines).to.include("addr replace 198.19.10.2/24 dev eth0");
    const plain = batchLines(vethLinkPlanner.plan(p(), undefined, {}));
    expect(plain).to.include("addr replace 2001:db8:10::12/64 dev eth0");
  });

  it("MacvlanPort adds its IPv6 addresses with nodad when asked", () => {
    const p = MacvlanPortProps.parse({
      name: "mv-b",
      type: "macvlan",
      lower: "nic0",
      netns: "g1",
      addresses: addrs,
      nodad: true,
    });
    const lines = batchLines(macvlanPortPlanner.plan(p, undefined, {}));
    expect(lines).to.include("addr replace 2001:db8:10::12/64 dev mv-b nodad");
    expect(lines).to.include("addr replace 198.19.10.2/24 dev mv-b");
  });

  it("VethLink turns IPv6 on before an end's addresses, and forwards per interface (routed host end)", () => {
    const p = VethLinkProps.parse({
      a: {
        name: "hv-r",
        addresses: ["fe80::1/64"],
        linkLocal: true,
        nodad: true,
        ipv6: true,
        ipv6Forwarding: true,
        routes: [{ to: "2001:db8:10::13/128" }],
      },
      b: { name: "eth0", netns: "g1" },
    });
    const steps = vethLinkPlanner
      .plan(p, undefined, {})
      .filter((s) => s.op.netns === undefined);
    const ops = steps.map((s) =>
      s.op.kind === "sh" ? s.op.commands.map((c) => c.join(" ")) : s.op.kind,
    );
    const enable = ops.findIndex((o) =>
      String(o).includes("net/ipv6/conf/hv-r/disable_ipv6=0"),
    );
    const addrs = batchLines(steps).indexOf(
      "addr replace fe80::1/64 dev hv-r nodad",
    );
    expect(enable, JSON.stringify(ops)).to.be.at.least(0);
    expect(addrs).to.be.at.least(0);
    // the create batch, then IPv6 on, then the end's batch (addresses, up, routes)
    expect(ops.slice(enable)[1]).to.equal("batch");
    expect(ops.flat()).to.include(
      "sysctl -q -w net/ipv6/conf/hv-r/force_forwarding=1",
    );
    expect(batchLines(steps)).to.include(
      "route replace 2001:db8:10::13/128 dev hv-r",
    );
  });

  it("VethLink refuses IPv6 addresses on an end with ipv6: false, naming the field", () => {
    const r = VethLinkProps.parse({
      a: { name: "h0", addresses: ["2001:db8::1/64"], ipv6: false },
      b: { name: "v0", netns: "n" },
    });
    expect(validateVeth(r).map(([f]) => f)).to.deep.equal(["a.ipv6"]);
  });

  it("tells whether the kernel has per-interface force_forwarding, from the snapshot's other interfaces", () => {
    const snap = (sysctls: Record<string, string>) =>
      ({ namespaces: { [ROOT_NS]: namespaceOf([], { sysctls }) } }) as any;
    const all = { "net.ipv6.conf.all.disable_ipv6": "0" };
    const old = { ...all, "net.ipv6.conf.mgmt0.disable_ipv6": "0" };
    const fresh = { ...old, "net.ipv6.conf.mgmt0.force_forwarding": "0" };
    expect(forceForwardingKnown(snap(fresh), undefined)).to.equal(true);
    expect(forceForwardingKnown(snap(old), undefined)).to.equal(false);
    expect(forceForwardingKnown(snap(all), undefined)).to.equal(undefined);
  });
});

describe("dual-stack VMs: ARP/ND suppression neighbours", () => {
  const suppressed = (ipv6: string[]) =>
    VmSpec.parse({
      ...vm("a", "52:54:00:00:00:01", ipv6),
      managedFdb: true,
      arpSuppress: true,
    });
  /** The FdbEntry props managedFdbEntry hands its HostPlan. */
  const fdbProps = (v: VmSpec): Record<string, unknown>[] => {
    const made: Record<string, unknown>[] = [];
    const plan = {
      make: (_kind: string, _name: string, props: Record<string, unknown>) =>
        made.push(props),
    } as unknown as HostPlan;
    managedFdbEntry(undefined as never, "h1-a", plan, v, "br0", "tap-a", []);
    return made;
  };

  it("a VM without IPv6 publishes exactly its IPv4 addresses, as before", () => {
    expect(fdbProps(suppressed([]))).to.deep.equal([
      {
        bridge: "br0",
        port: "tap-a",
        mac: "52:54:00:00:00:01",
        neighbours: ["198.19.10.1"],
        exclusive: true,
      },
    ]);
  });

  it("a dual-stack VM also publishes its IPv6 addresses, without prefix", () => {
    expect(
      fdbProps(suppressed(["2001:db8:10::11/64", "fd00::11/128"]))[0]
        .neighbours,
    ).to.deep.equal(["198.19.10.1", "2001:db8:10::11", "fd00::11"]);
  });

  it("a segment member publishes its IPv6 addresses on every member host; an IPv4-only member is as before", () => {
    const c = parseStackConfig({
      hosts: [host, { name: "h2", address: "198.18.1.11" }],
      bridges: [{ name: "br0" }],
      segments: [{ name: "s1", vni: 100, bridge: "br0" }],
      vms: [
        { ...vm("a", "52:54:00:00:00:01", []), segment: "s1" },
        {
          ...vm("b", "52:54:00:00:00:02", ["2001:db8:10::12/64"]),
          host: "h2",
          segment: "s1",
        },
      ],
    });
    const underlay = new Map([
      ["h1", "198.18.1.10"],
      ["h2", "198.18.1.11"],
    ]);
    const [seg] = segmentsForHost("h1", c.segments, c.vms, underlay);
    expect(
      seg.members.map((m) => [m.vm, ...memberNeighbours(m)]),
    ).to.deep.equal([
      ["a", "198.19.10.1"],
      ["b", "198.19.10.2", "2001:db8:10::12"],
    ]);
    expect(seg.members[0]).to.not.have.property("ipv6");
  });

  it("FdbEntry keeps IPv6 neighbours in the kernel's form and refuses ones no VM can own, naming the field", () => {
    const p = (neighbours: string[]) =>
      FdbEntryProps.safeParse({
        bridge: "br0",
        port: "tap1",
        mac: "02:00:00:00:00:01",
        neighbours,
      });
    const ok = p(["198.19.10.1", "2001:DB8:10:0:0::12"]);
    expect(ok.success && ok.data.neighbours).to.deep.equal([
      "198.19.10.1",
      "2001:db8:10::12",
    ]);
    const bad = p(["2001:db8:10::12", "ff02::1"]);
    expect(bad.success).to.equal(false);
    const issue = !bad.success && bad.error.issues[0];
    expect(issue && issue.path).to.deep.equal(["neighbours", 1]);
    expect(issue && issue.message).to.match(/multicast/);
  });

  it("the planner compares IPv6 neighbours as addresses, not as text, and publishes a lost one with ip neigh", () => {
    const MAC = "02:00:00:00:00:01";
    const props = {
      bridge: "br0",
      port: "tap1",
      mac: MAC,
      neighbours: ["198.19.10.1", "2001:DB8:10:0::12"],
      exclusive: true,
    } as FdbEntryProps;
    const plan = (neigh: string[], sysctls: Record<string, string> = {}) => {
      const snap = snapshotWith({
        "": {
          sysctls,
          links: [
            linkOf({ name: "br0", kind: "bridge" }),
            linkOf({ name: "tap1", kind: "tap", master: "br0" }),
          ],
          fdb: [
            {
              mac: MAC,
              dev: "tap1",
              master: "br0",
              state: "static",
              flags: [],
            },
          ],
          neigh: neigh.map((dst) => ({ dst, dev: "br0", lladdr: MAC })),
        },
      });
      const o = fdbEntryPlanner.observe(snap, props);
      return {
        steps: fdbEntryPlanner.plan(props, o, {}),
        live: liveProps(o, props),
      };
    };
    const same = plan(["198.19.10.1", "2001:db8:10::12"]);
    expect(same.steps).to.deep.equal([]);
    expect(same.live?.neighbours).to.deep.equal(props.neighbours);
    const lost = plan(["198.19.10.1"]);
    expect(batchLines(lost.steps)).to.deep.equal([
      `neigh replace 2001:db8:10::12 lladdr ${MAC} dev br0 nud permanent`,
    ]);
    expect(lost.live?.neighbours).to.deep.equal(["198.19.10.1"]);
  });

  it("turns IPv6 on for the bridge (no address) before its IPv6 neighbours only where it is off or unknown", () => {
    const MAC = "02:00:00:00:00:01";
    const props = (neighbours: string[]) =>
      FdbEntryProps.parse({
        bridge: "br0",
        port: "tap1",
        mac: MAC,
        neighbours,
      });
    const key = "net.ipv6.conf.br0.disable_ipv6";
    const shOps = (p: FdbEntryProps, sysctls?: Record<string, string>) => {
      const snap = snapshotWith({
        "": {
          links: [
            linkOf({ name: "br0", kind: "bridge" }),
            linkOf({ name: "tap1", kind: "tap", master: "br0" }),
          ],
          ...(sysctls ? { sysctls } : {}),
        },
      });
      return fdbEntryPlanner
        .plan(p, fdbEntryPlanner.observe(snap, p), {})
        .flatMap((s) => (s.op.kind === "sh" ? [s.op.commands] : []));
    };
    const dual = props(["198.19.10.1", "2001:db8:10::12"]);
    const on = [
      ["ip", "link", "set", "dev", "br0", "addrgenmode", "none"],
      ["sysctl", "-q", "-w", "net/ipv6/conf/br0/accept_ra=0"],
      ["sysctl", "-q", "-w", "net/ipv6/conf/br0/disable_ipv6=0"],
    ];
    expect(shOps(dual, { [key]: "1" })).to.deep.equal([on]);
    expect(shOps(dual)).to.deep.equal([on]);
    expect(
      fdbEntryPlanner.plan(dual, undefined, {}).some((s) => s.op.kind === "sh"),
      "the boot restore script (nothing observed) turns it on",
    ).to.equal(true);
    expect(shOps(dual, { [key]: "0" })).to.deep.equal([]);
    expect(shOps(props(["198.19.10.1"]), { [key]: "1" })).to.deep.equal([]);
  });
});

describe("dual-stack VMs: the health check pings over IPv6 too", () => {
  const sim = (name: string, mac: string, ipv6: string[]) =>
    VmSpec.parse({ ...vm(name, mac, ipv6), simulate: true });

  it("IPv4-only VMs get exactly the pings of old", () => {
    expect(
      simulatedPings([
        sim("a", "52:54:00:00:00:01", []),
        sim("b", "52:54:00:00:00:02", []),
      ]),
    ).to.deep.equal([{ netns: "guest-a", to: "198.19.10.2" }]);
  });

  it("a dual-stack VM is also pinged at its first IPv6 address from where its IPv4 ping runs (when that VM has IPv6)", () => {
    const pings = simulatedPings([
      sim("a", "52:54:00:00:00:01", []),
      sim("b", "52:54:00:00:00:02", ["2001:db8:10::12/64"]),
      sim("c", "52:54:00:00:00:03", ["2001:db8:10::13/64", "fd00::13/64"]),
    ]);
    expect(pings).to.deep.equal([
      { netns: "guest-a", to: "198.19.10.2" },
      { netns: "guest-b", to: "198.19.10.3" },
      { netns: "guest-b", to: "2001:db8:10::13" },
    ]);
    expect(HealthChecks.parse({ pings }).pings).to.deep.equal(pings);
  });
});
