// The management-path check (issue 12, class 1), pure part: reading the host's answer and finding
// the addresses and routes that equal or capture the SSH peer, its gateway or the host's own
// management address. The integration test (safety.test.ts) runs it at preview on a lab host.
import { expect } from "chai";
import {
  AddressUse,
  covers,
  managementCollisions,
  ManagementPath,
  managementTouch,
  marksOf,
  parseManagementPath,
} from "../../providers/host";

const OUTPUT = [
  "@@peer 192.0.2.50",
  "@@get",
  '[{"dst":"192.0.2.50","gateway":"10.1.0.1","dev":"eth0","prefsrc":"10.1.0.7","flags":[],"uid":0,"cache":[]}]',
  "@@routes",
  '[{"dst":"default","gateway":"10.1.0.1","dev":"eth0","flags":[]},{"dst":"10.1.0.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.1.0.7","flags":[]}]',
  '[{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]',
  "[]",
  "@@addr",
  '[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.1.0.7","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]',
  "",
].join("\n");

/** One case per use: each refused one names its field and matches, each accepted one is not refused. */
function judgeEach(
  mp: () => ManagementPath,
  refused: ReadonlyArray<[AddressUse, RegExp]>,
  accepted: readonly AddressUse[],
): void {
  for (const [u, why] of refused) {
    it(`refuses ${u.path} = ${u.value}${u.rootNs ? "" : " (in a VM namespace)"}`, () => {
      const found = managementCollisions(mp(), [u], "h1");
      expect(found).to.have.length(1);
      expect(found[0][0]).to.equal(u.path);
      expect(found[0][1])
        .to.match(why)
        .and.to.match(/refused it at preview and changed nothing on h1/);
    });
  }
  for (const u of accepted) {
    it(`accepts ${u.path} = ${u.value}${u.rootNs ? "" : " (in a VM namespace)"}`, () =>
      expect(managementCollisions(mp(), [u], "h1")).to.deep.equal([]));
  }
}

describe("management path", () => {
  let mp: ManagementPath;
  before(() => {
    mp = parseManagementPath(OUTPUT)!;
  });

  it("reads the peer, its interface, the route in use, the gateways and the management addresses", () => {
    expect(mp).to.deep.equal({
      peer: "192.0.2.50",
      dev: "eth0",
      peerRoute: "0.0.0.0/0",
      gateways: ["10.1.0.1"],
      addresses: ["10.1.0.7", "fe80::1"],
    });
  });

  it("is undefined when the session shows no peer (then nothing is refused)", () => {
    expect(
      parseManagementPath("@@peer \n@@get\n@@routes\n[]\n@@addr\n[]\n"),
    ).to.equal(undefined);
  });

  it("covers", () => {
    expect(covers("192.0.2.0/24", "192.0.2.50")).to.equal(true);
    expect(covers("192.0.2.0/26", "192.0.2.50")).to.equal(true);
    expect(covers("192.0.2.64/26", "192.0.2.50")).to.equal(false);
    expect(covers("0.0.0.0/0", "192.0.2.50")).to.equal(true);
    expect(covers("::/0", "192.0.2.50")).to.equal(false);
  });

  const use = (
    path: string,
    value: string,
    kind: "address" | "route" = "address",
    rootNs = true,
  ): AddressUse => ({ path, value, kind, rootNs });
  const refused: Array<[AddressUse, RegExp]> = [
    [
      use("b.addresses[0]", "192.0.2.50/32", "address", false),
      /SSH peer 192\.0\.2\.50/,
    ],
    [
      use("addresses[0]", "10.1.0.1/24", "address", false),
      /gateway 10\.1\.0\.1/,
    ],
    [
      use("neighbours[0]", "10.1.0.7"),
      /own management address 10\.1\.0\.7 on eth0/,
    ],
    [use("ports[0].ipv4[0]", "192.0.2.50", "address", false), /SSH peer/],
    [
      use("a.routes[0].to", "192.0.2.50/32", "route"),
      /take over the route to the address hostnet connects from/,
    ],
    [use("a.routes[0].to", "192.0.2.0/24", "route"), /take over the route/],
    [
      use("a.routes[0].to", "10.1.0.1/32", "route"),
      /take over the route to h1's gateway/,
    ],
    [use("a.routes[0].to", "0.0.0.0/0", "route"), /take over the route/],
    [use("a.addresses[0]", "192.0.2.9/24"), /take over the route/],
  ];
  const accepted: AddressUse[] = [
    use("b.addresses[0]", "198.19.10.11/24", "address", false),
    use("b.routes[0].to", "0.0.0.0/0", "route", false), // the VM namespace's own default route
    use("b.addresses[0]", "192.0.2.9/24", "address", false), // a prefix in a VM namespace captures nothing of the host's
    use("a.routes[0].to", "198.19.10.11/32", "route"),
    use("neighbours[0]", "10.1.0.8"),
  ];
  judgeEach(() => mp, refused, accepted);

  it("a shorter prefix than the route in use does not capture the peer", () => {
    const direct: ManagementPath = {
      ...mp,
      peerRoute: "192.0.2.0/24",
      gateways: [],
    };
    expect(
      managementCollisions(
        direct,
        [use("a.routes[0].to", "192.0.0.0/16", "route")],
        "h1",
      ),
    ).to.deep.equal([]);
    expect(
      managementCollisions(
        direct,
        [use("a.routes[0].to", "192.0.2.0/25", "route")],
        "h1",
      ),
    ).to.have.length(1);
  });
});

