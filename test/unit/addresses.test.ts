// Addresses that make no sense (issue 12, class 2): one validator for "an address a guest can own",
// used wherever an address enters — stack config, VethLink addresses and routes, MacvlanPort
// addresses, FdbEntry neighbours, FilterChain ipv4/ipv6. Each case asserts the refusal names the
// field; the accepted cases keep the validator from refusing what operators really use.
import { expect } from "chai";
import { check } from "../../providers/runtime";
import * as v from "../../providers/schema";
import { parseStackConfig, StackConfigError } from "../../stacks/config";
import {
  Case,
  NOT_OWNABLE_V4,
  NOT_OWNABLE_V6,
  OWNABLE,
  RESOURCE_CASES,
  veth,
} from "../support/badAddresses";

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
      it(`accepts ${input}`, () =>
        expect(v.ownableProblem(input, "VM address")).to.equal(undefined));
    }
    it("admits link-local only when asked", () => {
      expect(v.ownableProblem("fe80::1/64", "a", { linkLocal: true })).to.equal(
        undefined,
      );
      expect(
        v.ownableProblem("169.254.7.7/16", "a", { linkLocal: true }),
      ).to.equal(undefined);
      expect(
        v.ownableProblem("169.254.7.7/16", "a", {
          linkLocalHint: "set linkLocal: true",
        }),
      ).to.match(/if you mean it, set linkLocal: true/);
    });
    it("reads IPv6 with embedded IPv4 and :: at either end", () => {
      expect(v.ipBits("::ffff:1.2.3.4").value).to.equal(0xffff01020304n);
      expect(v.ipBits("1::").value).to.equal(1n << 112n);
      expect(v.ipBits("::").value).to.equal(0n);
      expect(v.ipBits("198.19.0.1")).to.deep.equal({
        value: 0xc6130001n,
        width: 32,
      });
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
      it(`refuses route destination ${input}`, () =>
        expect(v.routeDestinationProblem(input, "route destination")).to.match(
          why,
        ));
    }
    for (const input of [
      "0.0.0.0/0",
      "::/0",
      "198.19.6.2/32",
      "fe80::/64",
      "224.0.0.0/4",
      "fd00::/8",
    ]) {
      it(`accepts route destination ${input}`, () =>
        expect(v.routeDestinationProblem(input, "route destination")).to.equal(
          undefined,
        ));
    }
    const badGateways: Case[] = [
      ["127.0.0.1", /loopback/],
      ["0.0.0.0", /unspecified/],
      ["224.0.0.5", /multicast/],
      ["255.255.255.255", /broadcast/],
      ["::", /unspecified/],
      ["ff02::2", /multicast/],
    ];
    for (const [input, why] of badGateways) {
      it(`refuses gateway ${input}`, () => {
        const r = v.GatewayAddress.safeParse(input);
        expect(r.success, `${input} must be refused`).to.equal(false);
        if (!r.success) expect(r.error.issues[0].message).to.match(why);
      });
    }
    for (const input of ["198.19.6.1", "fe80::1", "169.254.0.1", "fd00::1"]) {
      it(`accepts gateway ${input}`, () =>
        expect(v.GatewayAddress.safeParse(input).success).to.equal(true));
    }
    it("reports only the syntax problem for a malformed address, not a meaning problem", () => {
      const r = v.GuestIpv4Cidr.safeParse("127.0.0.1/33");
      expect(r.success).to.equal(false);
      if (r.success) return;
      expect(r.error.issues.map((i) => i.message)).to.deep.equal([
        'IPv4 prefix length must be a number 0–32, got "33"',
      ]);
    });
  });
});

// ---------------------------------------------------------------------------------------
// Every place an address enters, through the code path preview runs (check / parseStackConfig)
// ---------------------------------------------------------------------------------------

const CONN = { connection: { host: "198.18.2.10", port: 22, user: "root" } };

/** The check failures of `kind` with `props`, as "field: message" lines. */
async function refusals(
  kind: string,
  props: Record<string, unknown>,
): Promise<string[]> {
  const r = (await check(kind, {}, { ...CONN, ...props })) as {
    failures?: Array<{ property: string; reason: string }>;
  };
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
const vm = (ipv4: string[]) => ({
  name: "web1",
  host: "h1",
  mac: "52:54:00:00:00:01",
  ipv4,
  attachment: "routed",
});

describe("every place an address enters names the field", () => {
  for (const [bad, why] of NOT_OWNABLE_V4) {
    it(`stack config vms[0].ipv4[1] = ${bad}`, () => {
      const problems = stackProblems({
        hosts: [host],
        vms: [vm(["198.19.10.11/24", bad])],
      });
      expect(problems).to.have.length(1);
      expect(problems[0])
        .to.match(/^vms\[0\]\.ipv4\[1\]: /)
        .and.to.match(why);
    });
  }

  for (const [kind, field, props, why] of RESOURCE_CASES) {
    it(`${kind} ${field} (${why.source})`, async () => {
      const lines = await refusals(kind, props);
      expect(
        lines.some((l) => l.startsWith(`${field}: `) && why.test(l)),
        lines.join("\n") || "no failures",
      ).to.equal(true);
    });
  }

  it("accepts what operators use: link-local when asked, the routed design, fe80:: in an IPv6 filter", async () => {
    expect(
      await refusals(
        "VethLink",
        veth({ addresses: ["fe80::2/64"], linkLocal: true }),
      ),
    ).to.deep.equal([]);
    expect(
      await refusals(
        "VethLink",
        veth({ addresses: ["198.19.6.2/32"], routes: [{ to: "0.0.0.0/0" }] }),
      ),
    ).to.deep.equal([]);
    expect(
      await refusals("MacvlanPort", {
        name: "mv-x",
        lower: "eth1",
        addresses: ["169.254.9.9/16"],
        linkLocal: true,
      }),
    ).to.deep.equal([]);
    const filter = {
      port: "tap-x",
      policy: "clean-traffic",
      mac: "52:54:00:00:00:01",
      ipv4: ["198.19.1.2"],
      ipv6: ["fe80::5054:ff:fe00:1"],
    };
    expect(
      await refusals("FilterChain", { table: "hostnet", ports: [filter] }),
    ).to.deep.equal([]);
  });
});
