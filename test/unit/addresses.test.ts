// Addresses that make no sense (issue 12, class 2): one validator for "an address a guest can own",
// used wherever an address enters — stack config, VethLink addresses and routes, MacvlanPort
// addresses, FdbEntry neighbours, FilterChain ipv4/ipv6. Each case asserts the refusal names the
// field; the accepted cases keep the validator from refusing what operators really use.
import { expect } from "chai";
import { check } from "../../providers/runtime";
import * as v from "../../providers/validate";
import { parseStackConfig, StackConfigError } from "../../stacks/config";

/** [input, what the message must say] */
type Case = [string, RegExp];

const NOT_OWNABLE_V4: Case[] = [
  ["127.0.0.1/8", /loopback/],
  ["127.5.6.7/32", /loopback/],
  ["0.0.0.0/24", /unspecified/],
  ["0.1.2.3/32", /this network/],
  ["224.0.0.1/24", /multicast/],
  ["239.255.255.250/32", /multicast/],
  ["255.255.255.255/32", /limited broadcast/],
  ["240.0.0.1/24", /reserved/],
  ["169.254.1.1/16", /link-local/],
  ["198.19.10.0/24", /network address of its own prefix/],
  ["198.19.10.255/24", /broadcast address of its own prefix/],
  ["10.0.0.0/8", /network address/],
  ["10.255.255.255/8", /broadcast address/],
  ["198.19.10.12/30", /network address/],
  ["198.19.10.15/30", /broadcast address/],
  ["198.19.10.11/0", /prefix length 0/],
];

const NOT_OWNABLE_V6: Case[] = [
  ["::/128", /unspecified/],
  ["::1/128", /loopback/],
  ["ff02::1/64", /multicast/],
  ["ff05::1:3/128", /multicast/],
  ["fe80::1/64", /link-local/],
  ["febf::1/64", /link-local/],
  ["::ffff:198.19.1.1/128", /IPv4-mapped/],
  ["fd00:1::/64", /subnet-router anycast/],
  ["fd00::5/0", /prefix length 0/],
];

const OWNABLE: string[] = [
  "198.19.10.11/24", "10.0.0.1/8", "198.19.10.13/30", "198.19.10.0/31", "198.19.10.1/31",
  "198.19.10.0/32", "198.19.10.255/32", "100.64.0.1/10", "fd00:1::1/64", "2001:db8::2/127",
  "2001:db8::/128", "fd00::ffff:ffff/64",
];

