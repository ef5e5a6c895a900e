// Safety (issue 12) against a lab host with the real engine: senseless addresses in stack config
// and in every resource that takes one are refused at preview with the field named, and the host
// is unchanged by a full snapshot diff (test/support/harness.ts fullSnapshot).
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig } from "../../stacks/config";
import { FdbEntry } from "../../providers/kinds/fdbEntry";
import { FilterChain } from "../../providers/kinds/filterChain";
import { MacvlanPort } from "../../providers/kinds/macvlanPort";
import { VethLink } from "../../providers/kinds/vethLink";
import { VmNetns } from "../../providers/kinds/vmNetns";
import {
  MANAGEMENT_PATH_SCRIPT,
  managementCollisions,
  parseManagementPath,
} from "../../providers/host";
import {
  failureOf,
  fullSnapshot,
  snapshotDiff,
  TestStack,
} from "../support/harness";
import {
  labConnection,
  LabHost,
  labUp,
  privateKey,
  sshJson,
  sshRun,
} from "../support/lab";
import {
  HOSTILE_VM_NAMES,
  NOT_OWNABLE_V4,
  RESOURCE_CASES,
  UNUSABLE_MACS,
} from "../support/badAddresses";

const CLASSES: Record<
  string,
  new (name: string, args: any) => pulumi.Resource
> = { VethLink, MacvlanPort, FdbEntry, FilterChain };

/** [resource kind, field the refusal must name, props without connection, what the message must say] */
type ResourceCase = [string, string, Record<string, unknown>, RegExp];

/**
 * Previews each case on its own (the engine stops a preview at the first resource whose check
 * fails, measured) and asserts the refusal names the field; returns how many were refused.
 */
async function refusedOneByOne(
  name: string,
  h: LabHost,
  cases: readonly ResourceCase[],
): Promise<number> {
  const stack = new TestStack(name, 0, async (i) => {
    const [kind, , props] = cases[i];
    new CLASSES[kind](`case${i}`, { connection: labConnection(h), ...props });
  });
  let refused = 0;
  try {
    for (let i = 0; i < cases.length; i++) {
      const [kind, field, , why] = cases[i];
      stack.config = i;
      const text = await failureOf(stack.preview());
      const line = text
        .split("\n")
        .find((l) => l.includes(`${field}: `) && why.test(l));
      expect(
        line,
        `case ${i}: ${kind} ${field} not refused with ${why}:\n${text}`,
      ).to.be.a("string");
      refused++;
    }
  } finally {
    await stack.dispose();
  }
  return refused;
}

/** Figures for the README, printed once at the end. */
const tried = { stackConfig: 0, resources: 0 };

