import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
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

  describe("groups of different namespaces run concurrently, attributed as when run one by one", () => {
    // A stand-in for iproute2 on PATH: `ip netns exec NS cmd...` runs cmd with $HN_NS=NS, so the
    // script's structure runs for real under /bin/sh without creating namespaces.
    let bin: string;
    before(() => {
      bin = fs.mkdtempSync(path.join(os.tmpdir(), "hn-lanes-"));
      fs.writeFileSync(
        path.join(bin, "ip"),
        '#!/bin/sh\nif [ "$1 $2" = "netns exec" ]; then HN_NS=$3; export HN_NS; shift 3; exec "$@"; fi\necho "unexpected ip $*" >&2; exit 99\n',
        { mode: 0o755 },
      );
    });
    after(() => fs.rmSync(bin, { recursive: true, force: true }));

    const run = (script: string) =>
      execFileSync("/bin/sh", ["-s"], {
        input: script,
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
    const shOp = (
      netns: string | undefined,
      ...commands: string[][]
    ): HostOp => ({
      kind: "sh",
      netns,
      commands,
      what: commands.map((c) => c.join(" ")).join("; "),
    });

    it("each namespace's groups stay in order in one worker; every op gets its own output and exit code", () => {
      const ops: HostOp[] = [];
      for (let k = 0; k < 6; k++) {
        const ns = `ns${k}`;
        ops.push(shOp(ns, ["sh", "-c", 'echo "first in $HN_NS"']));
        ops.push(
          k === 3
            ? shOp(ns, ["sh", "-c", 'echo "broken in $HN_NS" >&2; exit 7'])
            : shOp(ns, ["sh", "-c", 'echo "second in $HN_NS"']),
        );
      }
      ops.push(shOp(undefined, ["echo", "root"]));
      const plan = buildFlushScript(ops, new Set(), 4);
      expect(plan.script)
        .to.include("hn_lane3()")
        .and.not.include("hn_lane4()");
      const res = attributeResults(plan, run(plan.script));
      for (let k = 0; k < 6; k++) {
        expect(res[2 * k]).to.deep.equal({
          status: "ok",
          output: `first in ns${k}`,
        });
        expect(res[2 * k + 1]).to.deep.equal(
          k === 3
            ? { status: "failed", output: "broken in ns3" }
            : { status: "ok", output: `second in ns${k}` },
        );
      }
      expect(res[12]).to.deep.equal({ status: "ok", output: "root" });
    });

    it("lanes = 1, or ops of one namespace only, give the plain sequential script", () => {
      const two = [shOp("a", ["true"]), shOp("b", ["true"])];
      expect(buildFlushScript(two, new Set(), 1).script).to.not.include(
        "hn_lane",
      );
      expect(
        buildFlushScript([shOp("a", ["true"]), shOp("a", ["false"])]).script,
      ).to.not.include("hn_lane");
      expect(() => buildFlushScript(two, new Set(), 0)).to.throw(/lanes/);
    });

    it("a worker that dies part-way leaves its later groups to be retried, others unaffected", () => {
      const ops = [
        shOp("a", ["echo", "a1"]),
        shOp("b", ["sh", "-c", "kill -9 $PPID"]),
        shOp("b", ["echo", "b2"]),
      ];
      const plan = buildFlushScript(ops, new Set(), 2);
      const res = attributeResults(plan, run(plan.script));
      expect(res[0]).to.deep.equal({ status: "ok", output: "a1" });
      expect(res[1].status).to.equal("retry");
      expect(res[2]).to.deep.equal({ status: "retry", isolate: false });
    });
  });
});
