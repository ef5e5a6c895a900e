// Stacks as an operations team runs them: a bad config fails preview listing every problem and
// changes nothing; a fleet rollout stops at an unhealthy canary unless the failure budget allows
// it; the GitOps pipeline script (apply / drift / apply) against the lab environment.
import { expect } from "chai";
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { inlineStack } from "../../scripts/engine";
import { program, deployFleet } from "../../stacks/index";
import { parseStackConfig } from "../../stacks/config";
import {
  fullSnapshot,
  independentSnapshot,
  snapshotDiff,
  TestStack,
} from "../support/harness";
import { LabHost, labUp, privateKey, ROOT, sshRun } from "../support/lab";

function gitops(
  mode: string,
  env: string,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      "node",
      [path.join(ROOT, "dist", "scripts", "gitops.js"), mode, env],
      { env: { ...process.env, HOSTNET_QUIET: "1" }, maxBuffer: 1 << 26 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
          out: stdout + stderr,
        }),
    );
  });
}

describe("stacks: config validation, fleet rollout, GitOps pipeline", function () {
  this.timeout(900_000);
  let hosts: LabHost[];

  before(() => {
    hosts = labUp(3).hosts;
  });

  it("a config with several errors fails preview with one message listing each, and changes nothing", async () => {
    const before = hosts.map(independentSnapshot);
    const stack = await inlineStack("test-badconfig", program);
    await stack.setAllConfig({
      "hostnet:inventory": { value: "lab" },
      "hostnet:bridges": { value: JSON.stringify([{ name: "br-bad" }]) },
      "hostnet:vms": {
        value: JSON.stringify([
          {
            name: "bad1",
            host: "lab9",
            attachment: "bridged",
            bridge: "br-bad",
            mac: "02:00:00:2d:00:01",
            ipv4: ["198.19.40.1/24"],
          },
          {
            name: "bad2",
            host: "lab1",
            attachment: "bridged",
            bridge: "br-nope",
            mac: "02:00:00:2d:00:01",
            ipv4: ["198.19.40.300/24"],
          },
          {
            name: "bad3; rm",
            host: "lab1",
            attachment: "tunnel",
            mac: "zz",
            ipv4: [],
          },
        ]),
      },
    });
    let message = "";
    try {
      await stack.preview({ color: "never" });
    } catch (e) {
      message = String((e as Error).message);
    } finally {
      await stack.workspace
        .removeStack("test-badconfig")
        .catch(() => undefined);
    }
    for (const expected of [
      "vms[1].ipv4[0]",
      "vms[2].name",
      "vms[2].attachment",
      "vms[2].mac",
      "vms[2].ipv4",
    ]) {
      expect(message, expected).to.include(expected);
    }
    // Schema problems are reported together; cross-reference problems are checked on a schema-clean config:
    expect(() =>
      parseStackConfig({
        inventory: "lab",
        bridges: [{ name: "br-bad" }],
        vms: [
          {
            name: "bad1",
            host: "lab9",
            attachment: "bridged",
            bridge: "br-bad",
            mac: "02:00:00:2d:00:01",
            ipv4: ["198.19.40.1/24"],
          },
          {
            name: "bad2",
            host: "lab1",
            attachment: "bridged",
            bridge: "br-nope",
            mac: "02:00:00:2d:00:01",
            ipv4: ["198.19.40.1/24"],
          },
        ],
      }),
    ).to.throw(
      /vms\[0\]\.host: no host named lab9[\s\S]*vms\[1\]\.bridge: no bridge named br-nope[\s\S]*vms\[1\]\.mac: 02:00:00:2d:00:01 is already used by vms\[0\][\s\S]*vms\[1\]\.ipv4\[0\]: 198\.19\.40\.1 is already used/,
    );
    expect(hosts.map(independentSnapshot)).to.deep.equal(before);
  });

  describe("fleet rollout with a health gate", () => {
    const key = () => pulumi.secret(privateKey());
    // Canary lab1 gets two VMs on one bridge in different subnets: they cannot reach each other,
    // so its health check fails. lab2 is healthy.
    const fleet = (maxFailures: number) =>
      parseStackConfig({
        inventory: "lab",
        bridges: [{ name: "br-g" }],
        vms: [
          {
            name: "ga",
            host: "lab1",
            attachment: "bridged",
            bridge: "br-g",
            mac: "02:00:00:2e:00:01",
            ipv4: ["198.19.50.1/24"],
            filter: "none",
            simulate: true,
          },
          {
            name: "gb",
            host: "lab1",
            attachment: "bridged",
            bridge: "br-g",
            mac: "02:00:00:2e:00:02",
            ipv4: ["198.19.51.2/24"],
            filter: "none",
            simulate: true,
          },
          {
            name: "gc",
            host: "lab2",
            attachment: "bridged",
            bridge: "br-g",
            mac: "02:00:00:2e:00:03",
            ipv4: ["198.19.50.3/24"],
            filter: "none",
            simulate: true,
          },
        ],
        rollout: { serial: [1, "100%"], maxFailures, healthCheck: true },
      });
    const onlyLab12 = (c: ReturnType<typeof fleet>) => ({
      ...c,
      hosts: c.hosts.filter((h) => h.name === "lab1" || h.name === "lab2"),
    });
    // Config is built in before(): it reads the lab inventory, which exists only once the lab is up.
    const stack = new TestStack(
      "test-rollout",
      undefined as unknown as ReturnType<typeof fleet>,
      async (c) => deployFleet(c, key()),
    );
    let baseline: Array<Record<string, any>>;
    before(() => {
      stack.config = onlyLab12(fleet(0));
      baseline = hosts.map(fullSnapshot);
    });
    after(() => stack.dispose());

    it("stops after an unhealthy canary: later batches are not touched", async () => {
      let message = "";
      await stack.up().catch((e) => (message = String(e.message)));
      expect(message)
        .to.include("rollout stopped after batch 0")
        .and.include("lab1")
        .and.include("cannot reach 198.19.51.2");
      expect(sshRun(hosts[0], "ip -o link show br-g")).to.include("br-g"); // the canary was applied
      expect(sshRun(hosts[1], "ip -o link show br-g 2>&1 || true")).to.include(
        "does not exist",
      ); // lab2 untouched
    });

    it("goes on when the failure budget allows one unhealthy host", async () => {
      stack.config = onlyLab12(fleet(1));
      const up = await stack.up();
      expect(up.ops["rollout-batch-0"]).to.be.oneOf(["create", "update"]);
      expect(sshRun(hosts[1], "ip -o link show br-g")).to.include("br-g");
      expect(
        sshRun(hosts[1], "ip netns exec guest-gc ip -o addr show eth0"),
      ).to.include("198.19.50.3/24");
    });

    it("destroy leaves every host exactly as the full snapshot before the rollout", async () => {
      await stack.destroy();
      hosts.forEach((h, i) =>
        expect(
          snapshotDiff(baseline[i], fullSnapshot(h)),
          h.name,
        ).to.deep.equal([]),
      );
    });
  });

  it("the GitOps pipeline against the lab: apply, scheduled drift check, drift caught and named, apply repairs", async () => {
    const lab1 = hosts[0];
    const baseline = hosts.map(fullSnapshot);
    try {
      const apply = await gitops("apply", "lab");
      expect(apply.code, apply.out).to.equal(0);
      expect(apply.out).to.include("no drift");
      const clean = await gitops("drift", "lab");
      expect(clean.code, clean.out).to.equal(0);
      sshRun(
        lab1,
        "bridge fdb del 02:00:00:0a:01:01 dev hv-web1 master static; bridge link set dev hv-web1 learning on",
      );
      const drift = await gitops("drift", "lab");
      expect(drift.code, drift.out).to.equal(3);
      expect(drift.out).to.match(
        /DRIFT FdbEntry lab1-web1-fdb: missing on the host/,
      );
      expect(drift.out).to.match(
        /DRIFT VethLink lab1-web1-uplink: update: a\.portFlags.* \[VM web1, key web1\]/,
      );
      // The JSON report names the VM (and its interface/namespace key) of each drifted object.
      const report = JSON.parse(
        fs.readFileSync(
          path.join(ROOT, ".hostnet", "reports", "lab-drift.json"),
          "utf8",
        ),
      );
      const fdb = report.drift.find((d: any) => d.resource === "lab1-web1-fdb");
      expect(fdb?.vm, JSON.stringify(report.drift)).to.deep.equal({
        name: "web1",
        key: "web1",
      });
      const repair = await gitops("apply", "lab");
      expect(repair.code, repair.out).to.equal(0);
      expect(sshRun(lab1, "bridge -j -d link show dev hv-web1")).to.include(
        '"learning":false',
      );
    } finally {
      const stack = await (
        await import("../../scripts/stacks")
      ).environmentStack("lab");
      await stack.destroy({ color: "never", parallel: 64 });
    }
    // Destroy leaves every host exactly as the full snapshot before the pipeline's first apply.
    hosts.forEach((h, i) =>
      expect(snapshotDiff(baseline[i], fullSnapshot(h)), h.name).to.deep.equal(
        [],
      ),
    );
  });
});
