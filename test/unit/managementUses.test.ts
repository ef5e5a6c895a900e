// The management path seen from the kinds (issue 12, class 1), pure: what each kind hands the
// preview check (its addresses and the interfaces it configures), judged against a path, and the
// rule that every sysctl hostnet writes lands on an interface it makes or in a namespace it owns.
import { expect } from "chai";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import {
  AddressUse,
  managementCollisions,
  ManagementPath,
} from "../../providers/host";
import type { Step } from "../../providers/kinds/plan";
import {
  filterChainKind,
  FilterChainProps,
} from "../../providers/kinds/filterChain";
import {
  macvlanPortKind,
  MacvlanPortProps,
} from "../../providers/kinds/macvlanPort";
import {
  ENDS,
  vethLinkKind,
  VethLinkProps,
  vethLinkPlanner,
} from "../../providers/kinds/vethLink";
import { VmNetnsProps, vmNetnsPlanner } from "../../providers/kinds/vmNetns";
import { FdbEntryProps, fdbEntryPlanner } from "../../providers/kinds/fdbEntry";

/** A host managed over eth0 (10.1.0.7/24, gateway 10.1.0.1) from 192.0.2.50. */
const MP: ManagementPath = {
  peer: "192.0.2.50",
  dev: "eth0",
  peerRoute: "0.0.0.0/0",
  gateways: ["10.1.0.1"],
  addresses: ["10.1.0.7"],
};

/** The [field, message] refusals of a kind's props against MP. */
function refusals(
  uses: (p: any) => AddressUse[] | undefined,
  props: unknown,
): Array<[string, string]> {
  return managementCollisions(MP, uses(props) ?? [], "h1");
}
const fields = (r: Array<[string, string]>): string[] => r.map(([f]) => f);

describe("MacvlanPort and the management path", () => {
  const uses = macvlanPortKind.addressUses!;
  const mv = (over: Record<string, unknown>) =>
    MacvlanPortProps.parse({ name: "mv0", lower: "eth0", ...over });

  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      "the host's own management address, in the root namespace on the management lower",
      { addresses: ["10.1.0.7/24"] },
      /own management address 10\.1\.0\.7 on eth0/,
    ],
    [
      "the SSH peer, in the root namespace",
      { addresses: ["192.0.2.50/32"] },
      /SSH peer 192\.0\.2\.50/,
    ],
    [
      "the gateway, in a VM namespace",
      { netns: "vm1", addresses: ["10.1.0.1/24"] },
      /gateway 10\.1\.0\.1/,
    ],
    [
      "the SSH peer, beside a lower in a VM namespace",
      { lower: "eth1", lowerNetns: "vm1", addresses: ["192.0.2.50/24"] },
      /SSH peer/,
    ],
    [
      "a root-namespace prefix that would win the lookup for the peer",
      { addresses: ["192.0.2.9/24"] },
      /take over the route to the address hostnet connects from/,
    ],
  ];
  for (const [what, over, why] of refused) {
    it(`refuses ${what}`, () => {
      const r = refusals(uses, mv(over));
      expect(fields(r)).to.deep.equal(["addresses[0]"]);
      expect(r[0][1])
        .to.match(why)
        .and.to.match(/changed nothing on h1/);
    });
  }

  const accepted: Array<[string, Record<string, unknown>]> = [
    [
      "a VM's port on the management interface (how macvlan VMs work)",
      { netns: "vm1", addresses: ["10.1.0.20/24"] },
    ],
    [
      "a host shim on the management interface with a /32 of its own",
      { addresses: ["10.1.0.30/32"] },
    ],
    ["a port with no address", {}],
  ];
  for (const [what, over] of accepted) {
    it(`accepts ${what}`, () =>
      expect(refusals(uses, mv(over))).to.deep.equal([]));
  }
});