describe("addresses a guest can own", () => {
  describe("ownableProblem", () => {
    for (const [input, why] of [...NOT_OWNABLE_V4, ...NOT_OWNABLE_V6]) {
      it(`refuses ${input} (${why.source})`, () => {
        const p = v.ownableProblem(input, "VM address");
        expect(p, `${input} must be refused`).to.be.a("string");
        expect(p).to.match(why).and.to.include(input);
      });
    }
    for (const input of OWNABLE) {
      it(`accepts ${input}`, () => expect(v.ownableProblem(input, "VM address")).to.equal(undefined));
    }
    it("admits link-local only when asked", () => {
      expect(v.ownableProblem("fe80::1/64", "a", { linkLocal: true })).to.equal(undefined);
      expect(v.ownableProblem("169.254.7.7/16", "a", { linkLocal: true })).to.equal(undefined);
      expect(v.ownableProblem("169.254.7.7/16", "a", { linkLocalHint: "set linkLocal: true" })).to.match(/if you mean it, set linkLocal: true/);
    });
    it("reads IPv6 with embedded IPv4 and :: at either end", () => {
      expect(v.ipBits("::ffff:1.2.3.4").value).to.equal(0xffff01020304n);
      expect(v.ipBits("1::").value).to.equal(1n << 112n);
      expect(v.ipBits("::").value).to.equal(0n);
      expect(v.ipBits("198.19.0.1")).to.deep.equal({ value: 0xc6130001n, width: 32 });
    });
  });

  describe("route destinations and gateways", () => {
    const badRoutes: Case[] = [
      ["127.0.0.0/8", /loopback/],
      ["127.0.0.1/32", /loopback/],
      ["0.0.0.0/8", /this network/],
      ["::1/128", /loopback/],
      ["::/128", /unspecified/],
      ["::ffff:0:0/96", /IPv4-mapped/],
    ];
    for (const [input, why] of badRoutes) {
      it(`refuses route destination ${input}`, () => expect(v.routeDestinationProblem(input, "route destination")).to.match(why));
    }
    for (const input of ["0.0.0.0/0", "::/0", "198.19.6.2/32", "fe80::/64", "224.0.0.0/4", "fd00::/8"]) {
      it(`accepts route destination ${input}`, () => expect(v.routeDestinationProblem(input, "route destination")).to.equal(undefined));
    }
    const badGateways: Case[] = [
      ["127.0.0.1", /loopback/], ["0.0.0.0", /unspecified/], ["224.0.0.5", /multicast/], ["255.255.255.255", /broadcast/], ["::", /unspecified/], ["ff02::2", /multicast/],
    ];
    for (const [input, why] of badGateways) {
      it(`refuses gateway ${input}`, () => {
        const r = v.GatewayAddress.safeParse(input);
        expect(r.success, `${input} must be refused`).to.equal(false);
        if (!r.success) expect(r.error.issues[0].message).to.match(why);
      });
    }
    for (const input of ["198.19.6.1", "fe80::1", "169.254.0.1", "fd00::1"]) {
      it(`accepts gateway ${input}`, () => expect(v.GatewayAddress.safeParse(input).success).to.equal(true));
    }
    it("reports only the syntax problem for a malformed address, not a meaning problem", () => {
      const r = v.GuestIpv4Cidr.safeParse("127.0.0.1/33");
      expect(r.success).to.equal(false);
      if (r.success) return;
      expect(r.error.issues.map((i) => i.message)).to.deep.equal(["IPv4 prefix length must be a number 0–32, got \"33\""]);
    });
  });
});

// ---------------------------------------------------------------------------------------
// Every place an address enters, through the code path preview runs (check / parseStackConfig)
// ---------------------------------------------------------------------------------------

const CONN = { connection: { host: "198.18.2.10", port: 22, user: "root" } };

/** The check failures of `kind` with `props`, as "field: message" lines. */
async function refusals(kind: string, props: Record<string, unknown>): Promise<string[]> {
  const r = (await check(kind, {}, { ...CONN, ...props })) as { failures?: Array<{ property: string; reason: string }> };
  return (r.failures ?? []).map((f) => f.reason);
}

function stackProblems(raw: Record<string, unknown>): string[] {
  try {
    parseStackConfig(raw);
  } catch (err) {
    expect(err).to.be.instanceOf(StackConfigError);
    return (err as StackConfigError).problems;
  }
  throw new Error("expected the stack config to be refused");
}

const host = { name: "h1", address: "198.18.2.10" };
const vm = (ipv4: string[]) => ({ name: "web1", host: "h1", mac: "52:54:00:00:00:01", ipv4, attachment: "routed" });

