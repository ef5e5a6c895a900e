import { expect } from "chai";
import { z } from "zod";
import * as v from "../../providers/schema";

type Schema = z.ZodType<string>;

/** Parses and returns the joined issue messages; fails the test if parsing succeeded. */
function messageOf(schema: Schema, input: unknown): string {
  const r = schema.safeParse(input);
  expect(
    r.success,
    `expected ${JSON.stringify(input)} to be rejected`,
  ).to.equal(false);
  return r.success ? "" : r.error.issues.map((i) => i.message).join("; ");
}

function expectAccepted(schema: Schema, input: string, output = input): void {
  const r = schema.safeParse(input);
  const why = r.success ? "" : r.error.issues.map((i) => i.message).join("; ");
  expect(
    r.success,
    `expected ${JSON.stringify(input)} to be accepted: ${why}`,
  ).to.equal(true);
  if (r.success) expect(r.data).to.equal(output);
}

type Case = [input: unknown, message: RegExp];

function rejectTable(schema: Schema, cases: readonly Case[]): void {
  for (const [input, message] of cases) {
    it(`rejects ${JSON.stringify(input) ?? String(input)} with ${message}`, () => {
      expect(messageOf(schema, input)).to.match(message);
    });
  }
}

function acceptTable(
  schema: Schema,
  cases: readonly (string | [string, string])[],
): void {
  for (const c of cases) {
    const [input, output] = typeof c === "string" ? [c, c] : c;
    it(`accepts ${JSON.stringify(input)}`, () =>
      expectAccepted(schema, input, output));
  }
}

const ALL: Record<string, Schema> = {
  IfName: v.IfName,
  NetnsName: v.NetnsName,
  MacAddress: v.MacAddress,
  AnyMacAddress: v.AnyMacAddress,
  IpAddress: v.IpAddress,
  Ipv4Address: v.Ipv4Address,
  Ipv6Address: v.Ipv6Address,
  Cidr: v.Cidr,
  Ipv4Cidr: v.Ipv4Cidr,
  Ipv6Cidr: v.Ipv6Cidr,
  NftIdentifier: v.NftIdentifier,
  SysctlKey: v.SysctlKey,
  SysctlValue: v.SysctlValue,
  HostName: v.HostName,
  UnixUser: v.UnixUser,
};

// Hostile inputs every schema must refuse, with a message that names the problem.
const HOSTILE: readonly Case[] = [
  ["; rm -rf /", /';'/],
  ["$(reboot)", /'\$'/],
  ["`id`", /'`'/],
  ["a\nb", /newline/],
  ["a'b", /"'"/],
  ['a"b', /'"'/],
  ["a\\b", /'\\'/],
  ["a\0b", /NUL/],
  ["é", /non-ASCII character 'é'/],
  ["eth0é", /non-ASCII/],
  ["", /must not be empty/],
  [42, /as a string, got a number \(42\)/],
  [null, /as a string, got null/],
  [{}, /as a string, got an object/],
  [[], /as a string, got an array/],
  [undefined, /as a string, got nothing/],
];

// In these schemas the 'a' of "a'b" is already illegal, so it is the character named.
const A_IS_ILLEGAL = new Set(["Ipv4Address", "Ipv4Cidr"]);

describe("validate: hostile inputs are rejected by every schema", () => {
  for (const [name, schema] of Object.entries(ALL)) {
    describe(name, () => {
      const a = (c: Case): Case =>
        A_IS_ILLEGAL.has(name) && /^a[^\n\0]/.test(String(c[0]))
          ? [c[0], /found 'a'/]
          : c;
      rejectTable(schema, HOSTILE.map(a));
      it("rejects a space (unless a sysctl value)", () => {
        if (name === "SysctlValue") expectAccepted(schema, "a b");
        else
          expect(messageOf(schema, "a b")).to.match(
            A_IS_ILLEGAL.has(name) ? /found 'a'/ : /a space/,
          );
      });
      it("rejects '.' and '..'", () => {
        expect(messageOf(schema, ".")).to.not.equal("");
        expect(messageOf(schema, "..")).to.not.equal("");
      });
      it("rejects a leading '-' (unless a sysctl value, where -1 is legitimate)", () => {
        if (name === "SysctlValue") expectAccepted(schema, "-1");
        else expect(messageOf(schema, "-x")).to.not.equal("");
      });
      it("rejects 300 characters with a length message", () => {
        expect(messageOf(schema, "1".repeat(300))).to.match(
          /at most \d+ characters, got 300|1–15 bytes, got 300/,
        );
      });
    });
  }
});

