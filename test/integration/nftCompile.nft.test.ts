/**
 * nftCompile against the real nft and kernel, inside throwaway network namespaces
 * (hnnft-<pid>, hnnft-<pid>-a, hnnft-<pid>-b). Never touches the root namespace's ruleset.
 */
import { expect } from "chai";
import {
  chainNamesForPort,
  compileFilterChain,
  FilterChainSpecInput,
  removeScript,
} from "../../providers/kinds/filterChain";
import {
  inNs,
  must,
  quietNamespace,
  Result,
  run,
  vmBehindPort,
} from "../support/localRun";

const NS = `hnnft-${process.pid}`;
const NS_A = `${NS}-a`;
const NS_B = `${NS}-b`;
const PORT_A = "vm-a.0";
const PORT_B = "vm-b.0";
const MAC_A = "02:00:00:c8:00:01";
const MAC_B = "02:00:00:c8:00:02";
const IP_A = "198.18.200.1";
const IP_B = "198.18.200.2";
const IP_BR = "198.18.200.254";

const nft = (ns: string, script: string, check = false): Result =>
  run(inNs(ns, ["nft", ...(check ? ["-c"] : []), "-f", "-"]), script);

function ping(ns: string, dst: string, src?: string): boolean {
  const r = run(
    inNs(ns, [
      "ping",
      "-n",
      "-q",
      "-c",
      "2",
      "-i",
      "0.2",
      "-W",
      "1",
      ...(src ? ["-I", src] : []),
      dst,
    ]),
  );
  return r.status === 0;
}

function spec(n: number, table: string): FilterChainSpecInput {
  const ports = [];
  for (let i = 0; i < n; i++) {
    const hi = ((i >> 8) & 0xff).toString(16).padStart(2, "0");
    const lo = (i & 0xff).toString(16).padStart(2, "0");
    ports.push(
      i % 3 === 2
        ? {
            port: `vnet${i}`,
            policy: (i % 2 === 0 ? "accept-all" : "drop-all") as
              "accept-all" | "drop-all",
          }
        : {
            port: i % 2 === 0 ? `vm${i}.0` : `tap-${i}@x`,
            policy: "clean-traffic" as const,
            mac: `02:00:00:01:${hi}:${lo}`,
            ipv4: [`198.18.${10 + (i >> 8)}.${i & 0xff}`],
            ipv6: [`2001:db8::${i.toString(16)}`],
            allowIpv6: i % 2 === 0,
            rules:
              i % 5 === 0
                ? [
                    {
                      direction: "to-vm" as const,
                      action: "accept" as const,
                      proto: "tcp" as const,
                      dport: 22,
                      comment: "ssh",
                    },
                  ]
                : [],
          },
    );
  }
  return { table, ports };
}

interface NftJson {
  nftables: Record<string, unknown>[];
}

function listTable(ns: string, table: string): NftJson {
  return JSON.parse(
    must(inNs(ns, ["nft", "-j", "list", "table", "bridge", table])),
  ) as NftJson;
}

function mapElements(doc: NftJson, name: string): unknown[] {
  const m = doc.nftables
    .map((o) => o["map"] as { name: string; elem?: unknown[] } | undefined)
    .find((x) => x !== undefined && x.name === name);
  expect(m, `map ${name}`).to.not.equal(undefined);
  return m!.elem ?? [];
}

/** Sum of packet counters of the `... counter drop` rules of one chain. */
function droppedPackets(ns: string, table: string, chain: string): number {
  const doc = JSON.parse(
    must(inNs(ns, ["nft", "-j", "list", "chain", "bridge", table, chain])),
  ) as NftJson;
  let total = 0;
  for (const o of doc.nftables) {
    const rule = o["rule"] as { expr: Record<string, unknown>[] } | undefined;
    if (rule === undefined) continue;
    const isDrop = rule.expr.some((e) => "drop" in e);
    const counter = rule.expr.find((e) => "counter" in e)?.["counter"] as
      { packets: number } | undefined;
    if (isDrop && counter !== undefined) total += counter.packets;
  }
  return total;
}

function cleanup(): void {
  for (const ns of [NS_A, NS_B, NS]) run(["ip", "netns", "del", ns]);
}

