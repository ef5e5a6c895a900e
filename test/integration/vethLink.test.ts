// VethLink lifecycle on lab host lab2 with the real engine: a bridged pair (host end a port of
// vlbr0 with seed-002 port flags, VM end in vlns1), in-place update, replace on moving an end to
// another namespace, the routed design of seed 003 (proved by a ping), drift and its repair,
// adoption of a hand-made pair, destroy, and invalid inputs. Everything is verified over a separate
// OpenSSH session. Objects are prefixed "vl"; other engineers share the host, so host comparisons
// only look at "vl" objects and the "vlns" namespaces.
//
// What the routed design needs (seed 003), as this test builds it:
//  - host end: no address at all, a /32 device route (scope link) to the VM address, proxy_arp=1
//    so that the namespace's ARP for any off-link address (its default route is a device route)
//    is answered with the host end's MAC; ip_forward=1 on the host when namespaces talk to each
//    other or to the outside (not needed for host <-> namespace, which is what the ping proves);
//  - namespace end: the VM address as a /32 and a default device route (0.0.0.0/0 dev <end>);
//  - the host sources its packets from its primary address (here 198.18.0.12 on mgmt0), which the
//    namespace reaches through its default route; no address on the host end is needed.
import { expect } from "chai";
import { VethLink, VethLinkArgs } from "../../providers/kinds/vethLink";
import { independentSnapshot, TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

type Spec = Omit<VethLinkArgs, "connection">;
interface Cfg {
  links: Record<string, Spec>;
}

const [NS1, NS2, BR] = ["vlns1", "vlns2", "vlbr0"];
const ROOT_LINKS = ["vlh0", "vlr0", "vlm0", "vlbad0"];

const bridged = (): Spec => ({
  a: { name: "vlh0", master: BR, portFlags: { learning: false, flood: false } },
  b: {
    name: "vlv0",
    netns: NS1,
    addresses: ["198.19.5.2/24"],
    mac: "02:00:00:00:05:02",
  },
});

const routed = (): Spec => ({
  a: { name: "vlr0", routes: [{ to: "198.19.6.2/32" }], proxyArp: true },
  b: {
    name: "vlr1",
    netns: NS1,
    addresses: ["198.19.6.2/32"],
    routes: [{ to: "0.0.0.0/0" }],
  },
});

function cleanup(h: LabHost): void {
  const dels = ROOT_LINKS.map((l) => `ip link del ${l} 2>/dev/null;`).join(" ");
  sshRun(
    h,
    `${dels} ip link del ${BR} 2>/dev/null; ip netns del ${NS1} 2>/dev/null; ip netns del ${NS2} 2>/dev/null; true`,
  );
}

/** `ip -j -d addr show` of one interface (link details plus addresses), or undefined. */
function linkOf(h: LabHost, name: string, netns?: string): any {
  const out = sshRun(
    h,
    `ip ${netns ? `-n ${netns} ` : ""}-j -d addr show dev ${name} 2>/dev/null || true`,
  ).trim();
  return out === "" ? undefined : JSON.parse(out)[0];
}

const addrsOf = (l: any): string[] =>
  (l?.addr_info ?? [])
    .filter((a: any) => a.family === "inet")
    .map((a: any) => `${a.local}/${a.prefixlen}`)
    .sort();

/** Bridge port timers tick on their own; they are not state anyone set. */
function withoutTimers(l: any): any {
  if (!l.port) return l;
  return {
    ...l,
    port: Object.fromEntries(
      Object.entries(l.port).filter(([k]) => !k.endsWith("_timer")),
    ),
  };
}

/** The part of the host this test may touch: "vl" links and fdb rows in root, and the vlns namespaces. */
function mine(h: LabHost): unknown {
  const snap = independentSnapshot(h) as Record<string, any>;
  const root = snap["(root)"];
  return {
    links: root.links.filter((l: any) => /^vl/.test(l.name)).map(withoutTimers),
    fdb: root.fdb.filter((e: string) =>
      e.split(" ").some((t) => /^vl/.test(t)),
    ),
    [NS1]: snap[NS1] ?? null,
    [NS2]: snap[NS2] ?? null,
    routes: sshRun(h, "ip route show | grep -E '^198\\.19\\.[5-7]\\.' || true"),
  };
}

/** The error text of an engine run that must fail. */
async function failureOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    const e = err as {
      message?: string;
      commandResult?: { stdout?: string; stderr?: string };
    };
    return [e.message, e.commandResult?.stdout, e.commandResult?.stderr].join(
      "\n",
    );
  }
  throw new Error("expected the engine run to fail, but it succeeded");
}