describe("validate: IfName", () => {
  acceptTable(v.IfName, [
    "eth0",
    "br-vm1",
    "veth_a@b",
    "eth0.100",
    "_x",
    "0abc",
    "x".repeat(15),
  ]);
  rejectTable(v.IfName, [
    ["x".repeat(16), /^interface name must be 1–15 bytes, got 16$/],
    ["é".repeat(8), /1–15 bytes, got 16/], // bytes, not characters
    ["ethé", /must contain only ASCII characters/], // 5 bytes: fine length, but non-ASCII
    [".", /must not be "\." or "\.\."/],
    ["..", /must not be "\." or "\.\."/],
    ["a/b", /found '\/'/],
    [
      "a:b",
      /may contain only letters, digits, '_', '\.', '@' and '-', found ':'/,
    ],
    ["-x", /must start with a letter, digit or '_', got '-'/],
    [".x", /must start with/],
    ["@x", /must start with/],
    ["a\tb", /a tab/],
    ["a b", /found a space/],
  ]);
});

describe("validate: NetnsName", () => {
  acceptTable(v.NetnsName, ["vm1", "vm-1.ns", "_n", "x".repeat(64)]);
  rejectTable(v.NetnsName, [
    ["x".repeat(65), /at most 64 characters, got 65/],
    ["-ns", /must start with a letter, digit or '_'/],
    [".", /must not be "\." or "\.\."/],
    ["a/b", /found '\/'/],
    ["a@b", /found '@'/],
  ]);
});

describe("validate: MacAddress", () => {
  acceptTable(v.MacAddress, [
    ["52:54:00:AB:cd:EF", "52:54:00:ab:cd:ef"],
    "02:00:00:00:00:01",
    ["FE:FF:FF:FF:FF:FF", "fe:ff:ff:ff:ff:ff"],
  ]);
  rejectTable(v.MacAddress, [
    ["01:00:5e:00:00:01", /MAC address 01:00:5e:00:00:01 is multicast/],
    ["FF:FF:FF:FF:FF:FF", /ff:ff:ff:ff:ff:ff is multicast/],
    ["33:33:00:00:00:01", /multicast/],
    ["00:00:00:00:00:00", /not a usable address/],
    ["52-54-00-12-34-56", /may contain only hex digits and ':', found '-'/],
    ["5:54:00:12:34:56", /six two-digit hex octets/],
    ["52:54:00:12:34", /six two-digit hex octets/],
    ["52:54:00:12:34:5g", /found 'g'/],
    ["52:54:00:12:34:56:78", /at most 17 characters/],
  ]);
});

describe("validate: AnyMacAddress", () => {
  acceptTable(v.AnyMacAddress, [
    ["01:80:C2:00:00:00", "01:80:c2:00:00:00"],
    "ff:ff:ff:ff:ff:ff",
    "00:00:00:00:00:00",
    ["52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef"],
  ]);
  rejectTable(v.AnyMacAddress, [
    ["52:54:00:12:34", /six two-digit hex octets/],
  ]);
});

describe("validate: IP addresses", () => {
  const v4 = ["10.0.0.1", "0.0.0.0", "255.255.255.255", "192.168.100.200"];
  const v6 = [
    "::1",
    "::",
    "fe80::1",
    "2001:db8::1",
    "::ffff:10.0.0.1",
    "FE80::A",
    "1:2:3:4:5:6:7:8",
  ];
  describe("IpAddress", () => {
    acceptTable(v.IpAddress, [...v4, ...v6]);
    rejectTable(v.IpAddress, [
      [
        "01.2.3.4",
        /four decimal numbers 0–255 .* without leading zeros, got "01\.2\.3\.4"/,
      ],
      ["1.2.3.04", /without leading zeros/],
      ["256.1.1.1", /four decimal numbers/],
      ["1.2.3", /four decimal numbers/],
      ["1.2.3.4.5", /four decimal numbers/],
      ["fe80::1%eth0", /IP address must not carry a zone id/],
      ["1:2:3:4:5:6:7:8:9", /not a valid IPv6 address/],
      ["::ffff:01.2.3.4", /not a valid IPv6 address/],
      ["10.0.0.1/24", /found '\/'/],
    ]);
  });
  describe("Ipv4Address", () => {
    acceptTable(v.Ipv4Address, v4);
    rejectTable(v.Ipv4Address, [
      ["::1", /IPv4 address may contain only digits and '\.', found ':'/],
    ]);
  });
  describe("Ipv6Address", () => {
    acceptTable(v.Ipv6Address, v6);
    rejectTable(v.Ipv6Address, [
      ["10.0.0.1", /IPv6 address is not a valid IPv6 address/],
    ]);
  });
});