describe("every place an address enters names the field", () => {
  for (const [bad, why] of NOT_OWNABLE_V4) {
    it(`stack config vms[0].ipv4[1] = ${bad}`, () => {
      const problems = stackProblems({ hosts: [host], vms: [vm(["198.19.10.11/24", bad])] });
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^vms\[0\]\.ipv4\[1\]: /).and.to.match(why);
    });
  }

  const veth = (bEnd: Record<string, unknown>) => ({ a: { name: "hv-x" }, b: { name: "eth0", netns: "vm-x", ...bEnd } });
  const resourceCases: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ["VethLink", "b.addresses[0]", veth({ addresses: ["127.0.0.2/8"] }), /loopback/],
    ["VethLink", "b.addresses[0]", veth({ addresses: ["198.19.5.0/24"] }), /network address/],
    ["VethLink", "b.addresses[0]", veth({ addresses: ["ff02::1/64"] }), /multicast/],
    ["VethLink", "b.addresses[0]", veth({ addresses: ["0.0.0.0/0"] }), /prefix length 0/],
    ["VethLink", "b.addresses[1]", veth({ addresses: ["198.19.5.2/24", "169.254.3.3/16"] }), /link-local; set linkLocal: true on b/],
    ["VethLink", "b.addresses[0]", veth({ addresses: ["fe80::2/64"] }), /link-local/],
    ["VethLink", "b.routes[0].to", veth({ routes: [{ to: "127.0.0.0/8" }] }), /loopback/],
    ["VethLink", "b.routes[0].to", veth({ routes: [{ to: "::1/128" }] }), /loopback/],
    ["VethLink", "b.routes[0].via", veth({ routes: [{ to: "0.0.0.0/0", via: "224.0.0.1" }] }), /multicast/],
    ["VethLink", "b.routes[0].via", veth({ routes: [{ to: "0.0.0.0/0", via: "0.0.0.0" }] }), /unspecified/],
    ["MacvlanPort", "addresses[0]", { name: "mv-x", lower: "eth1", addresses: ["198.19.7.255/24"] }, /broadcast address/],
    ["MacvlanPort", "addresses[0]", { name: "mv-x", lower: "eth1", addresses: ["::/128"] }, /unspecified/],
    ["MacvlanPort", "addresses[0]", { name: "mv-x", lower: "eth1", addresses: ["169.254.9.9/16"] }, /link-local; set linkLocal: true/],
    ["FdbEntry", "neighbours[0]", { bridge: "br0", port: "tap-x", mac: "52:54:00:00:00:01", neighbours: ["255.255.255.255"] }, /broadcast/],
    ["FdbEntry", "neighbours[1]", { bridge: "br0", port: "tap-x", mac: "52:54:00:00:00:01", neighbours: ["198.19.1.2", "127.0.0.1"] }, /loopback/],
    ["FilterChain", "ports[0].ipv4[0]", { table: "hostnet", ports: [{ port: "tap-x", policy: "clean-traffic", mac: "52:54:00:00:00:01", ipv4: ["224.1.1.1"] }] }, /multicast/],
    ["FilterChain", "ports[0].ipv6[0]", { table: "hostnet", ports: [{ port: "tap-x", policy: "clean-traffic", mac: "52:54:00:00:00:01", ipv6: ["ff02::1"] }] }, /multicast/],
  ];
  for (const [kind, field, props, why] of resourceCases) {
    it(`${kind} ${field} (${why.source})`, async () => {
      const lines = await refusals(kind, props);
      expect(lines.some((l) => l.startsWith(`${field}: `) && why.test(l)), lines.join("\n") || "no failures").to.equal(true);
    });
  }

  it("accepts what operators use: link-local when asked, the routed design, fe80:: in an IPv6 filter", async () => {
    expect(await refusals("VethLink", veth({ addresses: ["fe80::2/64"], linkLocal: true }))).to.deep.equal([]);
    expect(await refusals("VethLink", veth({ addresses: ["198.19.6.2/32"], routes: [{ to: "0.0.0.0/0" }] }))).to.deep.equal([]);
    expect(await refusals("MacvlanPort", { name: "mv-x", lower: "eth1", addresses: ["169.254.9.9/16"], linkLocal: true })).to.deep.equal([]);
    const filter = { port: "tap-x", policy: "clean-traffic", mac: "52:54:00:00:00:01", ipv4: ["198.19.1.2"], ipv6: ["fe80::5054:ff:fe00:1"] };
    expect(await refusals("FilterChain", { table: "hostnet", ports: [filter] })).to.deep.equal([]);
  });
});