describe("safety: senseless addresses are refused at preview and change nothing", function () {
  this.timeout(600_000);
  let h: LabHost;
  let baseline: Record<string, any>;

  before(() => {
    h = labUp(2).hosts[0];
    baseline = fullSnapshot(h);
  });

  after(() =>
    console.log(
      `      figures: ${tried.stackConfig} stack-config inputs and ${tried.resources} resource inputs refused, host unchanged`,
    ),
  );

  it("stack config: every VM address no guest can own, every unusable MAC and every hostile VM name is refused, each with its field named", async () => {
    // One preview reports every problem of a config, so each VM carries a senseless address and,
    // the first ones, an unusable MAC or a hostile name as well: every one must be named.
    const names = HOSTILE_VM_NAMES.map(([n]) => n);
    const firstNamed = NOT_OWNABLE_V4.length - names.length;
    const vms = NOT_OWNABLE_V4.map(([cidr], i) => ({
      name: i >= firstNamed ? names[i - firstNamed] : `b${i}`,
      host: "lab1",
      attachment: "routed",
      ipv4: [cidr],
      mac:
        UNUSABLE_MACS[i]?.[0] ??
        `52:54:00:00:12:${i.toString(16).padStart(2, "0")}`,
    }));
    const raw = {
      hosts: [
        { name: "lab1", address: h.address, port: h.port, hostKey: h.hostKey },
      ],
      vms,
    };
    const stack = new TestStack("test-safety-config", raw, async (cfg) =>
      deployFleet(parseStackConfig(cfg), pulumi.secret(privateKey())),
    );
    try {
      const text = await failureOf(stack.preview());
      NOT_OWNABLE_V4.forEach(([cidr, why], i) => {
        const line = text
          .split("\n")
          .find((l) => l.includes(`vms[${i}].ipv4[0]: `));
        expect(
          line,
          `no problem reported for vms[${i}].ipv4[0] = ${cidr}:\n${text}`,
        ).to.be.a("string");
        expect(line).to.match(why).and.to.include(cidr);
      });
      const named = (field: string, why: RegExp, what: string) =>
        expect(
          text.split("\n").find((l) => l.includes(`${field}: `) && why.test(l)),
          `no problem reported for ${field} = ${JSON.stringify(what)}:\n${text}`,
        ).to.be.a("string");
      UNUSABLE_MACS.forEach(([mac, why], i) =>
        named(`vms[${i}].mac`, why, mac),
      );
      HOSTILE_VM_NAMES.forEach(([name, why], k) =>
        named(`vms[${firstNamed + k}].name`, why, name),
      );
      expect(text).to.include("nothing was applied");
      tried.stackConfig +=
        NOT_OWNABLE_V4.length + UNUSABLE_MACS.length + HOSTILE_VM_NAMES.length;
    } finally {
      await stack.dispose();
    }
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });

  it("resources: VethLink, MacvlanPort, FdbEntry and FilterChain refuse them, each field named (one input per field through the engine)", async () => {
    // Every case goes through the runtime's check in test/unit/addresses.test.ts; through the
    // engine, one case per (kind, field) proves each field's refusal reaches the operator.
    const oneEach = RESOURCE_CASES.filter(
      ([kind, field], i) =>
        RESOURCE_CASES.findIndex(([k, f]) => k === kind && f === field) === i,
    );
    tried.resources += await refusedOneByOne(
      "test-safety-resources",
      h,
      oneEach,
    );
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });
});

describe("safety: a managed MAC table is the whole set", function () {
  this.timeout(600_000);
  const [NS, BR, MAC, HIJACK, IP, STRANGER_IP] = [
    "sfns1",
    "sfbr0",
    "02:00:00:00:5f:01",
    "02:00:00:00:5f:66",
    "198.19.40.2",
    "198.19.40.99",
  ];
  const PORT_MAC = "02:00:00:00:5f:10"; // the kernel's own (permanent) entry for the port's MAC is not anyone's config
  let h: LabHost;
  let stack: TestStack<{ on: boolean }>;
  let baseline: Record<string, any>;
  const sh = (cmd: string) => sshRun(h, `ip netns exec ${NS} ${cmd}`);
  /** Static fdb rows on the managed port (but the port's own), through a separate OpenSSH session. */
  const portRows = (): string[] =>
    sshJson<any[]>(h, `ip netns exec ${NS} bridge -j fdb show br ${BR}`)
      .filter(
        (r) =>
          r.ifname === "sfp0" &&
          r.master === BR &&
          r.mac !== PORT_MAC &&
          (r.state === "static" || r.state === "permanent") &&
          !(r.flags ?? []).includes("self"),
      )
      .map((r) => r.mac)
      .sort();
  const neighbours = (): string[] =>
    sshJson<any[]>(h, `ip -n ${NS} -j neigh show dev ${BR} nud permanent`)
      .map((n) => `${n.dst} ${n.lladdr}`)
      .sort();

  before(async () => {
    h = labUp(2).hosts[1];
    stack = new TestStack<{ on: boolean }>(
      "test-safety-fdb",
      { on: false },
      async (cfg) => {
        if (!cfg.on) return;
        new FdbEntry("managed", {
          connection: labConnection(h),
          bridge: BR,
          port: "sfp0",
          mac: MAC,
          netns: NS,
          neighbours: [IP],
          exclusive: true,
        });
      },
    );
    await stack.clearLeftovers(); // state left by an interrupted run
    sshRun(
      h,
      [
        `ip netns del ${NS} 2>/dev/null; ip netns add ${NS}`,
        `ip -n ${NS} link add ${BR} type bridge`,
        `ip -n ${NS} link set ${BR} address 02:00:00:00:5f:bb up`,
        `ip -n ${NS} link add sfp0 address ${PORT_MAC} type veth peer name sfq0`,
        `ip -n ${NS} link set sfp0 master ${BR} up`,
        `bridge -n ${NS} link set dev sfp0 learning off flood off`,
      ].join(" && "),
    );
    baseline = fullSnapshot(h);
  });

  after(async () => {
    await stack?.dispose();
    if (h) sshRun(h, `ip netns del ${NS}`, { allowFail: true });
  });

  it("an out-of-band entry on the managed port is drift; up --refresh removes it; destroy leaves the host as before", async () => {
    stack.config = { on: true };
    await stack.up();
    expect(portRows()).to.deep.equal([MAC]);
    await stack.preview({ refresh: true, expectNoChanges: true }); // the drift gate is clean

    // A MAC hijack and a stranger ARP answer for the VM's MAC, made by hand.
    sh(`bridge fdb add ${HIJACK} dev sfp0 master static`);
    sh(`ip neigh replace ${STRANGER_IP} lladdr ${MAC} dev ${BR} nud permanent`);
    expect(portRows()).to.deep.equal([MAC, HIJACK]);

    const gate = await failureOf(
      stack.preview({ refresh: true, expectNoChanges: true }),
    );
    expect(gate).to.match(/exclusive/);
    expect(gate).to.include(STRANGER_IP);

    await stack.up({ refresh: true });
    expect(
      portRows(),
      "the hijack entry is gone, the managed one stays",
    ).to.deep.equal([MAC]);
    expect(neighbours()).to.deep.equal([`${IP} ${MAC}`]);
    await stack.preview({ refresh: true, expectNoChanges: true });

    await stack.destroy();
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });
});

