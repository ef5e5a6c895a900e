// Dual-stack VMs on a real kernel (issue 14 item 2): one stack on lab2 with dual-stack VMs (long
// names) of every attachment kind (isolated-netns, bridged, macvlan, routed; simulated by guest
// namespaces, clean-traffic filters on) and one IPv4-only VM. A separate OpenSSH session
// checks that the VMs reach each other over IPv6, where IPv6 is on (the guests' namespaces) and off
// (L2-only namespaces, the IPv4-only VM), that refresh finds nothing to change, that the health
// check pings dual-stack VMs over IPv6 too (a broken IPv6 path fails it, named) and that destroy
// leaves lab2 as it found it.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { derivedNames } from "../../components/spec";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { namespacesOf, TestStack } from "../support/harness";
import { LabHost, labUp, privateKey, sshJson, sshRun } from "../support/lab";

const BRIDGE = "br-6";
const NIC = "v6nic0";
const VMS = {
  isoA: "dual-stack-isolated-a",
  isoB: "dual-stack-isolated-b",
  bridged: "dual-stack-bridged-c",
  mvA: "dual-stack-macvlan-d",
  mvB: "dual-stack-macvlan-e",
  v4only: "ipv4-only-isolated-f",
  routedA: "dual-stack-routed-g",
  routedB: "dual-stack-routed-h",
};
/** The IPv6 address each dual-stack VM has (routed VMs hold it as /128). */
const V6 = {
  isoA: "2001:db8:60::1",
  isoB: "2001:db8:60::2",
  bridged: "2001:db8:60::3",
  mvA: "2001:db8:61::4",
  mvB: "2001:db8:61::5",
  routedA: "2001:db8:62::7",
  routedB: "2001:db8:62::8",
};
const names = (vm: string) => derivedNames(vm);

function rawConfig(h: LabHost): Record<string, unknown> {
  const sim = { host: "lab2", simulate: true };
  const l2 = { ...sim, bridge: BRIDGE };
  const mv = { ...sim, attachment: "macvlan", lower: NIC };
  return {
    hosts: [
      { name: "lab2", address: h.address, port: h.port, hostKey: h.hostKey },
    ],
    bridges: [{ name: BRIDGE, filterTable: "h6net" }],
    simulatedNics: [NIC],
    vms: [
      {
        ...l2,
        name: VMS.isoA,
        attachment: "isolated-netns",
        mac: "02:00:00:6e:00:01",
        ipv4: ["198.19.60.1/24"],
        ipv6: [`${V6.isoA}/64`],
      },
      {
        ...l2,
        name: VMS.isoB,
        attachment: "isolated-netns",
        mac: "02:00:00:6e:00:02",
        ipv4: ["198.19.60.2/24"],
        ipv6: [`${V6.isoB}/64`],
      },
      {
        ...l2,
        name: VMS.bridged,
        attachment: "bridged",
        mac: "02:00:00:6e:00:03",
        ipv4: ["198.19.60.3/24"],
        ipv6: [`${V6.bridged}/64`],
      },
      {
        ...mv,
        name: VMS.mvA,
        mac: "02:00:00:6e:00:04",
        ipv4: ["198.19.61.4/24"],
        ipv6: [`${V6.mvA}/64`],
      },
      {
        ...mv,
        name: VMS.mvB,
        mac: "02:00:00:6e:00:05",
        ipv4: ["198.19.61.5/24"],
        ipv6: [`${V6.mvB}/64`],
      },
      {
        ...l2,
        name: VMS.v4only,
        attachment: "isolated-netns",
        mac: "02:00:00:6e:00:06",
        ipv4: ["198.19.60.6/24"],
      },
      {
        ...sim,
        name: VMS.routedA,
        attachment: "routed",
        mac: "02:00:00:6e:00:07",
        ipv4: ["198.19.62.7/32"],
        ipv6: [`${V6.routedA}/64`],
      },
      {
        ...sim,
        name: VMS.routedB,
        attachment: "routed",
        mac: "02:00:00:6e:00:08",
        ipv4: ["198.19.62.8/32"],
        ipv6: [`${V6.routedB}/128`],
      },
    ],
    rollout: { serial: [1], maxFailures: 0, healthCheck: true },
  };
}

