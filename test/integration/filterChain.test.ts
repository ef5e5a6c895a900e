// FilterChain lifecycle with the real engine on lab1: two "VMs" (namespaces fcvmA/fcvmB) on a bridge
// in namespace fcns1, filtered by a FilterChain; every claim is checked through a separate OpenSSH
// session, the anti-spoofing one functionally (pings that must pass or fail).
import { expect } from "chai";
import {
  FilterChain,
  FilterChainArgs,
} from "../../providers/kinds/filterChain";
import type { FilterChainSpecInput } from "../../providers/kinds/filterChain";
import { namespacesSnapshot, TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

type PortInput = FilterChainSpecInput["ports"][number];
type ChainConfig = Omit<FilterChainArgs, "connection">;
interface Config {
  chains: Record<string, ChainConfig>;
}

const NS = "fcns1";
const MY_NAMESPACES = [NS, "fcvmA", "fcvmB"];
const MAC_A = "02:00:00:00:09:01";
const IP_A = "198.19.9.1";
const IP_B = "198.19.9.2";

const VM_A: PortInput = {
  port: "fcp0",
  policy: "clean-traffic",
  mac: MAC_A,
  ipv4: [IP_A],
};
const VM_B: PortInput = { port: "fcp1", policy: "accept-all" };

const SETUP = `set -e
ip netns add fcns1; ip netns add fcvmA; ip netns add fcvmB
for ns in fcns1 fcvmA fcvmB; do
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n $ns link set lo up
done
ip -n fcns1 link add fcbr0 type bridge
ip -n fcns1 link set fcbr0 up
ip -n fcns1 link add fcp0 type veth peer name fcvm0 netns fcvmA
ip -n fcns1 link add fcp1 type veth peer name fcvm1 netns fcvmB
for p in fcp0 fcp1; do ip -n fcns1 link set $p master fcbr0 up; done
ip -n fcvmA link set fcvm0 address 02:00:00:00:09:01
ip -n fcvmB link set fcvm1 address 02:00:00:00:09:02
ip -n fcvmA addr add 198.19.9.1/24 dev fcvm0
ip -n fcvmB addr add 198.19.9.2/24 dev fcvm1
ip -n fcvmA link set fcvm0 up
ip -n fcvmB link set fcvm1 up`;

const TEARDOWN =
  "for ns in fcvmA fcvmB fcns1; do ip netns del $ns 2>/dev/null; done; true";

interface NftDoc {
  nftables: Array<Record<string, any>>;
}

describe("FilterChain: bridge nftables filters on a lab host", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<Config>;
  let baseline: Record<string, unknown>;
  let firstDigest = "";

  const inNs = (cmd: string, opts: { allowFail?: boolean } = {}) =>
    sshRun(h, `ip netns exec ${NS} ${cmd}`, opts);
  const listTable = (t: string): NftDoc =>
    sshJson(h, `ip netns exec ${NS} nft -j list table bridge ${t}`);
  const tables = (): string => inNs("nft list tables");
  const mine = () => namespacesSnapshot(h, MY_NAMESPACES);
  const chain = (
    extra: Partial<ChainConfig> & { ports: PortInput[] },
  ): ChainConfig => ({ netns: NS, ...extra });

  /** true when at least one of two pings from fcvmA to fcvmB is answered. */
  function pingAB(): boolean {
    const out = sshRun(
      h,
      `ip netns exec fcvmA ping -n -q -c 2 -i 0.2 -W 1 ${IP_B}`,
      { allowFail: true },
    );
    return /\b[1-9]\d* received/.test(out);
  }

  function mapElems(doc: NftDoc, name: string): unknown[] {
    const m = doc.nftables.find((o) => o.map?.name === name)?.map;
    expect(m, `map ${name}`).to.not.equal(undefined);
    return m.elem ?? [];
  }

  function rulesOf(doc: NftDoc, chainName: string): any[] {
    return doc.nftables
      .filter((o) => o.rule?.chain === chainName)
      .map((o) => o.rule);
  }

  /** The chain a map sends a port to. */
  function targetOf(doc: NftDoc, map: string, port: string): string {
    const e = mapElems(doc, map).find((x: any) => x[0] === port) as any;
    expect(e, `${map} element ${port}`).to.not.equal(undefined);
    return e[1].jump.target;
  }

  async function failure(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (err) {
      return String(err);
    }
    throw new Error("expected the engine to fail, but it succeeded");
  }

  before(async () => {
    h = labUp(3).hosts[0];
    sshRun(h, TEARDOWN);
    sshRun(h, `sh -c '${SETUP}'`);
    stack = new TestStack<Config>("test-filter", { chains: {} }, async (c) => {
      const out: Record<string, unknown> = {};
      for (const [name, args] of Object.entries(c.chains)) {
        const r = new FilterChain(name, {
          connection: labConnection(h),
          ...args,
        });
        out[name] = {
          id: r.id,
          appliedDigest: r.appliedDigest,
          chains: r.chains,
          portCount: r.portCount,
          created: r.created,
        };
      }
      return out;
    });
    baseline = mine();
  });

  after(async () => {
    await stack?.dispose();
    if (h) sshRun(h, TEARDOWN, { allowFail: true });
  });

  it("before any filter, A reaches B (the lab wiring works)", () => {
    expect(pingAB()).to.equal(true);
  });

  it("up creates one table with verdict maps and vmap dispatch", async () => {
    stack.config = { chains: { main: chain({ ports: [VM_A, VM_B] }) } };
    const up = await stack.up();
    expect(up.ops.main).to.equal("create");
    const out = up.outputs.main as any;
    expect(out.id).to.equal(`nft/${NS}/bridge/hostnet`);
    expect(out.appliedDigest).to.match(/^[0-9a-f]{64}$/);
    firstDigest = out.appliedDigest;
    expect(out.portCount).to.equal(2);
    expect(out.chains).to.include.members(["forward_hook", "input_hook"]);

    const doc = listTable("hostnet");
    expect(mapElems(doc, "from_vm")).to.have.length(2);
    expect(mapElems(doc, "to_vm")).to.have.length(2);
    const rules = rulesOf(doc, "forward_hook");
    const fwd = rules.map((r) => r.expr[0].vmap?.data);
    // between the two dispatches broadcast ARP is accepted: both ports' to-vm chains return it
    expect(fwd).to.deep.equal(["@from_vm", undefined, "@to_vm"]);
    expect(rules[1].expr.some((e: object) => "accept" in e)).to.equal(true);
    expect(
      doc.nftables.find((o) => o.chain?.name === "forward_hook")?.chain,
    ).to.include({ hook: "forward", policy: "accept" });
    expect(inNs("nft list table bridge hostnet")).to.match(
      /^table bridge hostnet \{\n\s*comment "hostnet:[0-9a-f]{8}-[0-9a-f]{10}"$/m,
    );
  });

  it("a refreshing preview right after up sees no drift", async () => {
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("clean-traffic: A reaches B; with a spoofed MAC it does not", () => {
    expect(pingAB(), "ping with the real MAC").to.equal(true);
    sshRun(h, "ip -n fcvmA link set fcvm0 address 02:00:00:00:09:99");
    try {
      expect(pingAB(), "ping with a spoofed MAC").to.equal(false);
    } finally {
      sshRun(h, `ip -n fcvmA link set fcvm0 address ${MAC_A}`);
    }
    expect(pingAB(), "ping after restoring the MAC").to.equal(true);
  });

  it("a port's own from-vm accept rule does not let a spoofed frame through", async () => {
    const icmp = {
      direction: "from-vm",
      action: "accept",
      proto: "icmp",
    } as const;
    stack.config = {
      chains: { main: chain({ ports: [{ ...VM_A, rules: [icmp] }, VM_B] }) },
    };
    expect((await stack.up()).ops.main).to.equal("update");
    expect(pingAB(), "ping with the real MAC").to.equal(true);
    sshRun(h, "ip -n fcvmA link set fcvm0 address 02:00:00:00:09:99");
    try {
      expect(
        pingAB(),
        "ping with a spoofed MAC, icmp accepted by the port's rule",
      ).to.equal(false);
    } finally {
      sshRun(h, `ip -n fcvmA link set fcvm0 address ${MAC_A}`);
    }
  });

  it("changing ports and rules is an in-place update, applied atomically", async () => {
    const noSsh = {
      direction: "to-vm",
      action: "drop",
      proto: "tcp",
      dport: 22,
      comment: "fc no ssh",
    } as const;
    stack.config = {
      chains: {
        main: chain({
          ports: [
            { ...VM_A, rules: [noSsh] },
            { ...VM_B, policy: "drop-all" },
          ],
        }),
      },
    };
    const pv = await stack.preview();
    expect(pv.ops.main).to.equal("update");
    const up = await stack.up();
    expect(up.ops.main).to.equal("update");
    expect((up.outputs.main as any).appliedDigest).to.not.equal(firstDigest);

    const doc = listTable("hostnet");
    const bOut = rulesOf(doc, targetOf(doc, "to_vm", "fcp1"));
    expect(bOut.some((r) => r.expr.some((e: any) => "drop" in e))).to.equal(
      true,
    );
    const aOut = rulesOf(doc, targetOf(doc, "to_vm", "fcp0"));
    expect(aOut.map((r) => r.comment)).to.include("fc no ssh");
    expect(pingAB(), "B is drop-all now").to.equal(false);
  });

  it("changing the table name replaces it: old table gone, new one present", async () => {
    stack.config.chains.main = { ...stack.config.chains.main, table: "fctab2" };
    expect((await stack.preview()).ops.main).to.equal("replace");
    const up = await stack.up();
    expect(up.ops.main).to.equal("replace");
    expect((up.outputs.main as any).id).to.equal(`nft/${NS}/bridge/fctab2`);
    const t = tables();
    expect(t).to.contain("table bridge fctab2");
    expect(t).to.not.contain("table bridge hostnet");
    expect(pingAB()).to.equal(false);
  });

  it("an out-of-band flush shows as drift of inSync, and up repairs it", async () => {
    inNs("nft flush table bridge fctab2");
    expect(pingAB(), "no rules left after the flush").to.equal(true);
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.main).to.equal("update");
    expect(pv.diffs.main ?? []).to.include("inSync");
    await stack.refresh();
    expect((await stack.up()).ops.main).to.equal("update");
    expect(rulesOf(listTable("fctab2"), "forward_hook")).to.have.length(2);
    expect(pingAB(), "filter back in force").to.equal(false);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("an out-of-band delete of the table shows as create, and up repairs it", async () => {
    inNs("nft delete table bridge fctab2");
    expect((await stack.preview({ refresh: true })).ops.main).to.equal(
      "create",
    );
    await stack.refresh();
    expect((await stack.up()).ops.main).to.equal("create");
    expect(tables()).to.contain("table bridge fctab2");
    expect(pingAB()).to.equal(false);
  });

  it("raw: valid text is applied; text nft -c rejects fails with nft's error and changes nothing", async () => {
    const rawOk = "chain fc_extra {\n\tcounter\n}";
    stack.config.chains.raw = chain({
      table: "fcraw",
      ports: [{ port: "fcx0", policy: "accept-all" }],
      raw: rawOk,
    });
    await stack.up();
    const rawDoc = sshRun(
      h,
      `ip netns exec ${NS} nft -j list table bridge fcraw`,
    );
    expect(
      JSON.parse(rawDoc).nftables.some(
        (o: any) => o.chain?.name === "fc_extra",
      ),
    ).to.equal(true);

    const bad = "chain fc_extra {\n\tcounter nonsense\n}";
    const snap = mine();
    stack.config.chains.rawbad = chain({
      table: "fcrawbad",
      ports: [{ port: "fcx1", policy: "accept-all" }],
      raw: bad,
    });
    const msg = await failure(stack.up());
    expect(msg)
      .to.match(/nft -c/)
      .and.to.match(/syntax error/);
    expect(mine()).to.deep.equal(snap);
    delete stack.config.chains.rawbad;

    stack.config.chains.raw = { ...stack.config.chains.raw, raw: bad };
    expect(await failure(stack.up())).to.match(/syntax error/);
    expect(
      sshRun(h, `ip netns exec ${NS} nft -j list table bridge fcraw`),
    ).to.equal(rawDoc);
    stack.config.chains.raw = { ...stack.config.chains.raw, raw: rawOk };
    await stack.up();
  });

  it("a table made by hand is refused without adopt, recorded untouched with adopt", async () => {
    inNs(
      "sh -c 'nft add table bridge fcadopt && nft add chain bridge fcadopt fc_keep'",
    );
    const handMade = inNs("nft list table bridge fcadopt");
    const ports: PortInput[] = [{ port: "fcy0", policy: "accept-all" }];
    stack.config.chains.foreign = chain({ table: "fcadopt", ports });
    expect(await failure(stack.up()))
      .to.match(/fcadopt already exists/)
      .and.to.match(/adopt: true/);
    delete stack.config.chains.foreign;
    stack.config.chains.adopted = chain({
      table: "fcadopt",
      ports,
      adopt: true,
    });
    const up = await stack.up();
    expect(up.ops.adopted).to.equal("create");
    expect((up.outputs.adopted as any).created).to.equal(false);
    expect(inNs("nft list table bridge fcadopt")).to.equal(handMade);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("300 ports apply in one transaction as one map of 300 elements", async () => {
    const ports: PortInput[] = Array.from({ length: 300 }, (_, i) =>
      i % 10 === 0
        ? {
            port: `fcq${i}`,
            policy: "clean-traffic",
            mac: `02:00:00:01:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
            ipv4: [`198.19.10.${i % 250}`],
          }
        : { port: `fcq${i}`, policy: i % 2 ? "accept-all" : "drop-all" },
    );
    stack.config.chains.big = chain({ table: "fcbig", ports });
    const t0 = Date.now();
    const up = await stack.up();
    console.log(`      (300-port FilterChain up: ${Date.now() - t0} ms)`);
    expect(up.ops.big).to.equal("create");
    expect((up.outputs.big as any).portCount).to.equal(300);
    const doc = listTable("fcbig");
    expect(mapElems(doc, "from_vm")).to.have.length(300);
    expect(mapElems(doc, "to_vm")).to.have.length(300);
    expect(doc.nftables.filter((o) => o.chain)).to.have.length(602);
    expect(rulesOf(doc, "forward_hook")).to.have.length(2);
    delete stack.config.chains.big;
    expect((await stack.up()).ops.big).to.equal("delete");
    expect(tables()).to.not.contain("fcbig");
  });

  it("destroy removes what hostnet made and leaves the adopted table", async () => {
    const handMade = inNs("nft list table bridge fcadopt");
    await stack.destroy();
    expect(inNs("nft list table bridge fcadopt")).to.equal(handMade);
    inNs("nft delete table bridge fcadopt");
    expect(mine()).to.deep.equal(baseline);
  });

  const invalid: Array<[string, ChainConfig, RegExp]> = [
    [
      "a duplicate port",
      chain({ ports: [VM_B, { port: "fcp1", policy: "drop-all" }] }),
      /ports\[1\]\.port: duplicate port "fcp1"/,
    ],
    [
      "the table name fwd",
      chain({ table: "fwd", ports: [VM_B] }),
      /table: nft identifier must not be the nft keyword 'fwd'/,
    ],
    [
      "the port a;b",
      chain({ ports: [{ port: "a;b", policy: "accept-all" }] }),
      /ports\[0\]\.port: /,
    ],
    [
      "a bad mac",
      chain({ ports: [{ ...VM_A, mac: "02:00:00:00:09" }] }),
      /ports\[0\]\.mac: /,
    ],
  ];
  for (const [what, cfg, field] of invalid) {
    it(`${what} fails at preview naming the field; the host is unchanged`, async () => {
      const snap = mine();
      stack.config = { chains: { bad: cfg } };
      expect(await failure(stack.preview())).to.match(field);
      expect(mine()).to.deep.equal(snap);
    });
  }
});
