// Reliability on lab2 (issue 7): what hostnet does when the world misbehaves mid-apply.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { StepReport, TestStack } from "../support/harness";
import { LabHost, labUp, privateKey, ROOT, sshRun } from "../support/lab";

const N = 100;
const BRIDGE = "br-rl";
const TRACE = path.join(ROOT, ".hostnet", "work", `rl-trace-${process.pid}.jsonl`);

const vmName = (i: number): string => `rl${String(i).padStart(3, "0")}`;
const hex = (n: number): string => n.toString(16).padStart(2, "0");

function fleet(h: LabHost, n = N): StackConfig {
  return parseStackConfig({
    hosts: [{ name: "lab2", address: h.address, port: h.port, hostKey: h.hostKey }],
    bridges: [{ name: BRIDGE }],
    vms: Array.from({ length: n }, (_, k) => ({
      name: vmName(k + 1),
      host: "lab2",
      attachment: "isolated-netns",
      bridge: BRIDGE,
      managedFdb: true,
      mac: `02:00:00:7e:${hex((k + 1) >> 8)}:${hex((k + 1) & 255)}`,
      ipv4: [`198.19.70.${k + 1}/24`],
    })),
    rollout: { serial: [1], maxFailures: 0, healthCheck: false },
  });
}

interface TraceRow {
  t: number;
  pid: number;
  host: string;
  what: string;
}

function traceRows(): TraceRow[] {
  if (!fs.existsSync(TRACE)) return [];
  return fs.readFileSync(TRACE, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as TraceRow);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("reliability (lab2)", function () {
  this.timeout(900_000);
  let h: LabHost;
  let fleetStack: TestStack<StackConfig>;

  before(() => {
    h = labUp(3).hosts[1];
    process.env.HOSTNET_TRACE_FILE = TRACE;
    fs.rmSync(TRACE, { force: true });
    fleetStack = new TestStack("test-reliab", fleet(h), async (c) => deployFleet(c, pulumi.secret(privateKey())));
  });

  it("measures", async () => {
    const t0 = Date.now();
    const r = await fleetStack.up();
    console.log("up ms", Date.now() - t0, Object.keys(r.ops).length);
    const rows = traceRows();
    console.log("execs", rows.length, rows.filter((r) => r.what.startsWith("apply")).length);
    console.log(rows.slice(0, 40).map((r) => `${r.t - rows[0].t} ${r.what}`).join("\n"));
    const t1 = Date.now();
    await fleetStack.destroy();
    console.log("destroy ms", Date.now() - t1);
  });
});