describe("nftCompile with real nft (netns)", function () {
  this.timeout(120_000);

  before(function () {
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
      console.log("    (skipped: needs root for network namespaces)");
      this.skip();
    }
    if (run(["nft", "--version"]).status !== 0) {
      console.log("    (skipped: nft not installed)");
      this.skip();
    }
    cleanup();
    must(["ip", "netns", "add", NS]);
  });

  after(cleanup);

  describe("nft -c and load", () => {
    for (const n of [1, 3, 300]) {
      it(`nft -c accepts the compiled script for ${n} port(s)`, () => {
        const { script } = compileFilterChain(spec(n, "hnt"));
        const r = nft(NS, script, true);
        expect(r.stderr, r.stderr).to.equal("");
        expect(r.status).to.equal(0);
      });
    }

    it("nft -c accepts raw sets, chains and set statements inside our table", () => {
      const raw = [
        "set seen4 {",
        "\ttype ipv4_addr",
        "\tflags dynamic",
        "}",
        "chain extra {",
        "\tadd @seen4 { ip saddr } counter",
        "\tdelete @seen4 { ip saddr }",
        "}",
      ].join("\n");
      const r = nft(
        NS,
        compileFilterChain({ ...spec(3, "hnt"), raw }).script,
        true,
      );
      expect(r.status, r.stderr).to.equal(0);
    });

    it("nft -c rejects a broken raw escape hatch (validated by nft, not by us)", () => {
      const { script } = compileFilterChain({
        ...spec(1, "hnt"),
        raw: "chain extra {\n\tcounter nonsense\n}",
      });
      expect(nft(NS, script, true).status).to.not.equal(0);
    });

    it("loads 300 ports, replaces idempotently, lists 300 map elements, removes", () => {
      const out = compileFilterChain(spec(300, "hnt300"));
      for (let round = 0; round < 2; round++) {
        const r = nft(NS, out.script);
        expect(r.status, r.stderr).to.equal(0);
        const doc = listTable(NS, "hnt300");
        expect(mapElements(doc, "from_vm")).to.have.length(300);
        expect(mapElements(doc, "to_vm")).to.have.length(300);
        const chains = doc.nftables
          .map((o) => o["chain"] as { name: string; hook?: string } | undefined)
          .filter((c): c is { name: string; hook?: string } => c !== undefined);
        expect(chains.map((c) => c.name).sort()).to.deep.equal(
          [...out.chains].sort(),
        );
        expect(
          chains
            .filter((c) => c.hook !== undefined)
            .map((c) => c.hook)
            .sort(),
        ).to.deep.equal(["forward", "input"]);
        const baseRules = doc.nftables.filter((o) => {
          const rule = o["rule"] as { chain: string } | undefined;
          return (
            rule !== undefined &&
            (rule.chain === "forward_hook" || rule.chain === "input_hook")
          );
        });
        expect(baseRules).to.have.length(3);
      }
      // replacing with a smaller spec leaves no stale elements or chains
      expect(
        nft(NS, compileFilterChain(spec(3, "hnt300")).script).status,
      ).to.equal(0);
      expect(mapElements(listTable(NS, "hnt300"), "to_vm")).to.have.length(3);
      // removal, twice: deleting an absent table is not an error
      for (let i = 0; i < 2; i++) {
        const r = nft(NS, removeScript("hnt300"));
        expect(r.status, r.stderr).to.equal(0);
      }
      expect(must(inNs(NS, ["nft", "list", "tables"]))).to.not.contain(
        "hnt300",
      );
    });
  });

  describe("functional: clean-traffic on a bridge with two VMs", () => {
    const table = "hostnet";
    const chainA = chainNamesForPort(PORT_A);

    before(function () {
      if (run(["ping", "-V"]).status !== 0) {
        console.log(
          "    (skipped: ping not installed; Debian package iputils-ping)",
        );
        this.skip();
      }
      quietNamespace(NS_A);
      quietNamespace(NS_B);
      // NS exists since the outer before(); keep IPv6 autoconfiguration noise out of the counters
      for (const k of ["all", "default"])
        must(inNs(NS, ["sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]));
      must(["ip", "-n", NS, "link", "set", "lo", "up"]);
      must(["ip", "-n", NS, "link", "add", "br0", "type", "bridge"]);
      must(["ip", "-n", NS, "addr", "add", `${IP_BR}/24`, "dev", "br0"]);
      must(["ip", "-n", NS, "link", "set", "br0", "up"]);
      for (const [port, ns, mac, ip] of [
        [PORT_A, NS_A, MAC_A, IP_A],
        [PORT_B, NS_B, MAC_B, IP_B],
      ] as const)
        vmBehindPort(NS, "br0", port, { ns, mac, ip });
      const r = nft(
        NS,
        compileFilterChain({
          table,
          ports: [
            { port: PORT_A, policy: "clean-traffic", mac: MAC_A, ipv4: [IP_A] },
            { port: PORT_B, policy: "accept-all" },
          ],
        }).script,
      );
      expect(r.status, r.stderr).to.equal(0);
    });

    function flushNeigh(): void {
      for (const ns of [NS, NS_A, NS_B])
        must(["ip", "-n", ns, "neigh", "flush", "all"]);
    }

    it("a (clean MAC and IP) reaches b through the bridge and the bridge host itself", () => {
      expect(ping(NS_A, IP_B), "a → b").to.equal(true);
      expect(ping(NS_A, IP_BR), "a → bridge host (input hook)").to.equal(true);
      expect(ping(NS_B, IP_A), "b → a").to.equal(true);
    });

    it("a spoofed source MAC is dropped (and counted); restoring it restores traffic", () => {
      const before = droppedPackets(NS, table, chainA.in);
      must([
        "ip",
        "-n",
        NS_A,
        "link",
        "set",
        "dev",
        "eth0",
        "address",
        "02:00:00:c8:00:99",
      ]);
      flushNeigh();
      try {
        expect(ping(NS_A, IP_B), "spoofed a → b").to.equal(false);
        expect(ping(NS_A, IP_BR), "spoofed a → bridge host").to.equal(false);
        expect(droppedPackets(NS, table, chainA.in)).to.be.greaterThan(before);
      } finally {
        must([
          "ip",
          "-n",
          NS_A,
          "link",
          "set",
          "dev",
          "eth0",
          "address",
          MAC_A,
        ]);
        flushNeigh();
      }
      expect(ping(NS_A, IP_B), "a → b after restoring the MAC").to.equal(true);
    });

    it("a spoofed source IP is dropped (and counted); the real IP still works", () => {
      expect(ping(NS_A, IP_B), "warm the neighbour caches").to.equal(true);
      must(["ip", "-n", NS_A, "addr", "add", "198.18.200.3/24", "dev", "eth0"]);
      try {
        const before = droppedPackets(NS, table, chainA.in);
        expect(
          ping(NS_A, IP_B, "198.18.200.3"),
          "a → b from 198.18.200.3",
        ).to.equal(false);
        expect(droppedPackets(NS, table, chainA.in)).to.be.greaterThan(before);
        expect(ping(NS_A, IP_B, IP_A), "a → b from its own IP").to.equal(true);
      } finally {
        must([
          "ip",
          "-n",
          NS_A,
          "addr",
          "del",
          "198.18.200.3/24",
          "dev",
          "eth0",
        ]);
      }
    });

    it("b cannot reach a at a MAC other than a's (unicast not for the VM is dropped)", () => {
      // b pins a wrong MAC for a's IP: frames reach a's port (flooded as unknown unicast) but
      // a's to-vm chain drops them.
      const chainOut = chainNamesForPort(PORT_A).out;
      const before = droppedPackets(NS, table, chainOut);
      must([
        "ip",
        "-n",
        NS_B,
        "neigh",
        "replace",
        IP_A,
        "lladdr",
        "02:00:00:c8:00:77",
        "dev",
        "eth0",
        "nud",
        "permanent",
      ]);
      try {
        expect(ping(NS_B, IP_A), "b → a via wrong MAC").to.equal(false);
        expect(droppedPackets(NS, table, chainOut)).to.be.greaterThan(before);
      } finally {
        must(["ip", "-n", NS_B, "neigh", "del", IP_A, "dev", "eth0"]);
      }
      expect(ping(NS_B, IP_A), "b → a again").to.equal(true);
    });

    it("removing the table lifts the filter (spoofed MAC passes again)", () => {
      expect(nft(NS, removeScript(table)).status).to.equal(0);
      must([
        "ip",
        "-n",
        NS_A,
        "link",
        "set",
        "dev",
        "eth0",
        "address",
        "02:00:00:c8:00:99",
      ]);
      flushNeigh();
      try {
        expect(ping(NS_A, IP_B), "unfiltered spoofed a → b").to.equal(true);
      } finally {
        must([
          "ip",
          "-n",
          NS_A,
          "link",
          "set",
          "dev",
          "eth0",
          "address",
          MAC_A,
        ]);
      }
    });
  });
});
