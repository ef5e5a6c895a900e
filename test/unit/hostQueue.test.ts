import { expect } from "chai";
import { execFileSync } from "child_process";
import {
  attributeResults,
  buildFlushScript,
  HostOp,
} from "../../providers/host";

const ipOp = (lines: string[], netns?: string): HostOp => ({
  kind: "batch",
  tool: "ip",
  netns,
  lines,
  what: lines[0],
});

describe("hostQueue: flush planning and result attribution", () => {
  it("merges ops by (tool, namespace) in first-seen order and keeps sh ops separate", () => {
    const ops: HostOp[] = [
      ipOp(["link add a type bridge"]),
      ipOp(["link add b type bridge"], "ns1"),
      ipOp(["link add c type bridge", "link set c up"]),
      {
        kind: "sh",
        commands: [["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]],
        what: "sysctl",
      },
      { kind: "sh", netns: "ns1", commands: [["true"]], what: "noop" },
      { kind: "nft", script: "table bridge t {}", what: "t" },
      { kind: "nft", script: "table bridge u {}", what: "u" },
    ];
    const plan = buildFlushScript(ops);
    expect(
      plan.groups.map((g) => [g.tool, g.netns ?? "", g.ops]),
    ).to.deep.equal([
      ["ip", "", [0, 2]],
      ["ip", "ns1", [1]],
      ["sh", "", [3]],
      ["sh", "ns1", [4]],
      ["nft", "", [5, 6]],
    ]);
    expect(plan.groups[0].ranges).to.deep.equal([
      [1, 1],
      [2, 3],
    ]);
    expect(plan.script).to.include("ip -n ns1 -batch -");
    expect(plan.script).to.include("ip netns exec ns1 true");
  });

  it("isolated ops get a group of their own", () => {
    const plan = buildFlushScript(
      [ipOp(["l1"]), ipOp(["l2"]), ipOp(["l3"])],
      new Set([1]),
    );
    expect(plan.groups.map((g) => g.ops)).to.deep.equal([[0, 2], [1]]);
  });

  it("attributes a failing batch line to exactly its op; earlier ops succeed, later ones are retried", () => {
    const ops = [ipOp(["x1"]), ipOp(["y1", "y2"]), ipOp(["z1"])];
    const plan = buildFlushScript(ops);
    const out = [
      "@@hn group 0",
      "RTNETLINK answers: File exists",
      "Command failed -:3",
      "@@hn rc 0 1",
      "@@hn end",
    ].join("\n");
    const res = attributeResults(plan, out);
    expect(res[0]).to.deep.equal({ status: "ok", output: "" });
    expect(res[1]).to.deep.equal({
      status: "failed",
      output: "RTNETLINK answers: File exists",
    });
    expect(res[2]).to.deep.equal({ status: "retry", isolate: false });
  });

  it("an unattributable failure of a merged group retries every op alone", () => {
    const ops: HostOp[] = [
      { kind: "nft", script: "a", what: "a" },
      { kind: "nft", script: "b", what: "b" },
    ];
    const plan = buildFlushScript(ops);
    const res = attributeResults(
      plan,
      "@@hn group 0\nError: syntax error\n@@hn rc 0 1\n@@hn end\n",
    );
    expect(res).to.deep.equal([
      { status: "retry", isolate: true },
      { status: "retry", isolate: true },
    ]);
  });

  it("a group the script never reached is retried, not failed", () => {
    const plan = buildFlushScript([ipOp(["a"]), ipOp(["b"], "ns")]);
    const res = attributeResults(plan, "@@hn group 0\n@@hn rc 0 0\n");
    expect(res[0].status).to.equal("ok");
    expect(res[1]).to.deep.equal({ status: "retry", isolate: false });
  });

  it("the flush script is valid sh and reports per-group exit codes", () => {
    const ops: HostOp[] = [
      { kind: "sh", commands: [["echo", "it's; $(not run)"]], what: "echo" },
      { kind: "sh", commands: [["false"]], what: "fail" },
    ];
    const plan = buildFlushScript(ops);
    const out = execFileSync("/bin/sh", ["-s"], {
      input: plan.script,
      encoding: "utf8",
    });
    const res = attributeResults(plan, out);
    expect(res[0]).to.deep.equal({ status: "ok", output: "it's; $(not run)" });
    expect(res[1].status).to.equal("failed");
  });
});
