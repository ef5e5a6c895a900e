// bench/dataplane.ts case (f), pure part: what each of the three "hosts" runs. (f) is hostnet's
// segment, made by the VxlanDevice and FdbEntry planners ((f1): plus neigh_suppress on the VM
// ports); (f0) floods with learning on and head-end replication. N = 2 VM ports per host: host h holds VMs 2h-1 and 2h, the sender is on host 1.
import { expect } from "chai";
import {
  Batch,
  segmentHostBatches,
  stepBatches,
  underlayIp,
  withBaseline,
} from "../../bench/dataplane";

const lines = (bs: Batch[], tool: "ip" | "bridge"): string[] =>
  bs.filter((b) => b.tool === tool).flatMap((b) => b.lines);
const all = (bs: Batch[]): string[] => bs.flatMap((b) => b.lines);

describe("dataplane bench, case (f): a 3-host segment", () => {
  const f2 = segmentHostBatches("f", 2, 2);

  it("(f) makes the vxlan device first, learning off, neigh_suppress on its port", () => {
    expect(f2[0]!.tool).to.equal("ip");
    expect(f2[0]!.lines[0]).to.equal(
      "link add hnbd-vx type vxlan id 4242 local 198.19.250.2 dstport 4789 nolearning",
    );
    expect(lines(f2, "bridge")).to.include(
      "link set dev hnbd-vx learning off flood off neigh_suppress on",
    );
  });

  it("(f) sets the managedFdb flags on every local VM port, without neigh_suppress (config refuses arpSuppress in a segment); (f1) adds it", () => {
    const flags = (bs: Batch[]) =>
      lines(bs, "bridge").filter((l) => l.startsWith("link set"));
    expect(flags(f2)).to.deep.equal([
      "link set dev hnbd-vx learning off flood off neigh_suppress on",
      "link set dev hnbd-p1 learning off flood off",
      "link set dev hnbd-p2 learning off flood off",
    ]);
    const f1 = segmentHostBatches("f1", 2, 2);
    expect(flags(f1)).to.deep.equal([
      "link set dev hnbd-vx learning off flood off neigh_suppress on",
      "link set dev hnbd-p1 learning off flood off neigh_suppress on",
      "link set dev hnbd-p2 learning off flood off neigh_suppress on",
    ]);
    // otherwise the same commands
    expect(all(f1).filter((l) => !l.startsWith("link set"))).to.deep.equal(
      all(f2).filter((l) => !l.startsWith("link set")),
    );
  });

  it("(f) points local VMs at their port and remote VMs at their host's underlay address", () => {
    const b = lines(f2, "bridge");
    // host 2's own VMs (3, 4) on their ports
    expect(b).to.include("fdb add 02:48:4e:42:00:03 dev hnbd-p1 master static");
    expect(b).to.include("fdb add 02:48:4e:42:00:04 dev hnbd-p2 master static");
    // VM 1 lives on host 1, VM 6 on host 3, the sender on host 1
    for (const [mac, h] of [
      ["02:48:4e:42:00:01", 1],
      ["02:48:4e:42:00:06", 3],
      ["02:48:4e:42:ff:fe", 1],
    ] as const) {
      expect(b).to.include(`fdb add ${mac} dev hnbd-vx master static`);
      expect(b).to.include(
        `fdb replace ${mac} dev hnbd-vx self dst ${underlayIp(h)} vni 4242 static`,
      );
    }
    expect(b.filter((l) => l.includes(" self dst "))).to.have.length(5);
    expect(all(f2).some((l) => l.startsWith("fdb append 00:00:00:00:00:00"))).to
      .be.false;
  });

  it("(f) runs in three batches: the device; all port flags and fdb lines; all neighbours", () => {
    expect(f2.map((b) => b.tool)).to.deep.equal(["ip", "bridge", "ip"]);
    expect(f2[2]!.lines.every((l) => l.startsWith("neigh replace"))).to.be.true;
  });

  it("(f) publishes a permanent neighbour for every VM of the segment and the sender", () => {
    const neigh = lines(f2, "ip").filter((l) => l.startsWith("neigh replace"));
    expect(neigh).to.have.length(3 * 2 + 1);
    expect(neigh).to.include(
      "neigh replace 198.19.200.7 lladdr 02:48:4e:42:00:06 dev hnbd-br nud permanent",
    );
    expect(neigh).to.include(
      "neigh replace 198.19.199.254 lladdr 02:48:4e:42:ff:fe dev hnbd-br nud permanent",
    );
  });

  it("(f0) floods: learning on, kernel port flags, one all-zeros entry per remote host, nothing else", () => {
    const f0 = segmentHostBatches("f0", 1, 2);
    expect(f0[0]!.lines[0]).to.equal(
      "link add hnbd-vx type vxlan id 4242 local 198.19.250.1 dstport 4789 learning",
    );
    expect(lines(f0, "bridge")).to.deep.equal([
      "fdb append 00:00:00:00:00:00 dev hnbd-vx dst 198.19.250.2",
      "fdb append 00:00:00:00:00:00 dev hnbd-vx dst 198.19.250.3",
    ]);
    expect(all(f0).some((l) => l.startsWith("neigh"))).to.be.false;
  });

  it("merges consecutive operations of one tool, keeps the order, refuses non-batch operations", () => {
    const op = (tool: "ip" | "bridge", line: string) => ({
      op: { kind: "batch" as const, tool, lines: [line], what: line },
    });
    expect(
      stepBatches([
        op("ip", "a"),
        op("ip", "b"),
        op("bridge", "c"),
        op("ip", "d"),
      ]),
    ).to.deep.equal([
      { tool: "ip", lines: ["a", "b"] },
      { tool: "bridge", lines: ["c"] },
      { tool: "ip", lines: ["d"] },
    ]);
    expect(() =>
      stepBatches([
        { op: { kind: "nft", script: "flush ruleset", what: "load table x" } },
      ] as never),
    ).to.throw(/nft operation \(load table x\)/);
  });

  it("runs (f) always with its baseline (f0), right after it", () => {
    expect(withBaseline(["a", "f", "c"])).to.deep.equal(["a", "f", "f0", "c"]);
    expect(withBaseline(["f0", "f"])).to.deep.equal(["f0", "f"]);
    expect(withBaseline(["a", "c"])).to.deep.equal(["a", "c"]);
  });
});