// The one helper both guards ask (HostBridge: does an interface hold the address SSH targets;
// VethLink: does a root-namespace route or address step touch the path read from the host).
describe("managementTouch", () => {
  const mp: ManagementPath = {
    peer: "192.0.2.50",
    dev: "eth0",
    peerRoute: "0.0.0.0/0",
    gateways: ["10.1.0.1"],
    addresses: ["10.1.0.7"],
  };
  const marks = marksOf(mp);

  it("marksOf: the interface; the peer, the gateways and the own addresses", () =>
    expect(marks).to.deep.equal({
      devs: ["eth0"],
      addresses: ["192.0.2.50", "10.1.0.1", "10.1.0.7"],
    }));

  const cases: Array<
    [
      string,
      { devs?: string[]; prefixes?: string[] },
      "address" | "prefix",
      string | undefined,
    ]
  > = [
    [
      "a token naming the management interface",
      { devs: ["route", "add", "eth0"] },
      "prefix",
      "eth0",
    ],
    [
      "a prefix containing the peer",
      { prefixes: ["192.0.2.0/24"] },
      "prefix",
      "192.0.2.50",
    ],
    ["a /32 on the gateway", { prefixes: ["10.1.0.1"] }, "prefix", "10.1.0.1"],
    ["a default route", { prefixes: ["0.0.0.0/0"] }, "prefix", "192.0.2.50"],
    [
      "a VM's /32 elsewhere",
      { devs: ["veth0"], prefixes: ["198.19.10.11/32"] },
      "prefix",
      undefined,
    ],
    [
      "an IPv6 prefix (another family)",
      { prefixes: ["::/0"] },
      "prefix",
      undefined,
    ],
    [
      "an interface holding the own address",
      { prefixes: ["fe80::1/64", "10.1.0.7/24"] },
      "address",
      "10.1.0.7",
    ],
    [
      "an interface whose prefix merely contains the address",
      { prefixes: ["10.1.0.9/24"] },
      "address",
      undefined,
    ],
    ["nothing touched", {}, "address", undefined],
  ];
  for (const [what, touched, match, expected] of cases) {
    it(`${what} (${match}): ${expected ?? "untouched"}`, () =>
      expect(managementTouch(marks, touched, match)).to.equal(expected));
  }
});

// The management interface as a bridge (the uplink enslaved, the address on the bridge): the port
// the session crosses is the one where the bridge learned the next hop's MAC.
const BRIDGED = [
  "@@peer 192.0.2.50",
  "@@get",
  '[{"dst":"192.0.2.50","gateway":"10.1.0.1","dev":"br0","prefsrc":"10.1.0.7","flags":[],"uid":0,"cache":[]}]',
  "@@routes",
  '[{"dst":"default","gateway":"10.1.0.1","dev":"br0","flags":[]},{"dst":"10.1.0.0/24","dev":"br0","protocol":"kernel","scope":"link","prefsrc":"10.1.0.7","flags":[]}]',
  "[]",
  "@@addr",
  '[{"ifindex":2,"ifname":"eth0","master":"br0","addr_info":[]},{"ifindex":3,"ifname":"br0","addr_info":[{"family":"inet","local":"10.1.0.7","prefixlen":24}]}]',
  "@@neigh",
  '[{"dst":"10.1.0.1","lladdr":"52:54:00:AA:00:01","state":["REACHABLE"]},{"dst":"10.1.0.20","lladdr":"52:54:00:aa:00:20","state":["STALE"]}]',
  "@@fdb",
  '[{"mac":"33:33:00:00:00:01","ifname":"br0","flags":["self"],"state":"permanent"},{"mac":"52:54:00:aa:00:01","ifname":"eth0","flags":[],"master":"br0","state":""},{"mac":"52:54:00:aa:00:20","ifname":"tap-vm1","flags":[],"master":"br0","state":""}]',
  "",
].join("\n");

describe("management path through a bridge, and the interfaces a resource names", () => {
  const mp = parseManagementPath(BRIDGED)!;
  const use = (path: string, value: string, rootNs = true): AddressUse => ({
    path,
    value,
    kind: "interface",
    rootNs,
  });

  it("reads the bridge port the session crosses (where the gateway's MAC was learned), not the VM ports", () => {
    expect(mp.dev).to.equal("br0");
    expect(mp.crossed).to.deep.equal(["eth0"]);
    expect(marksOf(mp).devs).to.deep.equal(["br0", "eth0"]);
  });

  it("no neighbour or forwarding table read (not a bridge): nothing crossed", () =>
    expect(parseManagementPath(OUTPUT)!.crossed).to.equal(undefined));

  const refused: Array<[AddressUse, RegExp]> = [
    [use("ports[0].port", "br0"), /br0 is h1's management interface/],
    [
      use("ports[1].port", "eth0"),
      /eth0 is the port of bridge br0 \(h1's management interface\) that the SSH session crosses/,
    ],
    [use("a.name", "br0"), /management interface/],
  ];
  const accepted: AddressUse[] = [
    use("ports[0].port", "tap-vm1"), // a VM's port on the management bridge: what filters are for
    use("ports[0].port", "eth0", false), // an eth0 in a VM namespace is another interface
    use("b.name", "br0", false),
  ];
  judgeEach(() => mp, refused, accepted);
});
