// bench/dataplane.ts cases (g)–(i1), pure parts: the frames the ARP answer table must let through
// (what the ingress hook costs them is the measurement), the checks that make a round's figure
// meaningful, and the parsers of nft's and perf's listings. Sender MAC 02:48:4e:42:ff:fe, IP
// 198.19.199.254; VM i has MAC 02:48:4e:42:00:0i and IP 198.19.200.(i+1).
import { expect } from "chai";
import {
  CaseResult,
  dhcpDiscoverFrame,
  hookedDevices,
  ingressFrames,
  ingressLines,
  ingressProblems,
  ipv4Checksum,
  perfKernelSymbols,
  RepResult,
  unicastArpFrame,
  unicastUdpFrame,
} from "../../bench/dataplane";

const mac = (b: Buffer, at: number): string =>
  [...b.subarray(at, at + 6)]
    .map((x) => x.toString(16).padStart(2, "0"))
    .join(":");
const ip = (b: Buffer, at: number): string =>
  [...b.subarray(at, at + 4)].join(".");
const SND_MAC = "02:48:4e:42:ff:fe";

/** The IPv4 header of an Ethernet frame is valid: version 4, IHL 5, its checksum sums to zero. */
function expectIpv4Header(f: Buffer): Buffer {
  expect(f.readUInt16BE(12)).to.equal(0x0800);
  const h = f.subarray(14, 34);
  expect(h[0]).to.equal(0x45);
  expect(ipv4Checksum(h)).to.equal(0);
  return h;
}

describe("dataplane bench, cases (g)–(i1): frames the ARP answer table lets through", () => {
  it("computes the RFC 791 header checksum (the textbook header gives 0xb861)", () => {
    const h = Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex");
    expect(ipv4Checksum(h)).to.equal(0xb861);
    h.writeUInt16BE(0xb861, 10);
    expect(ipv4Checksum(h)).to.equal(0);
  });

  it("(g) sends a 60-byte unicast UDP datagram from the sender to VM i's MAC, IP and discard port", () => {
    const f = unicastUdpFrame(3);
    expect(f.length).to.equal(60);
    expect(mac(f, 0)).to.equal("02:48:4e:42:00:03");
    expect(mac(f, 6)).to.equal(SND_MAC);
    const h = expectIpv4Header(f);
    expect(h.readUInt16BE(2)).to.equal(46); // 20 + 8 + 18: fills the minimum frame exactly
    expect(h[8]).to.equal(64);
    expect(h[9]).to.equal(17);
    expect(ip(h, 12)).to.equal("198.19.199.254");
    expect(ip(h, 16)).to.equal("198.19.200.4");
    expect(f.readUInt16BE(34)).to.equal(40000);
    expect(f.readUInt16BE(36)).to.equal(9);
    expect(f.readUInt16BE(38)).to.equal(26);
  });

  it("(h) sends a broadcast DHCPDISCOVER: 0.0.0.0:68 → 255.255.255.255:67, BOOTP of 300 bytes", () => {
    const f = dhcpDiscoverFrame();
    expect(f.length).to.equal(14 + 20 + 8 + 300);
    expect(mac(f, 0)).to.equal("ff:ff:ff:ff:ff:ff");
    const h = expectIpv4Header(f);
    expect(h.readUInt16BE(2)).to.equal(328);
    expect(ip(h, 12)).to.equal("0.0.0.0");
    expect(ip(h, 16)).to.equal("255.255.255.255");
    expect([f.readUInt16BE(34), f.readUInt16BE(36)]).to.deep.equal([68, 67]);
    const bootp = f.subarray(42);
    expect([...bootp.subarray(0, 4)]).to.deep.equal([1, 1, 6, 0]);
    expect(bootp.readUInt16BE(10)).to.equal(0x8000);
    expect(mac(bootp, 28)).to.equal(SND_MAC);
    expect([...bootp.subarray(236, 244)]).to.deep.equal([
      99, 130, 83, 99, 53, 1, 1, 255,
    ]);
  });

  it("(i) sends an ARP request for VM i to VM i's MAC (a neighbour recheck), not broadcast", () => {
    const f = unicastArpFrame(2);
    expect(f.length).to.equal(60);
    expect(mac(f, 0)).to.equal("02:48:4e:42:00:02");
    expect(f.readUInt16BE(12)).to.equal(0x0806);
    const a = f.subarray(14);
    expect([...a.subarray(0, 8)]).to.deep.equal([0, 1, 8, 0, 6, 4, 0, 1]);
    expect(mac(a, 8)).to.equal(SND_MAC);
    expect(ip(a, 14)).to.equal("198.19.199.254");
    expect(mac(a, 18)).to.equal("00:00:00:00:00:00");
    expect(ip(a, 24)).to.equal("198.19.200.3");
    expect([...f.subarray(42)].every((x) => x === 0)).to.be.true; // padding
  });

  it("sends one unicast frame per VM, round robin, and one DHCPDISCOVER; the same frames with and without the table", () => {
    const g = ingressFrames("g", 3);
    expect(g.map((f) => mac(f, 0))).to.deep.equal([
      "02:48:4e:42:00:01",
      "02:48:4e:42:00:02",
      "02:48:4e:42:00:03",
    ]);
    expect(ingressFrames("g1", 3)).to.deep.equal(g);
    expect(ingressFrames("i1", 2)).to.deep.equal([
      unicastArpFrame(1),
      unicastArpFrame(2),
    ]);
    expect(ingressFrames("h", 300)).to.deep.equal([dhcpDiscoverFrame()]);
  });
});