/**
 * The preview text of one resource's step. The dynamic provider passes no detailed diff to the
 * engine, so neither the event metadata nor the update step names changed keys; the refresh step's
 * text shows, field by field, how the live state differs from the recorded one.
 */
function stepText(stdout: string, op: string, res: string): string {
  const lines = stdout.split("\n");
  const start = lines.findIndex(
    (l, i) =>
      l.trimEnd().endsWith(`: (${op})`) &&
      lines.slice(i + 1, i + 3).some((n) => n.includes(`::${res}]`)),
  );
  if (start < 0) return "";
  const end = lines.findIndex(
    (l, i) => i > start + 1 && /: \([a-z-]+\)$/.test(l.trim()),
  );
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

function ping(h: LabHost, addr: string): boolean {
  return /1 received/.test(sshRun(h, `ping -c1 -W1 ${addr} 2>&1 || true`));
}

describe("VethLink lifecycle on a lab host", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<Cfg>;
  let baseline: unknown;

  before(async () => {
    h = labUp(3).hosts[1];
    cleanup(h);
    // A fixed MAC and MTU keep the bridge from following its ports, so before/after compare equal.
    sshRun(
      h,
      `ip netns add ${NS1} && ip netns add ${NS2} && ip link add ${BR} type bridge && ` +
        `ip link set ${BR} address 02:00:00:00:0b:01 mtu 1500 up`,
    );
    baseline = mine(h);
    stack = new TestStack<Cfg>("test-vethlink", { links: {} }, async (cfg) => {
      const out: Record<string, unknown> = {};
      for (const [key, spec] of Object.entries(cfg.links)) {
        const l = new VethLink(key, { connection: labConnection(h), ...spec });
        out[key] = { id: l.id, created: l.created };
      }
      return out;
    });
    await stack.destroy(); // state left by an interrupted run; its objects were cleaned up above
  });

  after(async () => {
    await stack?.dispose();
    if (h) cleanup(h);
  });

  it("creates a bridged pair: host end a flagged port of vlbr0, VM end in vlns1", async () => {
    stack.config = { links: { br: bridged() } };
    const up = await stack.up();
    expect(up.ops.br).to.equal("create");
    expect(up.outputs.br).to.deep.include({ id: "veth/-/vlh0", created: true });
    const host = linkOf(h, "vlh0");
    expect(host.master).to.equal(BR);
    expect(host.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
    expect(host.flags).to.include("UP");
    expect(host.linkinfo.info_slave_data).to.include({
      learning: false,
      flood: false,
    });
    const vm = linkOf(h, "vlv0", NS1);
    expect(vm.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
    expect(vm.address).to.equal("02:00:00:00:05:02");
    expect(addrsOf(vm)).to.deep.equal(["198.19.5.2/24"]);
    expect(vm.link_index, "vlv0's peer is vlh0").to.equal(host.ifindex);
    expect(host.link_index, "vlh0's peer is vlv0").to.equal(vm.ifindex);
  });

  it("reads back exactly what it set: a refresh preview finds no drift", async () => {
    const pre = await stack.preview({ refresh: true, expectNoChanges: true });
    expect(pre.ops.br).to.equal("same");
  });

  it("changes addresses, a port flag and the MTU in place (update, not replace)", async () => {
    const next = bridged();
    next.a = {
      name: "vlh0",
      master: BR,
      portFlags: { learning: true, flood: false },
    };
    next.b = {
      name: "vlv0",
      netns: NS1,
      addresses: ["198.19.5.2/24", "198.19.5.3/24"],
      mac: "02:00:00:00:05:02",
    };
    next.mtu = 1400;
    stack.config = { links: { br: next } };
    const host0 = linkOf(h, "vlh0");
    const pre = await stack.preview();
    expect(pre.ops.br).to.equal("update");
    const up = await stack.up();
    expect(up.ops.br).to.equal("update");
    const host = linkOf(h, "vlh0");
    const vm = linkOf(h, "vlv0", NS1);
    expect(host.ifindex, "same interface, not a new one").to.equal(
      host0.ifindex,
    );
    expect(host.linkinfo.info_slave_data).to.include({
      learning: true,
      flood: false,
    });
    expect([host.mtu, vm.mtu]).to.deep.equal([1400, 1400]);
    expect(addrsOf(vm)).to.deep.equal(["198.19.5.2/24", "198.19.5.3/24"]);
  });

  it("replaces the pair when an end moves to another namespace", async () => {
    const next = stack.config.links.br;
    stack.config = {
      links: {
        br: {
          ...next,
          b: {
            name: "vlv0",
            netns: NS2,
            addresses: ["198.19.5.2/24", "198.19.5.3/24"],
            mac: "02:00:00:00:05:02",
          },
        },
      },
    };
    const pre = await stack.preview();
    expect(pre.ops.br).to.equal("replace");
    const up = await stack.up();
    expect(up.ops.br).to.equal("replace");
    expect(linkOf(h, "vlv0", NS1), "gone from vlns1").to.equal(undefined);
    const vm = linkOf(h, "vlv0", NS2);
    expect(addrsOf(vm)).to.deep.equal(["198.19.5.2/24", "198.19.5.3/24"]);
    expect(vm.mtu).to.equal(1400);
    const host = linkOf(h, "vlh0");
    expect(host.master).to.equal(BR);
    expect(host.linkinfo.info_slave_data).to.include({
      learning: true,
      flood: false,
    });
    expect(vm.link_index).to.equal(host.ifindex);
  });

  it("routes to a namespace (seed 003): /32 device route, proxy ARP, and the host can ping it", async () => {
    stack.config = { links: { ...stack.config.links, rt: routed() } };
    const up = await stack.up();
    expect(up.ops).to.include({ rt: "create", br: "same" });
    const [route] = sshJson(h, "ip -j route show 198.19.6.2/32");
    expect(route).to.include({ dev: "vlr0", scope: "link" });
    expect(route.gateway).to.equal(undefined);
    expect(
      sshRun(h, "cat /proc/sys/net/ipv4/conf/vlr0/proxy_arp").trim(),
    ).to.equal("1");
    expect(addrsOf(linkOf(h, "vlr0"))).to.deep.equal([]);
    expect(sshJson(h, `ip -n ${NS1} -j route show default`)[0]).to.include({
      dev: "vlr1",
      scope: "link",
    });
    expect(
      ping(h, "198.19.6.2"),
      "ping 198.19.6.2 from the lab host's root namespace",
    ).to.equal(true);
  });

  it("sees drift (port unenslaved, addresses flushed, a pair deleted) and up repairs it", async () => {
    sshRun(
      h,
      `ip link set vlh0 nomaster && ip -n ${NS2} addr flush dev vlv0 && ip link del vlr0`,
    );
    const pre = await stack.preview({ refresh: true });
    expect(pre.ops.br).to.equal("update");
    const drift = stepText(pre.stdout, "refresh", "br");
    expect(drift, "refresh shows the lost master").to.match(
      /~ a\s*: \{[\s\S]*- master\s*: "vlbr0"/,
    );
    expect(drift, "refresh shows the flushed addresses").to.match(
      /~ b\s*: \{[\s\S]*- \[0\]: "198\.19\.5\.2\/24"/,
    );
    expect(
      stepText(pre.stdout, "refresh", "rt"),
      "refresh shows the deleted pair",
    ).to.match(/^\s*- a\s*: \{/m);
    expect(pre.ops.rt).to.equal("create");
    const up = await stack.up({ refresh: true }); // the repair plans from the live state
    expect(up.ops).to.include({ br: "update", rt: "create" });
    const host = linkOf(h, "vlh0");
    expect(host.master).to.equal(BR);
    expect(host.linkinfo.info_slave_data).to.include({
      learning: true,
      flood: false,
    });
    expect(addrsOf(linkOf(h, "vlv0", NS2))).to.deep.equal([
      "198.19.5.2/24",
      "198.19.5.3/24",
    ]);
    expect(
      sshRun(h, "cat /proc/sys/net/ipv4/conf/vlr0/proxy_arp").trim(),
    ).to.equal("1");
    expect(ping(h, "198.19.6.2"), "routed namespace reachable again").to.equal(
      true,
    );
    const again = await stack.preview({ refresh: true, expectNoChanges: true });
    expect(again.ops).to.include({ br: "same", rt: "same" });
  });

  it("refuses to take over an existing pair without adopt, then adopts it untouched and releases it", async () => {
    sshRun(
      h,
      `ip link add vlm0 type veth peer name vlm1 netns ${NS1} && ip link set vlm0 up && ` +
        `ip -n ${NS1} link set vlm1 up && ip -n ${NS1} addr add 198.19.7.2/24 dev vlm1`,
    );
    try {
      await adoptAndRelease();
    } finally {
      sshRun(h, "ip link del vlm0 2>/dev/null || true");
    }
  });

  async function adoptAndRelease(): Promise<void> {
    const before = mine(h);
    const adopted: Spec = {
      a: { name: "vlm0" },
      b: { name: "vlm1", netns: NS1, addresses: ["198.19.7.2/24"] },
    };
    stack.config = { links: { ...stack.config.links, adopted } };
    const refused = await failureOf(stack.up());
    expect(refused).to.match(
      /vlm0 in the root namespace and vlm1 in netns vlns1 already exist\b/,
    );
    expect(refused).to.match(/set adopt: true/);
    expect(mine(h), "a refused create changes nothing").to.deep.equal(before);

    stack.config = {
      links: { ...stack.config.links, adopted: { ...adopted, adopt: true } },
    };
    const up = await stack.up();
    expect(up.ops.adopted).to.equal("create");
    expect(up.outputs.adopted).to.deep.include({
      id: "veth/-/vlm0",
      created: false,
    });
    expect(mine(h), "adoption changes nothing on the host").to.deep.equal(
      before,
    );
    await stack.preview({ refresh: true, expectNoChanges: true });

    const { adopted: _released, ...rest } = stack.config.links;
    stack.config = { links: rest };
    const rel = await stack.up();
    expect(rel.ops.adopted).to.equal("delete");
    expect(
      mine(h),
      "releasing an adopted pair leaves it in place",
    ).to.deep.equal(before);
  }

  it("destroy leaves the host as it was", async () => {
    await stack.destroy();
    expect(mine(h)).to.deep.equal(baseline);
  });

  it("undoes a create whose later step fails: nothing half-made is left", async () => {
    const before = mine(h);
    stack.config = {
      links: {
        half: {
          a: { name: "vlbad0", master: "vlnobr0" },
          b: { name: "vlbad1", netns: NS1, addresses: ["198.19.8.2/24"] },
        },
      },
    };
    const failure = await failureOf(stack.up());
    expect(failure).to.match(/could not configure veth end vlbad0/);
    expect(failure).to.match(/vlnobr0/);
    expect(mine(h)).to.deep.equal(before);
  });

  const invalid: Array<[string, Spec, RegExp]> = [
    [
      "a 16-character interface name",
      { a: { name: "vlaaaaaaaaaaaaaa" }, b: { name: "vlbad1" } },
      /a\.name: interface name must be 1–15 bytes, got 16/,
    ],
    [
      "an impossible address",
      {
        a: { name: "vlbad0" },
        b: { name: "vlbad1", addresses: ["300.1.1.1/24"] },
      },
      /b\.addresses\[0\]: .*0–255/,
    ],
    [
      "port flags without a master",
      {
        a: { name: "vlbad0", portFlags: { learning: false } },
        b: { name: "vlbad1" },
      },
      /a\.portFlags: .*set master/,
    ],
    [
      "a route destination with host bits",
      {
        a: { name: "vlbad0", routes: [{ to: "198.19.6.5/24" }] },
        b: { name: "vlbad1" },
      },
      /a\.routes\[0\]\.to: .*here 198\.19\.6\.0\/24/,
    ],
    [
      "both ends the same interface",
      { a: { name: "vlbad0", netns: NS1 }, b: { name: "vlbad0", netns: NS1 } },
      /b\.name: both ends are vlbad0 in netns vlns1/,
    ],
  ];
  for (const [what, spec, message] of invalid) {
    it(`rejects ${what} at preview, naming the field, host unchanged`, async () => {
      const before = mine(h);
      stack.config = { links: { bad: spec } };
      expect(await failureOf(stack.preview())).to.match(message);
      expect(mine(h)).to.deep.equal(before);
    });
  }
});