describe("validate: CIDR", () => {
  describe("Cidr", () => {
    acceptTable(v.Cidr, [
      "10.0.0.0/8",
      "10.0.0.1/24",
      "0.0.0.0/0",
      "fd00::/64",
      "::/0",
      "2001:db8::1/128",
    ]);
    rejectTable(v.Cidr, [
      ["10.0.0.0/33", /IPv4 prefix length must be a number 0–32, got "33"/],
      ["fd00::/129", /IPv6 prefix length must be a number 0–128, got "129"/],
      ["10.0.0.0/024", /prefix length/],
      ["10.0.0.0/", /prefix length/],
      ["10.0.0.0", /must look like address\/prefix/],
      ["10.0.0.0/8/8", /must look like address\/prefix/],
      ["10.0.0.256/8", /CIDR address part must be four decimal numbers/],
      ["fe80::1%eth0/64", /zone id/],
    ]);
  });
  describe("Ipv4Cidr / Ipv6Cidr", () => {
    acceptTable(v.Ipv4Cidr, ["192.168.0.0/16"]);
    acceptTable(v.Ipv6Cidr, ["fd00:1::/48"]);
    rejectTable(v.Ipv4Cidr, [
      [
        "fd00::/64",
        /IPv4 CIDR may contain only digits, '\.' and '\/', found 'f'/,
      ],
    ]);
    rejectTable(v.Ipv6Cidr, [
      ["10.0.0.0/8", /IPv6 CIDR address part is not a valid IPv6 address/],
    ]);
  });
});

describe("validate: NftIdentifier", () => {
  acceptTable(v.NftIdentifier, [
    "hostnet",
    "vm_1_in",
    "_x",
    "filter",
    "A".repeat(64),
  ]);
  rejectTable(v.NftIdentifier, [
    ["table", /must not be the nft keyword 'table'/],
    ["Drop", /nft keyword 'drop'/],
    ["1abc", /must start with a letter or '_'/],
    ["a-b", /may contain only letters, digits and '_', found '-'/],
    ["a".repeat(65), /at most 64 characters/],
  ]);
  const keywords = [
    "fwd",
    "map",
    "set",
    "table",
    "chain",
    "rule",
    "element",
    "flowtable",
    "counter",
    "accept",
    "drop",
    "jump",
    "goto",
    "return",
    "continue",
    "queue",
    "ip",
    "ip6",
    "inet",
    "arp",
    "bridge",
    "netdev",
    "ether",
    "vlan",
    "meta",
    "ct",
    "log",
    "limit",
    "reject",
    "policy",
    "type",
    "hook",
    "priority",
    "define",
    "include",
    "flush",
    "add",
    "delete",
    "insert",
    "replace",
    "list",
    "export",
    "monitor",
    "describe",
    "reset",
    "destroy",
  ];
  it("rejects every required nft keyword, naming it", () => {
    for (const kw of keywords)
      expect(messageOf(v.NftIdentifier, kw)).to.include(`nft keyword '${kw}'`);
  });
});

describe("validate: SysctlKey", () => {
  acceptTable(v.SysctlKey, [
    "net.ipv4.ip_forward",
    "net.ipv4.conf.veth0.proxy_arp",
    "net.ipv6.conf.br-vm1.disable_ipv6",
    "net.ipv4.conf.a@b.forwarding",
    ["net/ipv4/conf/all/forwarding", "net.ipv4.conf.all.forwarding"],
  ]);
  rejectTable(v.SysctlKey, [
    [
      "kernel.panic",
      /must start with "net\." \(hostnet only writes network sysctls\)/,
    ],
    ["vm.swappiness", /hostnet only writes network sysctls/],
    ["net", /must start with "net\."/],
    [
      "net.ipv4.conf.eth0/100.proxy_arp",
      /either '\.' or '\/' .* not both .*not supported/,
    ],
    ["net/../etc/passwd", /not both/],
    ["net..ipv4", /empty segments/],
    ["/net/ipv4/ip_forward", /empty segments/],
    ["net.ipv4.conf.-x.y", /segment "-x" must not start with '-'/],
    ["net.ipv4.ip_forward=1", /found '='/],
    [`net.${"a".repeat(200)}`, /at most 200 characters/],
  ]);
});

describe("validate: SysctlValue", () => {
  acceptTable(v.SysctlValue, [
    "1",
    "0",
    "-1",
    "32768 60999",
    "fq_codel",
    "1:2",
    "x".repeat(64),
  ]);
  rejectTable(v.SysctlValue, [
    [" 1", /must not start or end with a space/],
    ["1 ", /must not start or end with a space/],
    ["1\n", /newline/],
    ["1\t2", /a tab/],
    ["a;b", /found ';'/],
    [".", /must contain a letter or digit/],
    ["x".repeat(65), /at most 64 characters, got 65/],
  ]);
});

