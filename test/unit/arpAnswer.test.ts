import { expect } from "chai";
import {
  ARP_ANSWER_DEVICES_PER_CHAIN,
  ARP_ANSWER_RULE,
  arpAnswerRemoveScript,
  ArpAnswerSpecInput,
  compileArpAnswer,
} from "../../providers/kinds/arpAnswer";
import { FilterSpecError } from "../../providers/kinds/filterChain";

const A = { ip: "198.18.200.1", mac: "02:00:00:c8:00:01" };
const B = { ip: "198.18.200.2", mac: "02:00:00:c8:00:02" };

function issuesOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(FilterSpecError);
    return (e as FilterSpecError).issues;
  }
  throw new Error("expected a FilterSpecError");
}

describe("compileArpAnswer (ARP answered at the port's ingress)", () => {
  it("renders one netdev table: the map, the gratuitous set and an ingress chain on the ports", () => {
    const c = compileArpAnswer({
      table: "hostnet_arp",
      ports: ["vnet1", "vnet0"],
      entries: [B, A],
    });
    expect(c.table).to.equal("hostnet_arp");
    expect(c.chains).to.deep.equal([
      { name: "ingress_0", devices: ["vnet0", "vnet1"] },
    ]);
    const lines = c.script.split("\n");
    // create-or-replace in one transaction
    expect(lines.slice(0, 3)).to.deep.equal([
      "table netdev hostnet_arp {}",
      "delete table netdev hostnet_arp",
      "table netdev hostnet_arp {",
    ]);
    expect(c.script).to.include(
      "\t\ttype ipv4_addr : ether_addr\n\t\telements = {\n" +
        "\t\t\t198.18.200.1 : 02:00:00:c8:00:01,\n\t\t\t198.18.200.2 : 02:00:00:c8:00:02\n\t\t}",
    );
    expect(c.script).to.include(
      "\t\ttype ipv4_addr . ipv4_addr\n\t\telements = {\n" +
        "\t\t\t198.18.200.1 . 198.18.200.1,\n\t\t\t198.18.200.2 . 198.18.200.2\n\t\t}",
    );
    expect(c.script).to.include(
      '\t\ttype filter hook ingress devices = { "vnet0", "vnet1" } priority filter; policy accept;\n' +
        `\t\t${ARP_ANSWER_RULE}\n`,
    );
    expect(c.script.endsWith("}\n")).to.equal(true);
  });

  it("does not depend on the order of ports and entries", () => {
    const x = compileArpAnswer({
      table: "t",
      ports: ["b", "a"],
      entries: [B, A],
    });
    const y = compileArpAnswer({
      table: "t",
      ports: ["a", "b"],
      entries: [A, B],
    });
    expect(x.script).to.equal(y.script);
  });

  it("answers only untagged broadcast Ethernet/IPv4 requests for a known IP, refusing probes and gratuitous ARP", () => {
    const r = ARP_ANSWER_RULE;
    const before = (x: string, y: string): boolean =>
      r.indexOf(x) >= 0 && r.indexOf(x) < r.indexOf(y);
    // everything that refuses comes before the counter and the first rewrite
    for (const cond of [
      "ether type arp",
      "ether daddr ff:ff:ff:ff:ff:ff",
      "arp htype 1 arp ptype ip arp hlen 6 arp plen 4",
      "arp operation request",
      "arp saddr ip != 0.0.0.0",
      "arp saddr ip . arp daddr ip != @gratuitous",
      "arp daddr ip @ip2mac",
    ])
      expect(before(cond, "counter"), cond).to.equal(true);
    expect(before("counter", " set ")).to.equal(true);
    // the requested IP is parked in the target hardware address before it is overwritten
    expect(before("@nh,144,32 set @nh,192,32", "arp daddr ip set")).to.equal(
      true,
    );
    expect(
      before("arp saddr ip set @nh,144,32", "arp daddr ether set"),
    ).to.equal(true);
    expect(r).to.include("arp operation set reply");
    expect(r.endsWith("fwd to meta iif")).to.equal(true);
  });

  it("an empty entry list renders empty sets: nothing is answered", () => {
    const c = compileArpAnswer({ table: "t", ports: ["vnet0"] });
    expect(c.script).to.not.include("elements");
    expect(c.script).to.include("type ipv4_addr : ether_addr\n\t}");
  });

  it("splits the ports into chains of at most 255 devices (the kernel refuses more)", () => {
    const ports = Array.from({ length: 600 }, (_, i) => `vnet${i}`);
    const c = compileArpAnswer({ table: "t", ports, entries: [A] });
    expect(c.chains.map((x) => x.devices.length)).to.deep.equal([
      ARP_ANSWER_DEVICES_PER_CHAIN,
      ARP_ANSWER_DEVICES_PER_CHAIN,
      600 - 2 * ARP_ANSWER_DEVICES_PER_CHAIN,
    ]);
    expect(c.chains.map((x) => x.name)).to.deep.equal([
      "ingress_0",
      "ingress_1",
      "ingress_2",
    ]);
    expect(new Set(c.chains.flatMap((x) => x.devices)).size).to.equal(600);
    expect(c.script.split(ARP_ANSWER_RULE).length - 1).to.equal(3);
  });

  it("refuses bad input with the field named, and emits nothing", () => {
    const spec = (x: object): ArpAnswerSpecInput => ({
      table: "t",
      ports: ["a"],
      entries: [],
      ...x,
    });
    const cases: [string, ArpAnswerSpecInput, RegExp | string][] = [
      [
        "no port",
        spec({ ports: [] }),
        "arpAnswer.ports: at least one port is required",
      ],
      [
        "a quote in a port",
        spec({ ports: ['a"b'] }),
        /^arpAnswer\.ports\[0\]: /,
      ],
      [
        "a duplicate port",
        spec({ ports: ["a", "a"] }),
        'arpAnswer.ports[1]: duplicate port "a" (first at ports[0])',
      ],
      [
        "a table name with a dash",
        spec({ table: "no-dash" }),
        /^arpAnswer\.table: /,
      ],
      [
        "0.0.0.0 as an entry",
        spec({ entries: [{ ip: "0.0.0.0", mac: A.mac }] }),
        /^arpAnswer\.entries\[0\]\.ip: /,
      ],
      [
        "text after an address",
        spec({ entries: [{ ip: "198.18.200.1; flush ruleset", mac: A.mac }] }),
        /^arpAnswer\.entries\[0\]\.ip: /,
      ],
      [
        "a broadcast MAC",
        spec({ entries: [{ ip: A.ip, mac: "ff:ff:ff:ff:ff:ff" }] }),
        /^arpAnswer\.entries\[0\]\.mac: /,
      ],
      [
        "one IP twice",
        spec({ entries: [A, { ip: A.ip, mac: B.mac }] }),
        `arpAnswer.entries[1].ip: IP ${A.ip} is listed twice (first at entries[0].ip); one address has one answer`,
      ],
      [
        "an unknown field",
        spec({ entries: [{ ...A, extra: 1 }] }),
        /^arpAnswer\.entries\[0\]/,
      ],
    ];
    for (const [what, input, want] of cases) {
      const got = issuesOf(() => compileArpAnswer(input));
      if (typeof want === "string") expect(got, what).to.deep.equal([want]);
      else expect(got[0], what).to.match(want);
    }
  });

  it("lets one MAC answer for several IPs (nothing is looked up by MAC)", () => {
    const c = compileArpAnswer({
      table: "t",
      ports: ["a"],
      entries: [A, { ip: "198.18.200.9", mac: A.mac }],
    });
    expect(c.script).to.include("198.18.200.9 : 02:00:00:c8:00:01");
  });

  it("lowercases MACs and renders a removal script", () => {
    const c = compileArpAnswer({
      table: "t",
      ports: ["a"],
      entries: [{ ip: A.ip, mac: "02:00:00:C8:00:0A" }],
    });
    expect(c.script).to.include(`${A.ip} : 02:00:00:c8:00:0a`);
    expect(arpAnswerRemoveScript("t")).to.equal(
      "table netdev t {}\ndelete table netdev t\n",
    );
    expect(() => arpAnswerRemoveScript("x y")).to.throw(FilterSpecError);
  });
});