describe("safety: addresses that would cut the management path are refused at preview", function () {
  this.timeout(600_000);
  let h: LabHost;
  let baseline: Record<string, any>;
  let peer: string;
  let gateway: string;
  let collisions = 0;

  before(() => {
    h = labUp(2).hosts[0];
    // What the host sees, read independently: the SSH peer and the host's management address.
    peer = sshRun(h, 'echo "${SSH_CONNECTION%% *}"').trim();
    gateway = h.address.replace(/\.\d+$/, ".1");
    baseline = fullSnapshot(h);
  });

  after(() =>
    console.log(
      `      figures: ${collisions} management-path collisions refused at preview, host unchanged`,
    ),
  );

  it("a routed VM given the SSH peer's address (the incident of issue 12) is refused with the field named", async () => {
    expect(peer, "the lab's SSH peer is the lab bridge's address").to.equal(
      gateway,
    );
    const vm = {
      name: "mp1",
      host: "lab1",
      attachment: "routed",
      ipv4: [`${peer}/24`],
      mac: "52:54:00:00:13:01",
    };
    const raw = {
      hosts: [
        { name: "lab1", address: h.address, port: h.port, hostKey: h.hostKey },
      ],
      vms: [vm],
    };
    const stack = new TestStack("test-safety-mgmt-config", raw, async (cfg) =>
      deployFleet(parseStackConfig(cfg), pulumi.secret(privateKey())),
    );
    try {
      const text = await failureOf(stack.preview());
      expect(text).to.match(
        new RegExp(
          `a\\.routes\\[0\\]\\.to: ${peer.replace(/\./g, "\\.")}/32 would take over the route to the address hostnet connects from \\(the SSH peer ${peer.replace(/\./g, "\\.")}`,
        ),
      );
      expect(text).to.include("changed nothing");
      collisions++;
    } finally {
      await stack.dispose();
    }
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });

  it("every resource refuses the peer, and the host's own management address, with the field named", async () => {
    const cases: ResourceCase[] = [
      [
        "VethLink",
        "a.routes[0].to",
        {
          a: { name: "mp-h0", routes: [{ to: `${peer}/32` }] },
          b: { name: "eth0", netns: "mp-ns" },
        },
        /SSH peer/,
      ],
      [
        "VethLink",
        "b.addresses[0]",
        {
          a: { name: "mp-h0" },
          b: { name: "eth0", netns: "mp-ns", addresses: [`${peer}/32`] },
        },
        /SSH peer/,
      ],
      [
        "VethLink",
        "b.addresses[0]",
        {
          a: { name: "mp-h0" },
          b: { name: "eth0", netns: "mp-ns", addresses: [`${h.address}/24`] },
        },
        /own management address/,
      ],
      [
        "VethLink",
        "a.addresses[0]",
        {
          a: {
            name: "mp-h0",
            addresses: [`${h.address.replace(/\.\d+$/, ".200")}/24`],
          },
          b: { name: "eth0", netns: "mp-ns" },
        },
        /take over the route/,
      ],
      [
        "MacvlanPort",
        "addresses[0]",
        {
          name: "mp-mv",
          lower: "mgmt0",
          netns: "mp-ns",
          addresses: [`${peer}/24`],
        },
        /SSH peer/,
      ],
      // A macvlan on the management interface in the host's root namespace (issue 12, #1): the
      // host's own address or the peer on it would take the session's replies.
      [
        "MacvlanPort",
        "addresses[0]",
        { name: "mp-mv", lower: "mgmt0", addresses: [`${h.address}/24`] },
        /own management address/,
      ],
      [
        "MacvlanPort",
        "addresses[0]",
        { name: "mp-mv", lower: "mgmt0", addresses: [`${peer}/32`] },
        /SSH peer/,
      ],
      // A VM filter on the management interface, and a veth end (where proxy_arp / forwarding
      // go) named like it in the root namespace.
      [
        "FilterChain",
        "ports[0].port",
        {
          table: "hostnet",
          ports: [
            {
              port: "mgmt0",
              policy: "clean-traffic",
              mac: "52:54:00:00:13:03",
            },
          ],
        },
        /mgmt0 is .*'s management interface/,
      ],
      [
        "VethLink",
        "a.name",
        {
          a: { name: "mgmt0", proxyArp: true, forwarding: true },
          b: { name: "eth0", netns: "mp-ns" },
        },
        /mgmt0 is .*'s management interface/,
      ],
      [
        "FdbEntry",
        "neighbours[0]",
        {
          bridge: "mp-br",
          port: "mp-p",
          mac: "52:54:00:00:13:02",
          neighbours: [peer],
        },
        /SSH peer/,
      ],
      [
        "FilterChain",
        "ports[0].ipv4[0]",
        {
          table: "hostnet",
          ports: [
            {
              port: "mp-p",
              policy: "clean-traffic",
              mac: "52:54:00:00:13:02",
              ipv4: [h.address],
            },
          ],
        },
        /own management address/,
      ],
    ];
    collisions += await refusedOneByOne("test-safety-mgmt", h, cases);
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });

  it("a management interface that is a bridge: the read names the port the session crosses (the lab's own bridge, real kernel)", () => {
    // The lab's bridge in this machine's root namespace is a management bridge as a host with its
    // uplink enslaved has one: seen from here, lab1 is reached through it, over lab1's veth. The
    // read runs unchanged (read-only: ip route get, ip neigh, bridge fdb) with lab1 as the peer.
    const inv = labUp(2);
    sshRun(h, "true"); // traffic from lab1, so the bridge has learned its MAC on the port
    const out = execFileSync("sh", ["-s"], {
      input: MANAGEMENT_PATH_SCRIPT,
      env: { ...process.env, SSH_CONNECTION: `${h.address} 50000 ${peer} 22` },
    }).toString();
    const mp = parseManagementPath(out)!;
    expect(mp.dev).to.equal(inv.bridge);
    expect(mp.crossed).to.deep.equal([h.rootVeth]);
    const [[field, why]] = managementCollisions(
      mp,
      [
        {
          path: "ports[0].port",
          value: h.rootVeth,
          kind: "interface",
          rootNs: true,
        },
      ],
      "this machine",
    );
    expect(field).to.equal("ports[0].port");
    expect(why).to.include(`port of bridge ${inv.bridge}`);
  });

  it("only the collisions: a macvlan VM on the management interface and a filter on a VM port pass preview", async () => {
    const conn = labConnection(h);
    const stack = new TestStack("test-safety-mgmt-ok", 0, async () => {
      new MacvlanPort("vm", {
        connection: conn,
        name: "mp-mv",
        lower: "mgmt0",
        netns: "mp-ns",
        addresses: [`${h.address.replace(/\.\d+$/, ".201")}/24`],
      });
      new MacvlanPort("shim", {
        connection: conn,
        name: "mp-shim",
        lower: "mgmt0",
        addresses: ["198.19.3.1/32"],
      });
      new FilterChain("filter", {
        connection: conn,
        table: "hostnet",
        ports: [
          { port: "mp-tap", policy: "clean-traffic", mac: "52:54:00:00:13:04" },
        ],
      });
    });
    try {
      await stack.preview();
    } finally {
      await stack.dispose();
    }
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });
});