const L2_NAMESPACES = [VMS.isoA, VMS.isoB, VMS.v4only].map(
  (v) => names(v).netns,
);
const GUESTS = Object.values(VMS).map((v) => names(v).guestNetns);
const NAMESPACES = [...L2_NAMESPACES, ...GUESTS];
const ROOT_LINKS = [
  BRIDGE,
  NIC,
  `${NIC}p`,
  names(VMS.isoA).hostPort,
  names(VMS.isoB).hostPort,
  names(VMS.v4only).hostPort,
  names(VMS.bridged).tap,
  names(VMS.routedA).hostPort,
  names(VMS.routedB).hostPort,
];

/** Leftovers of an interrupted run. */
const TEARDOWN =
  [
    ...NAMESPACES.map((ns) => `ip netns del ${ns}`),
    ...ROOT_LINKS.filter((l) => l !== `${NIC}p`).map((l) => `ip link del ${l}`),
    "nft delete table bridge h6net",
  ]
    .map((c) => `${c} 2>/dev/null`)
    .join("; ") + "; true";

describe("ipv6: dual-stack VMs of every attachment kind on lab2 (deployFleet)", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<StackConfig>;
  let pristine: unknown;

  const sh = (cmd: string): string => sshRun(h, cmd);
  const pings6 = (ns: string, to: string): boolean =>
    sh(
      `ip netns exec ${ns} ping -6 -c 2 -W 1 -q ${to} >/dev/null 2>&1 && echo ok || echo fail`,
    ).trim() === "ok";
  const why = (...nss: string[]): string =>
    sshRun(
      h,
      nss
        .map(
          (ns) =>
            `echo "== ${ns}"; ip -n ${ns} -d addr; ip -n ${ns} -6 neigh; ip -n ${ns} -6 route`,
        )
        .join("; "),
      { allowFail: true },
    );
  const disabled = (ns: string | undefined): string[] =>
    sh(
      `${ns ? `ip netns exec ${ns} ` : ""}sysctl -n net.ipv6.conf.all.disable_ipv6 net.ipv6.conf.default.disable_ipv6`,
    )
      .trim()
      .split("\n");

  /** Only this test's objects, plus the root namespace's IPv6 sysctls and routes. */
  const mine = (): Record<string, unknown> => {
    const { own: out, root } = namespacesOf(h, NAMESPACES);
    out["(root)"] = {
      links: root.links.filter((l) => ROOT_LINKS.includes(l.name)),
      nft: root.nft.filter((t) => t === "table bridge h6net"),
      ipv6: sh(
        "sysctl net.ipv6.conf.all.disable_ipv6 net.ipv6.conf.default.disable_ipv6 net.ipv6.conf.all.forwarding",
      ),
      routes6: sshJson(h, "ip -j -6 route show"),
    };
    return out;
  };

  before(async () => {
    h = labUp(2).hosts[1];
    stack = new TestStack<StackConfig>(
      "test-ipv6",
      parseStackConfig(rawConfig(h)),
      async (config) => deployFleet(config, pulumi.secret(privateKey())),
    );
    await stack.clearLeftovers(); // state left by an interrupted run
    sh(TEARDOWN);
    pristine = mine();
  });

  after(async () => {
    await stack?.dispose();
  });

  it("1. up succeeds and the health check passes", async () => {
    const up = await stack.up();
    expect(up.ops["lab2-health"]).to.equal("create");
    expect(up.ops["rollout-batch-0"]).to.equal("create");
  });

  it("2. the guests hold their IPv6 addresses (usable at once: no tentative flag) beside IPv4", () => {
    for (const [key, addr] of Object.entries(V6)) {
      const n = names(VMS[key as keyof typeof VMS]);
      const dev = key.startsWith("mv") ? n.macvlan : n.guestIf;
      const info = sshJson<any[]>(
        h,
        `ip -n ${n.guestNetns} -j addr show dev ${dev}`,
      )[0];
      const v6 = info.addr_info.find((a: any) => a.local === addr);
      expect(v6, `${addr} on ${n.guestNetns}/${dev}`).to.include({
        family: "inet6",
        prefixlen: key.startsWith("routed") ? 128 : 64,
      });
      expect(v6.tentative ?? false, `${addr} tentative`).to.equal(false);
      expect(
        info.addr_info.some((a: any) => a.family === "inet"),
        `IPv4 on ${n.guestNetns}/${dev}`,
      ).to.equal(true);
    }
  });

  it("3. VMs reach each other over IPv6: isolated-netns <-> isolated-netns, isolated-netns <-> bridged, macvlan <-> macvlan, routed <-> routed", () => {
    const pairs: Array<[keyof typeof V6, keyof typeof V6]> = [
      ["isoA", "isoB"],
      ["isoB", "isoA"],
      ["isoA", "bridged"],
      ["bridged", "isoB"],
      ["mvA", "mvB"],
      ["mvB", "mvA"],
      ["routedA", "routedB"],
      ["routedB", "routedA"],
    ];
    for (const [from, to] of pairs) {
      const src = names(VMS[from]).guestNetns;
      const dst = names(VMS[to]).guestNetns;
      expect(
        pings6(src, V6[to]),
        `${VMS[from]} -> ${VMS[to]} (${V6[to]})\n${why(src, dst)}`,
      ).to.equal(true);
    }
  });

  it("3b. routed: each host end has fe80::1, a /128 route to its VM, IPv6 on and per-interface forwarding (no global router mode)", () => {
    for (const key of ["routedA", "routedB"] as const) {
      const hv = names(VMS[key]).hostPort;
      const addrs = sshJson<any[]>(h, `ip -j -6 addr show dev ${hv}`)[0]
        .addr_info;
      expect(addrs.map((a: any) => a.local)).to.include("fe80::1");
      const routes = sshJson<any[]>(h, `ip -j -6 route show dev ${hv}`);
      expect(routes.map((r) => r.dst)).to.include(V6[key]);
      expect(
        sh(
          `sysctl -n net.ipv6.conf.${hv}.disable_ipv6 net.ipv6.conf.${hv}.force_forwarding`,
        )
          .trim()
          .split("\n"),
      ).to.deep.equal(["0", "1"]);
      const guest = names(VMS[key]).guestNetns;
      expect(
        sshJson<any[]>(h, `ip -n ${guest} -j -6 route show default`)[0],
      ).to.include({ gateway: "fe80::1", dev: "eth0" });
    }
    expect(
      sh("sysctl -n net.ipv6.conf.all.forwarding").trim(),
      "net.ipv6.conf.all.forwarding on lab2",
    ).to.equal("0");
  });

  it("4. IPv6 is on only where a dual-stack VM's L3 lives: off in L2-only namespaces and for the IPv4-only VM", () => {
    for (const key of Object.keys(V6))
      expect(
        disabled(names(VMS[key as keyof typeof VMS]).guestNetns),
        `${VMS[key as keyof typeof VMS]}'s guest namespace`,
      ).to.deep.equal(["0", "0"]);
    for (const ns of L2_NAMESPACES)
      expect(disabled(ns), `L2-only namespace ${ns}`).to.deep.equal(["1", "1"]);
    expect(
      disabled(names(VMS.v4only).guestNetns)[0],
      "the IPv4-only VM's guest namespace",
    ).to.equal("1");
    expect(
      sh(`ip -n ${names(VMS.v4only).guestNetns} -6 -j addr show`).trim(),
      "IPv6 addresses of the IPv4-only VM",
    ).to.be.oneOf(["", "[]"]);
  });

  it("5. preview --refresh finds nothing to change (the kernel's fe80:: addresses are not drift)", async () => {
    // expectNoChanges: the engine fails the preview on any change it would make.
    const clean = await stack.preview({ refresh: true, expectNoChanges: true });
    expect(
      Object.values(clean.ops).filter((op) => op === "same").length,
      clean.stdout,
    ).to.be.greaterThan(10);
  });

  it("5b. the health check pings over IPv6 too: a broken IPv6 path stops the rollout naming IPv6, and passes once fixed", async () => {
    const target = names(VMS.isoB).guestNetns;
    const fix = `ip netns exec ${target} nft delete table inet hn6brk 2>/dev/null; true`;
    // IPv6 echo requests into isoB are dropped; IPv4 (and everything else) still passes.
    sh(`ip netns exec ${target} nft -f - <<'EOF'
table inet hn6brk {
  chain input { type filter hook input priority 0; policy accept; icmpv6 type echo-request drop; }
}
EOF`);
    try {
      let message = "";
      await stack.up().catch((e) => (message = String(e.message)));
      expect(message)
        .to.include("rollout stopped after batch")
        .and.include(
          `lab2: netns ${names(VMS.isoA).guestNetns} cannot reach ${V6.isoB} over IPv6`,
        );
      expect(message).not.to.include("over IPv4");
    } finally {
      sh(fix);
    }
    const up = await stack.up();
    expect(up.ops["rollout-batch-0"]).to.be.oneOf(["same", "update"]);
  });

  it("6. destroy leaves lab2 as it was before the first up", async () => {
    const deployed = mine() as Record<string, any>;
    expect(Object.keys(deployed)).to.include.members(NAMESPACES);
    await stack.destroy();
    expect(mine()).to.deep.equal(pristine);
  });
});
