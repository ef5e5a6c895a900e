// ArpAnswer lifecycle with the real engine on lab1: three "VMs" (namespaces aavA/aavB/aavC) on a
// bridge in namespace aans1; the table answers A's broadcast requests at A's port. Every claim is
// checked through a separate OpenSSH session: the table as nft lists it, A's neighbour cache, and
// counters at B's and C's interfaces that see every request the bridge floods to them.
import { expect } from "chai";
import { ArpAnswer, ArpAnswerArgs } from "../../providers/kinds/arpAnswer";
import { failureOf, namespacesSnapshot, TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

type AnswerConfig = Omit<ArpAnswerArgs, "connection">;
interface Config {
  tables: Record<string, AnswerConfig>;
}

const NS = "aans1";
const MY_NAMESPACES = [NS, "aavA", "aavB", "aavC"];
const MAC = (n: number) => `02:00:00:00:0a:0${n}`;
const IP = (n: number) => `198.19.10.${n}`;
// An address no VM has: only the table can answer for it.
const GHOST = { ip: IP(9), mac: "02:00:00:00:0a:99" };

const SETUP = `set -e
ip netns add ${NS}
ip -n ${NS} link set lo up
ip -n ${NS} link add aabr0 type bridge
ip -n ${NS} link set aabr0 up
for vn in A1 B2 C3; do
  v=\${vn%?}; n=\${vn#?}
  ip netns add aav$v
  ip netns exec aav$v sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n ${NS} link add aap$v type veth peer name eth0 netns aav$v
  ip -n ${NS} link set aap$v master aabr0 up
  ip -n aav$v link set eth0 address 02:00:00:00:0a:0$n
  ip -n aav$v addr add 198.19.10.$n/24 dev eth0
  ip -n aav$v link set eth0 up
done`;

const TEARDOWN = `for ns in aavA aavB aavC ${NS}; do ip netns del $ns 2>/dev/null; done; true`;

describe("ArpAnswer: broadcast ARP answered at the asking port (netdev table, lab1)", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<Config>;
  let baseline: unknown;

  const inNs = (cmd: string) => sshRun(h, `ip netns exec ${NS} ${cmd}`);
  const listTable = (t: string) =>
    sshJson(h, `ip netns exec ${NS} nft -j list table netdev ${t}`)
      .nftables as Array<Record<string, any>>;
  const mine = () => namespacesSnapshot(h, MY_NAMESPACES);
  const answering = (extra: Partial<AnswerConfig> = {}): AnswerConfig => ({
    netns: NS,
    table: "hnarp",
    ports: ["aapA"],
    entries: [
      { ip: IP(2), mac: MAC(2) },
      { ip: IP(3), mac: MAC(3) },
    ],
    ...extra,
  });

  /** Counts ARP requests for `ip` reaching VM `v`'s interface from now on. */
  const requestsSeenBy = (v: string, ip: string) => {
    sshRun(
      h,
      `ip netns exec aav${v} sh -c 'nft delete table netdev seen 2>/dev/null; nft -f -' <<'EOF'
table netdev seen {
  counter n {}
  chain ingress { type filter hook ingress device "eth0" priority -500; policy accept;
    ether type arp arp operation request arp daddr ip ${ip} counter name "n"
  }
}
EOF`,
    );
    return () =>
      sshJson(
        h,
        `ip netns exec aav${v} nft -j list counter netdev seen n`,
      ).nftables.find((i: any) => i.counter).counter.packets as number;
  };
  /** A resolves `ip` afresh (one broadcast request); returns the MAC in A's cache, if any. */
  const resolveFromA = (ip: string): string => {
    sshRun(
      h,
      `ip -n aavA neigh flush all; ip netns exec aavA ping -n -q -c 1 -W 1 ${ip}`,
      { allowFail: true },
    );
    return (
      /lladdr (\S+)/.exec(sshRun(h, `ip -n aavA neigh show ${ip}`))?.[1] ?? ""
    );
  };

  before(async () => {
    h = labUp(3).hosts[0];
    sshRun(h, TEARDOWN);
    baseline = mine();
    sshRun(h, `sh -c '${SETUP}'`);
    stack = new TestStack<Config>(
      "test-arpanswer",
      { tables: {} },
      async (c) => {
        const out: Record<string, unknown> = {};
        for (const [name, args] of Object.entries(c.tables)) {
          const r = new ArpAnswer(name, {
            connection: labConnection(h),
            ...args,
          });
          out[name] = { id: r.id, chains: r.chains, portCount: r.portCount };
        }
        return out;
      },
    );
  });

  after(async () => {
    await stack?.dispose();
    if (h) sshRun(h, TEARDOWN, { allowFail: true });
  });

  it("before any table, A's request for B is flooded to C (the control the checks rely on)", () => {
    const atC = requestsSeenBy("C", IP(2));
    expect(resolveFromA(IP(2))).to.equal(MAC(2));
    expect(atC(), "requests for B that reached C").to.be.greaterThan(0);
  });

  it("up creates the netdev table: one ingress chain on A's port, the IP→MAC map, the owner comment", async () => {
    stack.config = { tables: { main: answering() } };
    const up = await stack.up();
    expect(up.ops.main).to.equal("create");
    expect(up.outputs.main).to.deep.include({
      id: `nft/${NS}/netdev/hnarp`,
      chains: ["ingress_0"],
      portCount: 1,
    });
    const items = listTable("hnarp");
    const chain = items.find((o) => o.chain)?.chain;
    expect(chain).to.include({ hook: "ingress", name: "ingress_0" });
    // nft 1.0.6 leaves a netdev chain's devices out of its JSON; the text listing has them.
    expect(inNs("nft list chain netdev hnarp ingress_0")).to.match(
      /hook ingress device "aapA" priority filter/,
    );
    const map = items.find((o) => o.map?.name === "ip2mac")?.map;
    expect(map.elem).to.deep.equal([
      [IP(2), MAC(2)],
      [IP(3), MAC(3)],
    ]);
    expect(inNs("nft list table netdev hnarp")).to.match(
      /^table netdev hnarp \{\n\s*comment "hostnet:[0-9a-f]{8}-[0-9a-f]{10}"$/m,
    );
  });

  it("a refreshing preview right after up sees no drift", async () => {
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("A's request for B is answered at A's port: A has B's MAC, and neither B nor C saw the request", () => {
    const atB = requestsSeenBy("B", IP(2));
    const atC = requestsSeenBy("C", IP(2));
    expect(resolveFromA(IP(2))).to.equal(MAC(2));
    expect(atB(), "requests for B that reached B").to.equal(0);
    expect(atC(), "requests for B that reached C").to.equal(0);
    // B's own requests do not pass A's port: they are flooded as before.
    const fromB = requestsSeenBy("C", IP(1));
    sshRun(
      h,
      `ip -n aavB neigh flush all; ip netns exec aavB ping -n -q -c 1 -W 1 ${IP(1)}`,
    );
    expect(fromB(), "B's requests for A that reached C").to.be.greaterThan(0);
  });

  it("changing the entries is an in-place update: A now gets the table's answer for an address nobody has", async () => {
    expect(resolveFromA(GHOST.ip), "before: nobody answers").to.equal("");
    stack.config = {
      tables: {
        main: answering({
          entries: [...(answering().entries as any[]), GHOST],
        }),
      },
    };
    expect((await stack.preview()).ops.main).to.equal("update");
    expect((await stack.up()).ops.main).to.equal("update");
    expect(resolveFromA(GHOST.ip)).to.equal(GHOST.mac);
  });

  it("an element deleted out of band shows as drift of inSync, and up repairs it", async () => {
    inNs(`nft delete element netdev hnarp ip2mac { ${IP(2)} }`);
    const atC = requestsSeenBy("C", IP(2));
    expect(resolveFromA(IP(2))).to.equal(MAC(2));
    expect(
      atC(),
      "with the element gone, the request is flooded",
    ).to.be.greaterThan(0);
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.main).to.equal("update");
    expect(pv.diffs.main ?? []).to.include("inSync");
    await stack.up({ refresh: true });
    const again = requestsSeenBy("C", IP(2));
    expect(resolveFromA(IP(2))).to.equal(MAC(2));
    expect(again(), "answered at A's port again").to.equal(0);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("a port hooked by hand shows as drift of ports (nft's JSON leaves hooks out), and up unhooks it", async () => {
    const hooked = () =>
      /hook ingress (device "[^"]+"|devices = \{ [^}]* \})/.exec(
        inNs("nft list chain netdev hnarp ingress_0"),
      )?.[1];
    expect(hooked(), "as applied").to.equal('device "aapA"');
    inNs(
      `nft add chain netdev hnarp ingress_0 '{ type filter hook ingress devices = { aapA, aapB } priority filter; }'`,
    );
    expect(hooked(), "B's port hooked by hand").to.equal(
      "devices = { aapA, aapB }",
    );
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.main).to.equal("update");
    expect(pv.diffs.main ?? []).to.include("ports");
    await stack.up({ refresh: true });
    expect(hooked(), "only A's port again").to.equal('device "aapA"');
    // B's request for C is no longer answered at B's port: the bridge floods it to C.
    const atC = requestsSeenBy("C", IP(3));
    sshRun(
      h,
      `ip -n aavB neigh flush all; ip netns exec aavB ping -n -q -c 1 -W 1 ${IP(3)}`,
      { allowFail: true },
    );
    expect(atC(), "B's request reaches C").to.be.greaterThan(0);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("a table deleted out of band shows as create, and up repairs it", async () => {
    inNs("nft delete table netdev hnarp");
    expect((await stack.preview({ refresh: true })).ops.main).to.equal(
      "create",
    );
    await stack.up({ refresh: true });
    expect(
      listTable("hnarp").some((o) => o.chain?.hook === "ingress"),
    ).to.equal(true);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("a table of the same name made by hand is refused without adopt and left untouched", async () => {
    inNs("nft add table netdev aaforeign");
    const handMade = inNs("nft list table netdev aaforeign");
    stack.config.tables.foreign = answering({ table: "aaforeign" });
    expect(await failureOf(stack.up()))
      .to.match(/aaforeign already exists/)
      .and.to.match(/adopt: true/);
    expect(inNs("nft list table netdev aaforeign")).to.equal(handMade);
    delete stack.config.tables.foreign;
    inNs("nft delete table netdev aaforeign");
  });

  const invalid: Array<[string, AnswerConfig, RegExp]> = [
    [
      "an IP listed twice",
      answering({
        entries: [
          { ip: IP(2), mac: MAC(2) },
          { ip: IP(2), mac: MAC(3) },
        ],
      }),
      /entries\[1\]\.ip: IP 198\.19\.10\.2 is listed twice/,
    ],
    ["a port name with a quote", answering({ ports: ['a"b'] }), /ports\[0\]: /],
    [
      "no port",
      answering({ ports: [] }),
      /ports: at least one port is required/,
    ],
  ];
  for (const [what, cfg, field] of invalid) {
    it(`${what} fails at preview naming the field; the host is unchanged`, async () => {
      const snap = mine();
      const good = stack.config.tables.main;
      stack.config = { tables: { main: good, bad: cfg } };
      expect(await failureOf(stack.preview())).to.match(field);
      expect(mine()).to.deep.equal(snap);
      stack.config = { tables: { main: good } };
    });
  }

  it("destroy removes the table; with the wiring gone the namespaces are as before", async () => {
    await stack.destroy();
    expect(inNs("nft list tables")).to.not.contain("hnarp");
    sshRun(h, TEARDOWN);
    expect(mine()).to.deep.equal(baseline);
  });
});