describe("validate: HostName", () => {
  acceptTable(v.HostName, [
    "host1",
    "host-1.example.com",
    "10.0.0.1",
    "::1",
    "fe80::1",
    `${"a".repeat(63)}.com`,
  ]);
  rejectTable(v.HostName, [
    ["-oProxyCommand=x", /found '='/],
    ["-host", /label "-host" must be 1–63/],
    ["host-", /label "host-"/],
    ["host_1", /found '_'/],
    ["a..b", /label ""/],
    ["01.2.3.4", /four decimal numbers/],
    ["x.123", /looks like an IPv4 address/],
    ["fe80::1%eth0", /host name must not carry a zone id/],
    [`${"a".repeat(64)}.com`, /must be 1–63/],
    ["a".repeat(254), /at most 253 characters, got 254/],
  ]);
});

describe("validate: UnixUser", () => {
  acceptTable(v.UnixUser, ["root", "deploy", "_svc", "a-b_1", "x".repeat(32)]);
  rejectTable(v.UnixUser, [
    ["Root", /lowercase letters, digits, '_' and '-', found 'R'/],
    ["1user", /must start with a lowercase letter or '_'/],
    ["-u", /must start with/],
    ["x".repeat(33), /at most 32 characters, got 33/],
  ]);
});

describe("validate: formatIssues / parseOrThrow", () => {
  const Stack = z.object({
    hosts: z.array(
      z.object({
        name: v.HostName,
        user: v.UnixUser,
        links: z.record(z.string(), v.IfName),
      }),
    ),
  });
  const bad = {
    hosts: [
      {
        name: "ok.example.com",
        user: "root",
        links: { "my-link": "x".repeat(16) },
      },
      { name: "$(reboot)", user: 7, links: {} },
    ],
  };

  it("formats dotted paths with [i] for array indices and quotes odd keys", () => {
    const r = Stack.safeParse(bad);
    expect(r.success).to.equal(false);
    if (r.success) return;
    expect(v.formatIssues(r.error, "stack")).to.deep.equal([
      'stack.hosts[0].links["my-link"]: interface name must be 1–15 bytes, got 16',
      "stack.hosts[1].name: host name may contain only letters, digits, '-' and '.' (or be an IP address), found '$'",
      "stack.hosts[1].user: expected unix user name as a string, got a number (7)",
    ]);
  });

  it("formats paths without a root, and the root value itself", () => {
    const r = Stack.safeParse(bad);
    expect(r.success, "the bad stack must be rejected").to.equal(false);
    if (r.success) return;
    expect(v.formatIssues(r.error)[1]).to.match(/^hosts\[1\]\.name: /);
    const top = v.IfName.safeParse("");
    expect(top.success, "an empty interface name must be rejected").to.equal(
      false,
    );
    if (top.success) return;
    expect(v.formatIssues(top.error)).to.deep.equal([
      "value: interface name must not be empty",
    ]);
    expect(v.formatIssues(top.error, "bridge")).to.deep.equal([
      "bridge: interface name must not be empty",
    ]);
  });

  it("parseOrThrow lists every issue, not just the first", () => {
    let caught: unknown;
    try {
      v.parseOrThrow(Stack, bad, "stack");
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(Error);
    expect(caught).to.be.instanceOf(v.ValidationError);
    const msg = (caught as Error).message;
    expect(msg.split("\n")[0]).to.equal("invalid stack:");
    expect(msg.split("\n").slice(1)).to.have.length(3);
    expect(msg).to.include(
      '  - stack.hosts[0].links["my-link"]: interface name must be 1–15 bytes, got 16',
    );
    expect(msg).to.include("  - stack.hosts[1].name: ");
    expect(msg).to.include("  - stack.hosts[1].user: ");
    expect((caught as v.ValidationError).issues).to.have.length(3);
  });

  it("parseOrThrow returns the parsed (canonicalized) value", () => {
    const mac: string = v.parseOrThrow(
      v.MacAddress,
      "52:54:00:AA:BB:CC",
      "mac",
    );
    expect(mac).to.equal("52:54:00:aa:bb:cc");
    const key: string = v.parseOrThrow(
      v.SysctlKey,
      "net/ipv4/ip_forward",
      "sysctl",
    );
    expect(key).to.equal("net.ipv4.ip_forward");
  });
});

describe("formatIssues: a record key that fails its own schema", () => {
  it("prints the key's reason, not zod's bare 'Invalid key in record'", () => {
    const Sysctls = z.record(
      v.SysctlKey.refine((k) => k.startsWith("net.ipv4."), {
        message: "only net.ipv4.* here",
      }),
      z.string(),
    );
    const r = Sysctls.safeParse({ "net.core.somaxconn": "1" });
    expect(r.success, "the foreign key must be rejected").to.equal(false);
    if (r.success) return;
    expect(v.formatIssues(r.error, "sysctls")).to.deep.equal([
      'sysctls["net.core.somaxconn"]: only net.ipv4.* here',
    ]);
  });
});