describe("FilterChain and the management path", () => {
  const uses = filterChainKind.addressUses!;
  const chain = (port: string, netns?: string) =>
    FilterChainProps.parse({
      ...(netns ? { netns } : {}),
      table: "hostnet",
      ports: [
        { port: "tap-vm1", policy: "accept-all" },
        { port, policy: "clean-traffic", mac: "52:54:00:00:00:01" },
      ],
    });

  it("refuses the management interface as a filtered port, naming the field", () => {
    const r = refusals(uses, chain("eth0"));
    expect(fields(r)).to.deep.equal(["ports[1].port"]);
    expect(r[0][1]).to.match(/eth0 is h1's management interface/);
  });

  it("refuses the bridge port the session crosses", () => {
    const bridged = { ...MP, dev: "br0", crossed: ["eth0"] };
    const r = managementCollisions(bridged, uses(chain("eth0")) ?? [], "h1");
    expect(fields(r)).to.deep.equal(["ports[1].port"]);
    expect(r[0][1]).to.match(/port of bridge br0/);
  });

  it("accepts VM ports, and an eth0 inside a VM namespace", () => {
    expect(refusals(uses, chain("tap-vm2"))).to.deep.equal([]);
    expect(refusals(uses, chain("eth0", "vm1"))).to.deep.equal([]);
  });
});

// ------------------------------------------------------------------ sysctls

const SYSCTL_ON = {
  proxyArp: true,
  forwarding: true,
  ipv6: true,
  ipv6Forwarding: true,
};

/** [netns, interface or "*namespace*", key] of every sysctl write in the steps. */
function sysctlWrites(steps: readonly Step[]): Array<[string, string, string]> {
  return steps.flatMap((s) =>
    s.op.kind !== "sh"
      ? []
      : s.op.commands
          .filter((c) => c[0] === "sysctl")
          .map((c): [string, string, string] => {
            const key = c[c.length - 1].split("=")[0].replace(/\//g, ".");
            const m = /^net\.ipv[46]\.conf\.([^.]+)\./.exec(key);
            return [s.op.netns ?? "", m ? m[1] : "*namespace*", key];
          }),
  );
}

describe("every sysctl hostnet writes targets an interface it makes or a namespace it owns", () => {
  it("VethLink: only on its own two ends, in each end's namespace, and those ends are made by the same plan", () => {
    const p = VethLinkProps.parse({
      a: { name: "h0", ...SYSCTL_ON },
      b: { name: "v0", netns: "ns1", ...SYSCTL_ON },
    });
    const steps = vethLinkPlanner.plan(p, undefined, {});
    const writes = sysctlWrites(steps);
    expect(writes).to.have.length(8);
    for (const [netns, dev] of writes) {
      const end = ENDS.map((k) => p[k]).find((e) => e.name === dev);
      expect(end, `sysctl on ${dev}, not an end of the pair`).to.not.equal(
        undefined,
      );
      expect(netns).to.equal(end!.netns ?? "");
    }
    // The creating step makes both ends (the pair is one `link add`).
    const make = steps.find((s) => s.makes)!;
    expect(make.op.kind).to.equal("batch");
    const line = (make.op as { lines: string[] }).lines.join("\n");
    expect(line).to.match(
      /link add h0 type veth peer name v0|link add v0 type veth peer name h0/,
    );
  });

  it("VethLink: an end's name in the root namespace is checked against the management path at preview", () => {
    const p = VethLinkProps.parse({
      a: { name: "eth0", proxyArp: true },
      b: { name: "eth0", netns: "ns1", forwarding: true },
    });
    const r = refusals(vethLinkKind.addressUses!, p);
    expect(fields(r)).to.deep.equal(["a.name"]);
    expect(r[0][1]).to.match(/eth0 is h1's management interface/);
  });

  it("VmNetns: only namespace-wide keys, only inside its own namespace", () => {
    const p = VmNetnsProps.parse({
      name: "vm1",
      sysctls: {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.all.proxy_arp": "1",
      },
    });
    const writes = sysctlWrites(vmNetnsPlanner.plan(p, undefined, {}));
    expect(writes).to.have.length(3);
    for (const [netns, dev] of writes) {
      expect(netns).to.equal("vm1");
      expect(["*namespace*", "all", "default"]).to.include(dev);
    }
  });

  it("FdbEntry: only IPv6 on (no address, RAs ignored) for its own bridge, only where IPv6 is off there", () => {
    // The bridge may well carry the management address (VMs bridged onto br0). With IPv6 off on it
    // there is no IPv6 management path there, and turning IPv6 on with addrgenmode none and
    // accept_ra=0 gives the bridge no IPv6 address and leaves IPv4 untouched: the path is unchanged.
    const p = FdbEntryProps.parse({
      bridge: "br0",
      port: "tap1",
      mac: "02:00:00:00:00:01",
      neighbours: ["192.0.2.10", "2001:db8::10"],
    });
    const steps = fdbEntryPlanner.plan(p, undefined, {});
    expect(sysctlWrites(steps)).to.deep.equal([
      ["", "br0", "net.ipv6.conf.br0.accept_ra"],
      ["", "br0", "net.ipv6.conf.br0.disable_ipv6"],
    ]);
    const sh = steps.find((s) => s.op.kind === "sh")!.op as unknown as {
      commands: string[][];
    };
    expect(sh.commands[0]).to.deep.equal([
      "ip",
      "link",
      "set",
      "dev",
      "br0",
      "addrgenmode",
      "none",
    ]);
    expect(
      sh.commands.slice(1).map((c) => c[c.length - 1].split("=")[1]),
    ).to.deep.equal(["0", "0"]);
    const v4only = FdbEntryProps.parse({ ...p, neighbours: ["192.0.2.10"] });
    expect(
      sysctlWrites(fdbEntryPlanner.plan(v4only, undefined, {})),
    ).to.deep.equal([]);
  });

  it("no other code in providers/, components/ or stacks/ writes a sysctl", () => {
    const root = resolve(__dirname, "../../..");
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const f = join(dir, n);
        return statSync(f).isDirectory()
          ? files(f)
          : f.endsWith(".ts")
            ? [f]
            : [];
      });
    // An argv or a shell line that writes (a "<->" in a comment is not a redirect).
    const writer =
      /["']sysctl["']\s*,\s*(["']-q["']\s*,\s*)?["']-w["']|sysctl\s+(-q\s+)?-w|[^-]>\s*\/proc\/sys|tee\s+\S*\/proc\/sys/;
    const writers = ["providers", "components", "stacks"]
      .flatMap((d) => files(join(root, d)))
      .filter((f) => writer.test(readFileSync(f, "utf8")))
      .map((f) => relative(root, f))
      .sort();
    expect(writers).to.deep.equal([
      "providers/kinds/fdbEntry/plan.ts",
      "providers/kinds/vethLink/plan.ts",
      "providers/kinds/vmNetns/plan.ts",
    ]);
  });
});
