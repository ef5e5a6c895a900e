// The rollout gate resumes (issue 13, item 2): a host in batch 2 that is broken behind hostnet's
// back (a foreign nft table that drops bridged frames, so its VMs cannot reach each other) stops
// the rollout, naming the host, with the later batch untouched. The operator fixes the host; the
// next plain `up` — same config, no refresh, no state surgery — re-checks it, passes the gate and
// applies the last batch. Afterwards a preview (with and without refresh) shows nothing to do.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { deployFleet } from "../../stacks/index";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { independentSnapshot, StepReport, TestStack } from "../support/harness";
import {
  breakBridging,
  LabHost,
  labUp,
  privateKey,
  sshRun,
} from "../support/lab";

const HOSTS = ["lab1", "lab2", "lab3", "lab4"];
const BRIDGE = "br-gr";
/** Drops every frame the host's bridges forward: the VMs' pings fail, nothing hostnet manages changes. */
const { brk: BREAK, fix: FIX } = breakBridging("gr_break");

/** Two simulated VMs per host on one bridge; serial [1, 2, "100%"]: lab1 | lab2, lab3 | lab4. */
function fleetConfig(): StackConfig {
  return parseStackConfig({
    inventory: "lab",
    bridges: [{ name: BRIDGE }],
    vms: HOSTS.flatMap((host, i) =>
      ["a", "b"].map((s, k) => ({
        name: `gr${i + 1}${s}`,
        host,
        attachment: "bridged",
        bridge: BRIDGE,
        filter: "none",
        simulate: true,
        mac: `02:00:00:3c:0${i + 1}:0${k + 1}`,
        ipv4: [`198.19.60.${(i + 1) * 10 + k + 1}/24`],
      })),
    ),
    rollout: { serial: [1, 2, "100%"], maxFailures: 0, healthCheck: true },
  });
}

function changed(r: StepReport): Record<string, string> {
  return Object.fromEntries(
    Object.entries(r.ops).filter(
      ([, op]) => !["same", "refresh", "read"].includes(op),
    ),
  );
}

describe("rollout gate resumes after the operator fixes the host (4 lab hosts, serial [1, 2, 100%])", function () {
  this.timeout(900_000);
  let hosts: LabHost[];
  let stack: TestStack<StackConfig>;
  let pristine: unknown[];
  const has = (h: LabHost, link: string): boolean =>
    sshRun(h, `ip -o link show ${link} 2>/dev/null || true`).includes(link);

  before(async () => {
    hosts = labUp(4).hosts.filter((h) => HOSTS.includes(h.name));
    expect(hosts.map((h) => h.name)).to.deep.equal(HOSTS);
    stack = new TestStack<StackConfig>(
      "test-gate-resume",
      fleetConfig(),
      async (c) => ({
        ...deployFleet(
          { ...c, hosts: c.hosts.filter((h) => HOSTS.includes(h.name)) },
          pulumi.secret(privateKey()),
        ),
      }),
    );
    await stack.destroy().catch(() => undefined); // state left by an interrupted run
    sshRun(hosts[2], FIX);
    pristine = hosts.map(independentSnapshot);
  });

  after(async () => {
    if (hosts?.[2]) sshRun(hosts[2], FIX);
    await stack?.dispose();
  });

  it("a broken lab3 (batch 2) stops the rollout, naming lab3 and its failed ping; lab4 is untouched", async () => {
    sshRun(hosts[2], BREAK);
    expect(sshRun(hosts[2], "nft list tables")).to.include(
      "table bridge gr_break",
    );
    let message = "";
    let state = "";
    await stack.up().then(
      async () => (state = await stack.exportState()),
      (e) => (message = String(e.message)),
    );
    expect(message, state)
      .to.include("rollout stopped after batch 1")
      .and.include("lab3: netns guest-gr3a cannot reach 198.19.60.32");
    expect(message).not.to.match(/lab[124]:/);
    for (const h of hosts.slice(0, 3))
      expect(has(h, BRIDGE), `${h.name} was applied`).to.equal(true);
    expect(independentSnapshot(hosts[3]), "lab4 untouched").to.deep.equal(
      pristine[3],
    );
  });

  it("the same up again, still broken: the gate stops it again (the check ran again and still fails)", async () => {
    let message = "";
    await stack.up().catch((e) => (message = String(e.message)));
    expect(message)
      .to.include("rollout stopped after batch 1")
      .and.include("lab3: netns guest-gr3a cannot reach");
    expect(independentSnapshot(hosts[3]), "lab4 untouched").to.deep.equal(
      pristine[3],
    );
  });

  it("after the fix, a plain up (same config, no refresh) re-checks lab3, passes the gate and applies lab4", async () => {
    sshRun(hosts[2], FIX);
    const up = await stack.up();
    const ops = changed(up);
    expect(ops["lab3-health"], up.stdout).to.equal("update");
    expect(ops["rollout-batch-1"]).to.equal("create");
    expect(ops["rollout-batch-2"]).to.equal("create");
    expect(ops["lab4-health"]).to.equal("create");
    expect(
      Object.keys(ops).filter(
        (n) => n.startsWith("lab1-") || n.startsWith("lab2-"),
      ),
    ).to.deep.equal([]);
    expect(has(hosts[3], BRIDGE)).to.equal(true);
    expect(
      sshRun(
        hosts[3],
        "ip netns exec guest-gr4a ping -c 1 -W 2 -q 198.19.60.42 >/dev/null && echo ok",
      ).trim(),
    ).to.equal("ok");
  });

  it("then nothing to do: preview and preview --refresh --expect-no-changes are clean (healthy hosts do not show as changes)", async () => {
    expect(changed(await stack.preview())).to.deep.equal({});
    expect(
      changed(await stack.preview({ refresh: true, expectNoChanges: true })),
    ).to.deep.equal({});
  });

  it("a host that turns unhealthy later shows its HostHealth as an update in preview; destroy leaves every host as found", async () => {
    sshRun(hosts[1], BREAK);
    try {
      const pv = changed(await stack.preview());
      expect(pv["lab2-health"]).to.equal("update");
      expect(
        Object.keys(pv).filter((n) => !n.startsWith("rollout-batch-")),
        "only the health check and the gates after it",
      ).to.deep.equal(["lab2-health"]);
    } finally {
      sshRun(hosts[1], FIX);
    }
    await stack.destroy();
    expect(hosts.map(independentSnapshot)).to.deep.equal(pristine);
  });
});