describe("safety: the routes and addresses of a veth end are a set; VmNetns sysctls are read and repaired", function () {
  this.timeout(600_000);
  const NS = "sfns2";
  let h: LabHost;
  let stack: TestStack<{ on: boolean }>;
  let baseline: Record<string, any>;

  before(async () => {
    h = labUp(2).hosts[1];
    stack = new TestStack<{ on: boolean }>(
      "test-safety-sets",
      { on: false },
      async (cfg) => {
        if (!cfg.on) return;
        const connection = labConnection(h);
        // rp_filter and default.disable_ipv6 were not read by the snapshot: drift on every refresh (issue 11).
        const ns = new VmNetns("ns", {
          connection,
          name: NS,
          sysctls: {
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.default.rp_filter": "0",
            "net.ipv6.conf.default.disable_ipv6": "1",
          },
        });
        new VethLink(
          "rt",
          {
            connection,
            a: {
              name: "sfr0",
              routes: [{ to: "198.19.41.2/32" }],
              proxyArp: true,
            },
            b: {
              name: "sfr1",
              netns: NS,
              addresses: ["198.19.41.2/32"],
              routes: [{ to: "0.0.0.0/0" }],
            },
          },
          { dependsOn: [ns] },
        );
      },
    );
    await stack.clearLeftovers(); // state left by an interrupted run
    sshRun(
      h,
      `ip link del sfr0 2>/dev/null; ip netns del ${NS} 2>/dev/null; true`,
    );
    baseline = fullSnapshot(h);
  });

  after(async () => {
    await stack?.dispose();
    if (h)
      sshRun(
        h,
        `ip link del sfr0 2>/dev/null; ip netns del ${NS} 2>/dev/null; true`,
      );
  });

  it("stranger routes, an address and a sysctl are drift, up --refresh repairs them; destroy refuses a foreign link, then leaves the host as before", async () => {
    stack.config = { on: true };
    await stack.up();
    await stack.preview({ refresh: true, expectNoChanges: true }); // clean, sysctls included

    sshRun(
      h,
      `ip route add 198.19.41.99/32 dev sfr0 && ip -n ${NS} addr add 198.19.41.77/32 dev sfr1 && ip -n ${NS} route add 198.19.99.0/24 dev sfr1`,
    );
    sshRun(h, `ip netns exec ${NS} sysctl -qw net.ipv4.conf.all.rp_filter=1`); // and a sysctl drifts
    const gate = await failureOf(
      stack.preview({ refresh: true, expectNoChanges: true }),
    );
    expect(gate)
      .to.include("198.19.41.99/32")
      .and.include("198.19.41.77/32")
      .and.include("198.19.99.0/24")
      .and.include("rp_filter");

    await stack.up({ refresh: true });
    expect(sshRun(h, "ip route show dev sfr0").trim()).to.equal(
      "198.19.41.2 scope link",
    );
    expect(sshRun(h, `ip -n ${NS} -br addr show dev sfr1`))
      .to.include("198.19.41.2/32")
      .and.not.include("198.19.41.77");
    expect(sshRun(h, `ip -n ${NS} route show dev sfr1`)).to.not.include(
      "198.19.99.0",
    );
    expect(
      sshRun(
        h,
        `ip netns exec ${NS} sysctl -n net.ipv4.conf.all.rp_filter`,
      ).trim(),
    ).to.equal("0");
    await stack.preview({ refresh: true, expectNoChanges: true });

    // VmNetns refuses to delete a namespace holding an interface it does not own (no force).
    sshRun(h, `ip -n ${NS} link add sfx0 type veth peer name sfx1`);
    expect(await failureOf(stack.destroy())).to.match(
      /still holds interfaces hostnet does not own \(sf(x0, sfx1|x1, sfx0)\); not deleting it/,
    );
    expect(sshRun(h, "ip netns list")).to.include(NS);
    sshRun(h, `ip -n ${NS} link del sfx0`);
    await stack.destroy();
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });
});
