/**
 * compileArpAnswer against the real nft and kernel, lab-free, inside throwaway network namespaces
 * hnarp-<pid> (the host: bridge br0 with ports p1..p3) and hnarp-<pid>-a/-b/-c (three "VMs" with
 * their own IPv4 stacks). Never touches the root namespace. The namespaces are deleted before and
 * after the suite and when the process exits.
 *
 * a asks; b is a VM the table knows; c only watches: every ARP frame that reaches c's interface
 * was flooded by the bridge, so a request answered at a's port must never show up there.
 */
import { expect } from "chai";
import { spawnSync } from "child_process";
import { compileArpAnswer } from "../../providers/kinds/arpAnswer";
import {
  inNs,
  must,
  quietNamespace,
  run,
  vmBehindPort,
} from "../support/localRun";

const NS = `hnarp-${process.pid}`;
const VM = { a: `${NS}-a`, b: `${NS}-b`, c: `${NS}-c` } as const;
const MAC = {
  a: "02:00:00:4e:00:01",
  b: "02:00:00:4e:00:02",
  c: "02:00:00:4e:00:03",
} as const;
const IP = {
  a: "198.19.77.1",
  b: "198.19.77.2",
  c: "198.19.77.3",
} as const;
/** Known to the table, but no VM has it: only the table can answer for it. */
const GHOST = { ip: "198.19.77.5", mac: "02:00:00:4e:00:05" };
const UNKNOWN = "198.19.77.9";
const BROADCAST = "ff:ff:ff:ff:ff:ff";
const PORTS = { a: "p1", b: "p2", c: "p3" } as const;

function cleanup(): void {
  for (const ns of [...Object.values(VM), NS]) run(["ip", "netns", "del", ns]);
}

/** Each VM counts the ARP requests and replies reaching its interface (netdev ingress, before its stack). */
const WATCH = `table netdev watch {
\tchain in {
\t\ttype filter hook ingress device "eth0" priority -500; policy accept;
\t\tether type arp arp operation request counter
\t\tether type arp arp operation reply counter
\t}
}
`;

function arpSeen(ns: string): { requests: number; replies: number } {
  const doc = JSON.parse(
    must(inNs(ns, ["nft", "-j", "list", "chain", "netdev", "watch", "in"])),
  ) as { nftables: { rule?: { expr: Record<string, unknown>[] } }[] };
  const counts = doc.nftables
    .filter((o) => o.rule !== undefined)
    .map(
      (o) =>
        (
          o.rule!.expr.find((e) => "counter" in e)?.["counter"] as {
            packets: number;
          }
        ).packets,
    );
  return { requests: counts[0]!, replies: counts[1]! };
}

/** One raw ARP frame out of `ns`'s eth0 (AF_PACKET). */
const SEND = String.raw`import socket, sys
dst, src, op, sha, spa, tha, tpa = sys.argv[1:8]
mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
f = (mac(dst) + mac(src) + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, int(op)]) + mac(sha)
     + socket.inet_aton(spa) + mac(tha) + socket.inet_aton(tpa)).ljust(60, b"\x00")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind(("eth0", 0))
s.send(f)
`;

function sendArp(
  ns: string,
  f: {
    dst: string;
    src: string;
    op: 1 | 2;
    sha: string;
    spa: string;
    tha?: string;
    tpa: string;
  },
): void {
  must(
    inNs(ns, [
      "python3",
      "-c",
      SEND,
      f.dst,
      f.src,
      String(f.op),
      f.sha,
      f.spa,
      f.tha ?? "00:00:00:00:00:00",
      f.tpa,
    ]),
  );
}

const sleep = (ms: number): void => {
  spawnSync("sleep", [String(ms / 1000)]);
};

/** Counters of a (the asker) and c (the watcher) around one action. */
function delta(action: () => void): {
  repliesToA: number;
  requestsAtC: number;
  repliesAtC: number;
} {
  const a0 = arpSeen(VM.a);
  const c0 = arpSeen(VM.c);
  action();
  sleep(300);
  const a1 = arpSeen(VM.a);
  const c1 = arpSeen(VM.c);
  return {
    repliesToA: a1.replies - a0.replies,
    requestsAtC: c1.requests - c0.requests,
    repliesAtC: c1.replies - c0.replies,
  };
}

function neighbour(ns: string, ip: string): string {
  return must(["ip", "-n", ns, "neigh", "show", ip, "dev", "eth0"]).trim();
}

function answeredCount(): number {
  const out = must(inNs(NS, ["nft", "list", "table", "netdev", "hnarp"]));
  return [...out.matchAll(/counter packets (\d+)/g)]
    .map((m) => Number(m[1]))
    .reduce((s, x) => s + x, 0);
}

