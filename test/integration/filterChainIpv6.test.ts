// IPv6 clean-traffic with the real engine on lab1: two dual-stack "VMs" (namespaces hnv6f-a and
// hnv6f-b) on a bridge in hnv6f-br, filtered by a FilterChain with allowIpv6. The attacks are
// frames written byte by byte (Ethernet + IPv6 + ICMPv6/UDP with correct checksums) and sent from
// A's namespace through an AF_PACKET socket; each is checked by the rule counter that must drop it
// AND by its effect on the victim (neighbour cache, routes). Before the filter exists, the same
// forged frames do poison B, so a pass here cannot come from frames that never worked. Duplicate
// address detection (NS from ::, with or without a nonce) passes for A's own and link-local
// addresses and is dropped for another's (B sniffs for it).
import { expect } from "chai";
import {
  compileFilterChain,
  FilterChain,
} from "../../providers/kinds/filterChain";
import type { FilterChainSpecInput } from "../../providers/kinds/filterChain";
import { TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

type PortInput = FilterChainSpecInput["ports"][number];
interface Config {
  ports: PortInput[] | undefined;
}

const BR_NS = "hnv6f-br";
const NS_A = "hnv6f-a";
const NS_B = "hnv6f-b";
const MAC_A = "02:00:00:06:00:0a";
const MAC_B = "02:00:00:06:00:0b";
const MAC_BR = "02:00:00:06:00:fe";
const FOREIGN_MAC = "02:00:00:06:66:66";
const IP_A = "2001:db8:6::a";
const IP_B = "2001:db8:6::b";
const IP_BR = "2001:db8:6::fe";
const LL_A = "fe80::a";
const LL_B = "fe80::b";

const PORTS: PortInput[] = [
  {
    port: "hnv6fpa",
    policy: "clean-traffic",
    mac: MAC_A,
    ipv6: [IP_A],
    allowIpv6: true,
  },
  {
    port: "hnv6fpb",
    policy: "clean-traffic",
    mac: MAC_B,
    ipv6: [IP_B],
    allowIpv6: true,
  },
];

// Link-local addresses are set by hand (addrgenmode none) and every address is nodad: no waiting.
const SETUP = `set -e
for ns in ${BR_NS} ${NS_A} ${NS_B}; do
  ip netns add $ns
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
  ip -n $ns link set lo up
done
ip -n ${BR_NS} link add hnv6fbr type bridge
ip -n ${BR_NS} link set hnv6fbr address ${MAC_BR} addrgenmode none up
ip -n ${BR_NS} addr add ${IP_BR}/64 dev hnv6fbr nodad
ip -n ${BR_NS} link add hnv6fpa type veth peer name eth0 netns ${NS_A}
ip -n ${BR_NS} link add hnv6fpb type veth peer name eth0 netns ${NS_B}
for p in hnv6fpa hnv6fpb; do ip -n ${BR_NS} link set $p addrgenmode none master hnv6fbr up; done
ip -n ${NS_A} link set eth0 address ${MAC_A} addrgenmode none
ip -n ${NS_B} link set eth0 address ${MAC_B} addrgenmode none
ip netns exec ${NS_B} sysctl -qw net.ipv6.conf.eth0.forwarding=0 net.ipv6.conf.eth0.accept_ra=2 net.ipv6.conf.eth0.accept_ra_defrtr=1
ip -n ${NS_A} addr add ${LL_A}/64 dev eth0 nodad
ip -n ${NS_A} addr add ${IP_A}/64 dev eth0 nodad
ip -n ${NS_B} addr add ${LL_B}/64 dev eth0 nodad
ip -n ${NS_B} addr add ${IP_B}/64 dev eth0 nodad
ip -n ${NS_A} link set eth0 up
ip -n ${NS_B} link set eth0 up`;

const TEARDOWN = `for ns in ${NS_A} ${NS_B} ${BR_NS}; do ip netns del $ns 2>/dev/null; done; true`;

/** Writes and sends (or sniffs) frames; every byte is built here, checksums included. */
const FRAMES_PY = String.raw`
import socket, struct, sys, os

def mac(s): return bytes.fromhex(s.replace(":", ""))
def ip6(s): return socket.inet_pton(socket.AF_INET6, s)

def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def frame(smac, dmac, src, dst, nh, l4, cksum_at, hop=255):
    pseudo = ip6(src) + ip6(dst) + struct.pack("!I3xB", len(l4), nh)
    c = csum(pseudo + l4)
    l4 = l4[:cksum_at] + struct.pack("!H", c) + l4[cksum_at + 2:]
    hdr = struct.pack("!IHBB", 6 << 28, len(l4), nh, hop) + ip6(src) + ip6(dst)
    return mac(dmac) + mac(smac) + b"\x86\xdd" + hdr + l4

def send(iface, f):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(f)

def sniff(ready, match, label):  # print the source of the first IPv6 frame match() takes (5 s)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
    s.bind((iface, 0))
    s.settimeout(5)
    open(ready, "w").close()
    try:
        while True:
            f = s.recv(4096)
            if f[12:14] == b"\x86\xdd" and match(f):
                print("received " + label + f[22:38].hex())
                break
    except socket.timeout:
        print("nothing received")

mode, iface = sys.argv[1], sys.argv[2]
a = sys.argv[3:]
if mode == "na":  # smac dmac src dst target [tlla]: a solicited+override advertisement
    smac, dmac, src, dst, target = a[:5]
    body = struct.pack("!BBHI", 136, 0, 0, 0x60000000) + ip6(target)
    if len(a) > 5: body += b"\x02\x01" + mac(a[5])
    send(iface, frame(smac, dmac, src, dst, 58, body, 2))
elif mode == "ra":  # smac src: router lifetime 1800 s, to all nodes
    smac, src = a[:2]
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + b"\x01\x01" + mac(smac)
    send(iface, frame(smac, "33:33:00:00:00:01", src, "ff02::1", 58, body, 2))
elif mode == "rs":  # smac src slla: a router solicitation to all routers
    smac, src, slla = a[:3]
    body = struct.pack("!BBHI", 133, 0, 0, 0) + b"\x01\x01" + mac(slla)
    send(iface, frame(smac, "33:33:00:00:00:02", src, "ff02::2", 58, body, 2))
elif mode == "udp":  # smac dmac src dst sport dport: a DHCPv6 Solicit payload
    smac, dmac, src, dst, sport, dport = a[:6]
    payload = b"\x01\x5a\x5a\x5a"
    l4 = struct.pack("!HHHH", int(sport), int(dport), 8 + len(payload), 0) + payload
    send(iface, frame(smac, dmac, src, dst, 17, l4, 6, hop=1))
elif mode == "dad":  # smac target [nonce]: a DAD probe from :: to the target's solicited-node group
    smac, target = a[:2]
    t = ip6(target)
    dst = socket.inet_ntop(socket.AF_INET6, bytes.fromhex("ff0200000000000000000001ff") + t[13:])
    dmac = "33:33:ff:" + ":".join("%02x" % b for b in t[13:])
    body = struct.pack("!BBHI", 135, 0, 0, 0) + t
    if len(a) > 2: body += b"\x0e\x01" + bytes.fromhex(a[2])
    send(iface, frame(smac, dmac, "::", dst, 58, body, 2))
elif mode == "sniffns":  # readyfile target: wait for one neighbour solicitation for target
    target = ip6(a[1])
    sniff(a[0], lambda f: f[20] == 58 and f[54] == 135 and f[62:78] == target, "from ")
elif mode == "sniff":  # readyfile dport: wait for one UDP/IPv6 datagram to dport
    dport = int(a[1])
    sniff(a[0], lambda f: f[20] == 17 and struct.unpack("!H", f[56:58])[0] == dport, "")
else:
    sys.exit("unknown mode " + mode)
`;
const FRAMES_B64 = Buffer.from(FRAMES_PY, "utf8").toString("base64");

interface NftDoc {
  nftables: Array<Record<string, any>>;
}
interface Neigh {
  dst: string;
  lladdr?: string;
  state?: string[];
}

describe("FilterChain IPv6 clean-traffic: spoofing, forged ND, rogue RA, DHCPv6 (real kernel)", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<Config>;

  const frames = (ns: string, args: string[]): string =>
    sshRun(
      h,
      `ip netns exec ${ns} python3 -c "$(echo ${FRAMES_B64} | base64 -d)" ${args.join(" ")}`,
    );
  const ping6 = (ns: string, dst: string, src?: string): boolean =>
    /\b[1-9]\d* received/.test(
      sshRun(
        h,
        `ip netns exec ${ns} ping -6 -n -q -c 2 -i 0.2 -W 1 ${src ? `-I ${src} ` : ""}${dst}`,
        { allowFail: true },
      ),
    );
  const neighOf = (ns: string, ip: string): Neigh | undefined =>
    sshJson<Neigh[]>(h, `ip -n ${ns} -j -6 neigh show dev eth0`).find(
      (n) => n.dst === ip,
    );
  const defaultRoutes = (ns: string): unknown[] =>
    sshJson<unknown[]>(h, `ip -n ${ns} -j -6 route show default`);
  /** Packets counted by the rule of A's from-vm chain that carries `comment`. */
  function dropped(comment: string): number {
    const doc = sshJson<NftDoc>(
      h,
      `ip netns exec ${BR_NS} nft -j list table bridge hostnet`,
    );
    const rule = doc.nftables.find(
      (o) =>
        o.rule?.comment === comment &&
        o.rule.chain.endsWith("_in") &&
        o.rule.chain.includes("hnv6fpa"),
    )?.rule;
    expect(rule, `rule "${comment}" in A's from-vm chain`).to.not.equal(
      undefined,
    );
    const c = rule.expr.find((e: any) => "counter" in e);
    return c.counter.packets as number;
  }

  /** How many packets the rule with `comment` counted while `send` ran. */
  function countedBy(comment: string, send: () => unknown): number {
    const before = dropped(comment);
    send();
    return dropped(comment) - before;
  }

  /** B learns A's and the bridge's addresses (reachable entries with their real MACs). */
  function warmB(): void {
    sshRun(h, `ip -n ${NS_B} -6 neigh flush dev eth0`);
    expect(ping6(NS_B, IP_A), "B pings A").to.equal(true);
    expect(ping6(NS_B, IP_BR), "B pings the bridge").to.equal(true);
    expect(neighOf(NS_B, IP_A)?.lladdr).to.equal(MAC_A);
    expect(neighOf(NS_B, IP_BR)?.lladdr).to.equal(MAC_BR);
  }

  const forgeries = {
    /** A claims the bridge's address to B. */
    foreignTarget: () =>
      frames(NS_A, ["na", "eth0", MAC_A, MAC_B, IP_A, IP_B, IP_BR, MAC_A]),
    /** A's own address, but with a foreign MAC in the target link-layer option. */
    foreignLla: () =>
      frames(NS_A, ["na", "eth0", MAC_A, MAC_B, IP_A, IP_B, IP_A, FOREIGN_MAC]),
    rogueRa: () => frames(NS_A, ["ra", "eth0", MAC_A, LL_A]),
    /** A router solicitation whose source link-layer option names a foreign MAC. */
    foreignRsLla: () => frames(NS_A, ["rs", "eth0", MAC_A, LL_A, FOREIGN_MAC]),
  };

  before(async () => {
    h = labUp(1).hosts[0]!;
    sshRun(h, TEARDOWN);
    sshRun(h, `sh -c '${SETUP}'`);
    stack = new TestStack<Config>(
      "test-v6filter",
      { ports: undefined },
      async (c) => {
        if (c.ports === undefined) return {};
        const r = new FilterChain("v6", {
          connection: labConnection(h),
          netns: BR_NS,
          ports: c.ports,
        });
        return { digest: r.appliedDigest };
      },
    );
  });

  after(async () => {
    await stack?.dispose();
    if (h) sshRun(h, TEARDOWN, { allowFail: true });
  });

  it("without a filter, the forged frames do poison B (the probes work)", () => {
    warmB();
    forgeries.foreignTarget();
    expect(neighOf(NS_B, IP_BR)?.lladdr, "bridge entry now A's MAC").to.equal(
      MAC_A,
    );
    forgeries.foreignLla();
    expect(
      neighOf(NS_B, IP_A)?.lladdr,
      "A's entry now the foreign MAC",
    ).to.equal(FOREIGN_MAC);
    forgeries.rogueRa();
    expect(defaultRoutes(NS_B), "a default route from A's RA").to.have.length(
      1,
    );
    sshRun(h, `ip -n ${NS_B} -6 route flush default`);
    expect(defaultRoutes(NS_B)).to.have.length(0);
  });

  it("nft -c accepts the compiled IPv6 rules in every shape", () => {
    const shapes: PortInput[] = [
      ...PORTS,
      { ...PORTS[0]!, port: "v6none", ipv6: [], allowDhcp: false },
      {
        ...PORTS[0]!,
        port: "v6many",
        ipv6: ["2001:DB8:6:0::1", "2001:db8:6::1", "fe80::5", "fe80:0:0:1::5"],
      },
      { ...PORTS[0]!, port: "v6dotted", ipv6: ["2001:db8:6::198.18.0.1"] },
      { ...PORTS[1]!, port: "v6off", allowIpv6: false },
    ];
    const script = compileFilterChain({
      table: "hnv6fcheck",
      ports: shapes,
    }).script;
    const b64 = Buffer.from(script, "utf8").toString("base64");
    const out = sshRun(
      h,
      `echo ${b64} | base64 -d | ip netns exec ${BR_NS} nft -c -f - 2>&1; echo "rc=$?"`,
    );
    expect(out.trim()).to.equal("rc=0");
  });

  it("up applies the IPv6 clean-traffic filter; A and B reach each other over IPv6", async () => {
    stack.config = { ports: PORTS };
    const up = await stack.up();
    expect(up.outputs.digest).to.match(/^[0-9a-f]{64}$/);
    warmB();
    expect(ping6(NS_A, IP_B), "A pings B").to.equal(true);
    expect(ping6(NS_A, `${LL_B}%eth0`), "A pings B's link-local").to.equal(
      true,
    );
  });

  it("a refreshing preview right after up sees no drift (nft's rewrite of the raw matches is stable)", async () => {
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("a spoofed IPv6 source is dropped", () => {
    sshRun(h, `ip -n ${NS_A} addr add 2001:db8:6::99/64 dev eth0 nodad`);
    try {
      expect(ping6(NS_A, IP_B, "2001:db8:6::99"), "ping from ::99").to.equal(
        false,
      );
      expect(ping6(NS_A, IP_B, IP_A), "ping from A's own address").to.equal(
        true,
      );
    } finally {
      sshRun(h, `ip -n ${NS_A} addr del 2001:db8:6::99/64 dev eth0`);
    }
  });

  it("a neighbour advertisement for another's address is dropped; B's cache unchanged", () => {
    warmB();
    expect(countedBy("ipv6 na target", forgeries.foreignTarget)).to.equal(1);
    expect(neighOf(NS_B, IP_BR)?.lladdr).to.equal(MAC_BR);
  });

  it("a neighbour advertisement with a foreign target link-layer address is dropped", () => {
    warmB();
    expect(countedBy("ipv6 nd lladdr", forgeries.foreignLla)).to.equal(1);
    expect(neighOf(NS_B, IP_A)?.lladdr).to.equal(MAC_A);
  });

  it("a rogue router advertisement is dropped; B gets no default route", () => {
    // A multicast frame walks A's from-vm chain twice: forward hook (towards B) and input hook
    // (the bridge's own copy), so it counts 2 here; the unicast forgeries count 1.
    expect(
      countedBy("ipv6 router advert redirect renumbering", forgeries.rogueRa),
    ).to.equal(2);
    expect(defaultRoutes(NS_B)).to.have.length(0);
  });

  it("a router solicitation with a foreign source link-layer address is dropped", () => {
    // to ff02::2: multicast, so counted in the forward and the input hook (see above)
    expect(countedBy("ipv6 rs lladdr", forgeries.foreignRsLla)).to.equal(2);
  });

  /** B sniffs (`sniff` mode with `want`) while A sends a frame (`send` mode and args): what B saw. */
  function reachesB(sniff: string, want: string, send: string[]): string {
    const ready = `/tmp/hnv6f-ready-${process.pid}`;
    const py = `python3 -c "$(echo ${FRAMES_B64} | base64 -d)"`;
    return sshRun(
      h,
      `rm -f ${ready}; ip netns exec ${NS_B} ${py} ${sniff} eth0 ${ready} ${want} > ${ready}.out & ` +
        `while [ ! -e ${ready} ]; do sleep 0.05; done; ` +
        `ip netns exec ${NS_A} ${py} ${send[0]} eth0 ${send.slice(1).join(" ")}; wait; cat ${ready}.out; rm -f ${ready} ${ready}.out`,
    );
  }

  /** B sniffs for a UDP datagram to `dport` while A sends one. */
  const udpReachesB = (args: string[], dport: number): string =>
    reachesB("sniff", String(dport), ["udp", ...args]);

  /** B sniffs for a neighbour solicitation for `target` while A sends a DAD probe for it. */
  const dadReachesB = (target: string, nonce?: string): string =>
    reachesB("sniffns", target, [
      "dad",
      MAC_A,
      target,
      ...(nonce ? [nonce] : []),
    ]).trim();

  it("duplicate address detection passes for the VM's own addresses, with and without an RFC 7527 nonce; a DAD probe for another's address is dropped", () => {
    const unspecified = `from ${"0".repeat(32)}`;
    for (const target of [IP_A, "fe80::a:1"])
      for (const nonce of [undefined, "0a1b2c3d4e5f"])
        expect(
          dadReachesB(target, nonce),
          `DAD for ${target}${nonce ? " with a nonce" : ""}`,
        ).to.equal(`received ${unspecified}`);
    for (const nonce of [undefined, "0a1b2c3d4e5f"]) {
      let seen = "";
      // multicast: counted in the forward and the input hook (see the router advertisement)
      expect(
        countedBy("ipv6 dad target", () => {
          seen = dadReachesB(IP_B, nonce);
        }),
        `DAD for B's address${nonce ? " with a nonce" : ""}`,
      ).to.equal(2);
      expect(seen).to.equal("nothing received");
    }
  });

  it("a DHCPv6 Solicit from the VM passes; a DHCPv6 server reply from it is dropped", () => {
    const solicit = udpReachesB(
      [MAC_A, "33:33:00:01:00:02", LL_A, "ff02::1:2", "546", "547"],
      547,
    );
    expect(solicit.trim()).to.equal(
      "received fe80000000000000000000000000000a",
    );
    let reply = "";
    const counted = countedBy("ipv6 dhcpv6 server", () => {
      reply = udpReachesB([MAC_A, MAC_B, LL_A, LL_B, "547", "546"], 546);
    });
    expect(reply.trim()).to.equal("nothing received");
    expect(counted).to.equal(1);
  });
});
