// Addresses that make no sense (issue 12, class 2), as tables shared by the unit test (pure
// validation, check()) and the integration test (preview against a lab host, full snapshot diff).

/** [input, what the message must say] */
export type Case = [string, RegExp];

export const NOT_OWNABLE_V4: Case[] = [
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

export const NOT_OWNABLE_V6: Case[] = [
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

/** MACs no VM interface can have, or that are not MACs at all: [input, what the message must say]. */
export const UNUSABLE_MACS: Case[] = [
  ["01:00:5e:00:00:01", /multicast/],
  ["ff:ff:ff:ff:ff:ff", /multicast/],
  ["33:33:00:00:00:01", /multicast/],
  ["03:00:00:00:00:01", /multicast/],
  ["00:00:00:00:00:00", /not a usable address/],
  ["52:54:00:zz:00:01", /only hex digits/],
  ["52:54:00:00:00", /six two-digit hex octets/],
  ["52-54-00-00-00-01", /only hex digits/],
  ["52:54:00:00:00:01; reboot", /at most 17 characters/],
];

/** VM names that would reach interface names, resource names or a shell. */
export const HOSTILE_VM_NAMES: Case[] = [
  ["web1; reboot", /VM name must be/],
  ["../etc", /VM name must be/],
  ["-rf", /VM name must be/],
  ["a".repeat(64), /VM name must be/],
  ["web\n1", /VM name must be/],
  ["$(id)", /VM name must be/],
  ["vm 1", /VM name must be/],
];

export const OWNABLE: string[] = [
  "198.19.10.11/24",
  "10.0.0.1/8",
  "198.19.10.13/30",
  "198.19.10.0/31",
  "198.19.10.1/31",
  "198.19.10.0/32",
  "198.19.10.255/32",
  "100.64.0.1/10",
  "fd00:1::1/64",
  "2001:db8::2/127",
  "2001:db8::/128",
  "fd00::ffff:ffff/64",
];

export const veth = (
  bEnd: Record<string, unknown>,
): Record<string, unknown> => ({
  a: { name: "hv-x" },
  b: { name: "eth0", netns: "vm-x", ...bEnd },
});
/** [resource kind, field the refusal must name, props without connection, what the message must say] */
export const RESOURCE_CASES: Array<
  [string, string, Record<string, unknown>, RegExp]
> = [
  [
    "VethLink",
    "b.addresses[0]",
    veth({ addresses: ["127.0.0.2/8"] }),
    /loopback/,
  ],
  [
    "VethLink",
    "b.addresses[0]",
    veth({ addresses: ["198.19.5.0/24"] }),
    /network address/,
  ],
  [
    "VethLink",
    "b.addresses[0]",
    veth({ addresses: ["ff02::1/64"] }),
    /multicast/,
  ],
  [
    "VethLink",
    "b.addresses[0]",
    veth({ addresses: ["0.0.0.0/0"] }),
    /prefix length 0/,
  ],
  [
    "VethLink",
    "b.addresses[1]",
    veth({ addresses: ["198.19.5.2/24", "169.254.3.3/16"] }),
    /link-local; set linkLocal: true on b/,
  ],
  [
    "VethLink",
    "b.addresses[0]",
    veth({ addresses: ["fe80::2/64"] }),
    /link-local/,
  ],
  [
    "VethLink",
    "b.routes[0].to",
    veth({ routes: [{ to: "127.0.0.0/8" }] }),
    /loopback/,
  ],
  [
    "VethLink",
    "b.routes[0].to",
    veth({ routes: [{ to: "::1/128" }] }),
    /loopback/,
  ],
  [
    "VethLink",
    "b.routes[0].via",
    veth({ routes: [{ to: "0.0.0.0/0", via: "224.0.0.1" }] }),
    /multicast/,
  ],
  [
    "VethLink",
    "b.routes[0].via",
    veth({ routes: [{ to: "0.0.0.0/0", via: "0.0.0.0" }] }),
    /unspecified/,
  ],
  [
    "MacvlanPort",
    "addresses[0]",
    { name: "mv-x", lower: "eth1", addresses: ["198.19.7.255/24"] },
    /broadcast address/,
  ],
  [
    "MacvlanPort",
    "addresses[0]",
    { name: "mv-x", lower: "eth1", addresses: ["::/128"] },
    /unspecified/,
  ],
  [
    "MacvlanPort",
    "addresses[0]",
    { name: "mv-x", lower: "eth1", addresses: ["169.254.9.9/16"] },
    /link-local; set linkLocal: true/,
  ],
  [
    "FdbEntry",
    "neighbours[0]",
    {
      bridge: "br0",
      port: "tap-x",
      mac: "52:54:00:00:00:01",
      neighbours: ["255.255.255.255"],
    },
    /broadcast/,
  ],
  [
    "FdbEntry",
    "neighbours[1]",
    {
      bridge: "br0",
      port: "tap-x",
      mac: "52:54:00:00:00:01",
      neighbours: ["198.19.1.2", "127.0.0.1"],
    },
    /loopback/,
  ],
  [
    "FilterChain",
    "ports[0].ipv4[0]",
    {
      table: "hostnet",
      ports: [
        {
          port: "tap-x",
          policy: "clean-traffic",
          mac: "52:54:00:00:00:01",
          ipv4: ["224.1.1.1"],
        },
      ],
    },
    /multicast/,
  ],
  [
    "FilterChain",
    "ports[0].ipv6[0]",
    {
      table: "hostnet",
      ports: [
        {
          port: "tap-x",
          policy: "clean-traffic",
          mac: "52:54:00:00:00:01",
          ipv6: ["ff02::1"],
        },
      ],
    },
    /multicast/,
  ],
  [
    "FilterChain",
    "ports[0].ipv4[0]",
    {
      table: "hostnet",
      ports: [
        {
          port: "tap-x",
          policy: "clean-traffic",
          mac: "52:54:00:00:00:01",
          ipv4: ["127.0.0.1"],
        },
      ],
    },
    /loopback/,
  ],
  [
    "FilterChain",
    "ports[0].ipv6[0]",
    {
      table: "hostnet",
      ports: [
        {
          port: "tap-x",
          policy: "clean-traffic",
          mac: "52:54:00:00:00:01",
          ipv6: ["::"],
        },
      ],
    },
    /unspecified/,
  ],
  [
    "FdbEntry",
    "neighbours[0]",
    {
      bridge: "br0",
      port: "tap-x",
      mac: "52:54:00:00:00:01",
      neighbours: ["0.0.0.0"],
    },
    /unspecified/,
  ],
  [
    "FdbEntry",
    "neighbours[0]",
    {
      bridge: "br0",
      port: "tap-x",
      mac: "52:54:00:00:00:01",
      neighbours: ["169.254.1.1"],
    },
    /link-local/,
  ],
  [
    "MacvlanPort",
    "addresses[0]",
    { name: "mv-x", lower: "eth1", addresses: ["239.1.2.3/32"] },
    /multicast/,
  ],
  [
    "VethLink",
    "a.routes[0].to",
    {
      a: { name: "hv-x", routes: [{ to: "0.0.0.0/8" }] },
      b: { name: "eth0", netns: "vm-x" },
    },
    /this network/,
  ],
  [
    "VethLink",
    "a.routes[0].via",
    {
      a: {
        name: "hv-x",
        routes: [{ to: "198.19.6.0/24", via: "255.255.255.255" }],
      },
      b: { name: "eth0", netns: "vm-x" },
    },
    /broadcast/,
  ],
  // Every IPv6 address no guest can own, as the address of a veth end.
  ...NOT_OWNABLE_V6.map(
    ([cidr, why]): [string, string, Record<string, unknown>, RegExp] => [
      "VethLink",
      "b.addresses[0]",
      veth({ addresses: [cidr] }),
      why,
    ],
  ),
];