describe("dataplane bench, cases (g)–(i1): checks", () => {
  const unicastOk = {
    clonesPerFrame: 1.13,
    bridgeRxPerFrame: 0,
    repliesPerFrame: 0,
  };
  const tableOk = {
    answeredPerFrame: 0,
    hookedPorts: 41,
    senderPortHooked: true,
  };

  it("accepts a round that did what the case claims", () => {
    expect(ingressProblems("g", 40, unicastOk)).to.deep.equal([]);
    expect(
      ingressProblems("i1", 40, { ...unicastOk, ...tableOk }),
    ).to.deep.equal([]);
    expect(
      ingressProblems("h1", 40, {
        clonesPerFrame: 40.13,
        bridgeRxPerFrame: 1,
        repliesPerFrame: 0,
        ...tableOk,
      }),
    ).to.deep.equal([]);
  });

  it("names a flooded or lost unicast frame, a missing broadcast clone and something that answered", () => {
    expect(
      ingressProblems("g", 40, { ...unicastOk, clonesPerFrame: 40 })[0],
    ).to.match(/flooded them/);
    expect(
      ingressProblems("i", 40, { ...unicastOk, clonesPerFrame: 0.2 })[0],
    ).to.match(/lost/);
    expect(
      ingressProblems("h", 40, {
        clonesPerFrame: 20,
        bridgeRxPerFrame: 1,
        repliesPerFrame: 0,
      })[0],
    ).to.match(/only 20 of 40 clones/);
    expect(
      ingressProblems("g", 40, { ...unicastOk, repliesPerFrame: 1 })[0],
    ).to.match(/something answered/);
  });

  it("with the table: names an answered frame and a table hooked on the wrong ports", () => {
    expect(
      ingressProblems("i1", 40, {
        ...unicastOk,
        ...tableOk,
        answeredPerFrame: 1,
      })[0],
    ).to.match(/answered a frame it must let through/);
    expect(
      ingressProblems("g1", 40, {
        ...unicastOk,
        ...tableOk,
        senderPortHooked: false,
      })[0],
    ).to.match(/hooked on 41 ports \(sender's port: false\)/);
    expect(
      ingressProblems("g1", 40, {
        ...unicastOk,
        ...tableOk,
        hookedPorts: 0,
      })[0],
    ).to.match(/expected the 40 VM ports and the sender's/);
    // without the table there is no table to check
    expect(
      ingressProblems("g", 40, { ...unicastOk, hookedPorts: 0 }),
    ).to.deep.equal([]);
  });

  it("reads the hooked devices from nft's listing: one or many per chain, quoted or not", () => {
    const listing = [
      "table netdev hnbd_arp {",
      "\tchain ingress_0 {",
      '\t\ttype filter hook ingress devices = { hnbd-p1, "hnbd-snd", hnbd-p2 } priority filter; policy accept;',
      "\t}",
      "\tchain ingress_1 {",
      '\t\ttype filter hook ingress device "hnbd-p3" priority filter; policy accept;',
      "\t}",
      "}",
    ].join("\n");
    expect(hookedDevices(listing)).to.deep.equal([
      "hnbd-p1",
      "hnbd-snd",
      "hnbd-p2",
      "hnbd-p3",
    ]);
    expect(hookedDevices("table netdev hnbd_arp {\n}\n")).to.deep.equal([]);
  });

  it("reads perf's kernel symbols, with sample counts where perf report -n gave them", () => {
    const report = [
      "# Samples: 2K of event 'cpu-clock'",
      "     6.72%           151  [k] veth_xmit",
      "     2.24%            50  [k] nft_do_chain",
      "     1.10%            25  [.] _PyEval_EvalFrameDefault",
    ].join("\n");
    expect(perfKernelSymbols(report)).to.deep.equal([
      { pct: 6.72, samples: 151, sym: "veth_xmit" },
      { pct: 2.24, samples: 50, sym: "nft_do_chain" },
    ]);
    expect(perfKernelSymbols("     7.44%  [k] __dev_queue_xmit")).to.deep.equal(
      [{ pct: 7.44, sym: "__dev_queue_xmit" }],
    );
  });
});

describe("dataplane bench, cases (g)–(i1): the report line", () => {
  const rep = (us: number): RepResult => ({ attributedUs: us }) as RepResult;
  const result = (c: "g" | "g1", us: number[], ok = true): CaseResult => ({
    case: c,
    label: c,
    n: 100,
    buildS: 1,
    reps: us.map(rep),
    median: {
      attributedUs: us[1]!,
      softirqUs: 0,
      procStatUs: 0,
      procStatValid: true,
    },
    verify: { clonesPerFrame: 1.05, answeredPerFrame: 0, ok },
  });

  const options = {
    ns: [100],
    cases: ["g" as const, "g1" as const],
    frames: 1,
    rate: 1,
    reps: 3,
    cpu: 1,
  };

  it("prints without, with, the paired ratio and difference, the checks and the profiles' nft_* cost", () => {
    const lines = ingressLines({
      options,
      results: [result("g", [40, 42, 44]), result("g1", [41, 43, 46])],
      ratios: { "g1/g@100": 1.02 },
      deltas: { "g1-g@100": 1 },
      profiles: [
        {
          case: "g",
          n: 100,
          reason: "",
          top: [],
          nftSamples: 0,
          nftUsPerFrame: 0,
          kernelUsPerFrame: 58.2,
        },
        {
          case: "g1",
          n: 100,
          reason: "",
          top: [],
          nftSamples: 270,
          nftUsPerFrame: 1.35,
          kernelUsPerFrame: 60.5,
        },
      ],
    });
    expect(lines).to.have.length(2);
    expect(lines[0]).to.equal(
      "(g) unicast IPv4 UDP to a VM, N = 100: 42.0 µs per frame without the ARP answer table, 43.0 with it (g1); " +
        "with/without 1.02, difference +1.00 µs (paired medians over 3 rounds); VM ports reached per frame 1.05/1.05, answered 0; checks ok",
    );
    expect(lines[1]).to.equal(
      "    profile at N = 100: nft_* symbols 1.350 µs per frame with the table (270 samples), 0.000 without (0); " +
        "all kernel samples 60.5 / 58.2 µs per frame",
    );
  });

  it("says FAILED when a round of either case failed its checks, and skips pairs not measured", () => {
    const lines = ingressLines({
      options,
      results: [result("g", [40, 42, 44]), result("g1", [41, 43, 46], false)],
      ratios: {},
      profiles: [],
    });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(
      /with\/without –, difference – µs .*checks FAILED$/,
    );
  });
});