describe("ARP answered at the port's ingress (compileArpAnswer, real nft, netns)", function () {
  this.timeout(120_000);
  const onExit = (): void => cleanup();

  before(function () {
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
      console.log("    (skipped: needs root for network namespaces)");
      this.skip();
    }
    for (const [tool, argv, pkg] of [
      ["nft", ["nft", "--version"], "nftables"],
      ["ping", ["ping", "-V"], "iputils-ping"],
      ["python3", ["python3", "--version"], "python3"],
    ] as const)
      if (run([...argv]).status !== 0) {
        console.log(
          `    (skipped: ${tool} not installed; Debian package ${pkg})`,
        );
        this.skip();
      }
    process.on("exit", onExit);
    cleanup();
    for (const ns of [NS, ...Object.values(VM)]) quietNamespace(ns);
    must(["ip", "-n", NS, "link", "add", "br0", "type", "bridge"]);
    must(["ip", "-n", NS, "link", "set", "br0", "up"]);
    for (const k of ["a", "b", "c"] as const) {
      vmBehindPort(NS, "br0", PORTS[k], { ns: VM[k], mac: MAC[k], ip: IP[k] });
      must(inNs(VM[k], ["nft", "-f", "-"]), WATCH);
    }
    const { script } = compileArpAnswer({
      table: "hnarp",
      ports: Object.values(PORTS),
      entries: [
        { ip: IP.a, mac: MAC.a },
        { ip: IP.b, mac: MAC.b },
        { ip: IP.c, mac: MAC.c },
        GHOST,
      ],
    });
    must(inNs(NS, ["nft", "-f", "-"]), script);
    // every port forwarding before anything is sent
    for (let k = 0; k < 50; k++) {
      const fwd = (
        JSON.parse(must(["bridge", "-n", NS, "-j", "link", "show"])) as {
          state?: string;
        }[]
      ).filter((p) => p.state === "forwarding").length;
      if (fwd === 3) break;
      sleep(200);
    }
  });

  after(() => {
    cleanup();
    process.off("exit", onExit);
  });

  const request = (
    tpa: string,
    over: Partial<Parameters<typeof sendArp>[1]> = {},
  ) =>
    sendArp(VM.a, {
      dst: BROADCAST,
      src: MAC.a,
      op: 1,
      sha: MAC.a,
      spa: IP.a,
      tpa,
      ...over,
    });

  it("does not answer an ARP probe (sender IP 0.0.0.0): it is flooded as before", () => {
    const d = delta(() => request(GHOST.ip, { spa: "0.0.0.0" }));
    expect(d).to.deep.equal({ repliesToA: 0, requestsAtC: 1, repliesAtC: 0 });
  });

  it("does not answer gratuitous ARP (sender IP = target IP), for a known or the asker's own address", () => {
    for (const ip of [GHOST.ip, IP.a]) {
      const d = delta(() => request(ip, { spa: ip }));
      expect(d, ip).to.deep.equal({
        repliesToA: 0,
        requestsAtC: 1,
        repliesAtC: 0,
      });
    }
  });

  it("does not touch replies or unicast requests", () => {
    const reply = delta(() =>
      request(IP.c, { op: 2, tha: BROADCAST, spa: GHOST.ip }),
    );
    expect(reply).to.deep.equal({
      repliesToA: 0,
      requestsAtC: 0,
      repliesAtC: 1,
    });
    // a unicast request (a neighbour's reachability check) goes to its MAC: c's, so c sees it
    const unicast = delta(() => request(GHOST.ip, { dst: MAC.c }));
    expect(unicast).to.deep.equal({
      repliesToA: 0,
      requestsAtC: 1,
      repliesAtC: 0,
    });
    expect(answeredCount(), "requests the table answered so far").to.equal(0);
  });

  it("answers a broadcast request for a known IP at the asker's port: one reply, nothing flooded", () => {
    const d = delta(() => request(GHOST.ip));
    expect(d).to.deep.equal({ repliesToA: 1, requestsAtC: 0, repliesAtC: 0 });
    expect(answeredCount()).to.equal(1);
  });

  it("a real stack resolves through the answer: ping works and ip neigh shows the right MAC", () => {
    const b0 = arpSeen(VM.b);
    const c0 = arpSeen(VM.c);
    const ping = run(
      inNs(VM.a, ["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", IP.b]),
    );
    expect(ping.status, ping.stdout + ping.stderr).to.equal(0);
    expect(neighbour(VM.a, IP.b)).to.match(
      new RegExp(`lladdr ${MAC.b} (REACHABLE|STALE|DELAY)`),
    );
    // the address nobody has resolves to the table's MAC: the answer came from the table
    run(inNs(VM.a, ["ping", "-n", "-q", "-c", "1", "-W", "1", GHOST.ip]));
    expect(neighbour(VM.a, GHOST.ip)).to.match(
      new RegExp(`lladdr ${GHOST.mac} `),
    );
    // neither b (asked for) nor c saw a request: a's and b's were answered at their ports
    expect(arpSeen(VM.b).requests - b0.requests).to.equal(0);
    expect(arpSeen(VM.c).requests - c0.requests).to.equal(0);
  });

  it("a request for an unknown IP still floods, and nobody answers it", () => {
    const d = delta(() => request(UNKNOWN));
    expect(d).to.deep.equal({ repliesToA: 0, requestsAtC: 1, repliesAtC: 0 });
    const ping = run(
      inNs(VM.a, ["ping", "-n", "-q", "-c", "1", "-W", "1", UNKNOWN]),
    );
    expect(ping.status).to.not.equal(0);
    expect(neighbour(VM.a, UNKNOWN)).to.not.match(/lladdr/);
  });
});
