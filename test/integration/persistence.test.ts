// Boot restore for every attachment kind (issue 11): a host whose stack config says `persist` gets
// a restore script rendered from the kinds' planners. Up with isolated-netns, bridged, managed-fdb,
// macvlan and routed VMs (simulated guests and real taps) and a VXLAN segment, then a reboot as hostnet sees one: every
// object hostnet made on the host is removed. The script, run over SSH, brings back the very
// snapshot taken before, and `preview --refresh --expect-no-changes` is clean.
//
// Everything here is named ps*/br-ps (other tests share the lab hosts); the wipe removes only those.
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as pulumi from "@pulumi/pulumi";
import { stableBridgeMac } from "../../components/spec";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { deployFleet } from "../../stacks/index";
import {
  fullSnapshot,
  snapshotDiff,
  StepReport,
  TestStack,
} from "../support/harness";
import { LabHost, labUp, privateKey, sshRun } from "../support/lab";

const HOST = "pshost";
const BRIDGE = "br-ps";
/** The bridge of a VXLAN segment (its device is vx-psseg). */
const SEG_BRIDGE = "br-pss";
const TABLE = "psfilter";
const NIC = "psnic0";
const RESTORE = {
  path: "/run/hostnet/ps-restore.sh",
  unit: "ps-restore.service",
  unitDir: "/run/hostnet/ps-units",
};
const UNIT = `${RESTORE.unitDir}/${RESTORE.unit}`;

const mac = (n: number): string =>
  `02:00:00:7d:00:${n.toString(16).padStart(2, "0")}`;

/** One VM of every attachment kind, simulated guests and real taps/namespaces both. */
function config(h: LabHost): StackConfig {
  const vm = (
    name: string,
    attachment: string,
    n: number,
    extra: Record<string, unknown>,
  ) => ({
    name,
    host: HOST,
    attachment,
    mac: mac(n),
    ipv4: [
      attachment === "routed" ? `198.19.126.${n}/32` : `198.19.127.${n}/24`,
    ],
    ...extra,
  });
  const onBridge = { bridge: BRIDGE };
  return parseStackConfig({
    hosts: [
      {
        name: HOST,
        address: h.address,
        port: h.port,
        hostKey: h.hostKey,
        persist: RESTORE,
      },
    ],
    bridges: [
      { name: BRIDGE, filterTable: TABLE },
      { name: SEG_BRIDGE, filterTable: TABLE },
    ],
    segments: [{ name: "psseg", vni: 7126, bridge: SEG_BRIDGE }],
    simulatedNics: [NIC],
    vms: [
      vm("psiso1", "isolated-netns", 11, {
        ...onBridge,
        simulate: true,
        managedFdb: true,
        arpSuppress: true,
      }),
      vm("psiso2", "isolated-netns", 12, { ...onBridge, filter: "none" }),
      vm("psbr1", "bridged", 13, {
        ...onBridge,
        simulate: true,
        managedFdb: true,
      }),
      vm("psbr2", "bridged", 14, { ...onBridge, filter: "none" }),
      vm("psmv1", "macvlan", 15, {
        simulate: true,
        lower: NIC,
        macvlanMode: "private",
      }),
      vm("psrt1", "routed", 16, { simulate: true }),
      vm("psrt2", "routed", 17, {}),
      vm("psseg1", "bridged", 18, {
        bridge: SEG_BRIDGE,
        segment: "psseg",
        simulate: true,
        managedFdb: true,
        filter: "none",
      }),
    ],
    rollout: { serial: [1], maxFailures: 0, healthCheck: false },
  });
}

/** What a reboot takes away: every object of this file (namespaces, root links, its nft table). */
const WIPE = [
  "for ns in $(ip netns list | cut -d' ' -f1 | grep -E '^(vm|guest)-ps'); do ip netns del $ns; done",
  `for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(hv-ps|tap-ps|mv-ps|vx-ps|${BRIDGE}$|${SEG_BRIDGE}$|${NIC}p?$)'); do ip link del $l 2>/dev/null; done`,
  `nft delete table bridge ${TABLE} 2>/dev/null`,
  "true",
].join("; ");

/**
 * The host's full snapshot with what the kernel picks at random masked: the MAC of a link hostnet
 * gives none (a veth end, an inner bridge) and the IPv6 link-local address derived from it. Every
 * MAC the config names (VMs, the host bridge) is kept and compared.
 */
function snapshot(h: LabHost): Record<string, any> {
  const known = new Set([
    ...Array.from({ length: 8 }, (_, k) => mac(11 + k)),
    stableBridgeMac(HOST, BRIDGE),
    stableBridgeMac(HOST, SEG_BRIDGE),
  ]);
  const json = JSON.stringify(fullSnapshot(h))
    .replace(/\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b/g, (m) =>
      known.has(m) ? m : "<kernel mac>",
    )
    .replace(/fe80::[0-9a-f:]+\/64/g, "fe80::<from mac>/64");
  return JSON.parse(json);
}

const ops = (r: StepReport): Record<string, string> =>
  Object.fromEntries(Object.entries(r.ops).filter(([, op]) => op !== "same"));

describe("persist: boot restore for every attachment kind, rendered from the planners", function () {
  let h: LabHost;
  let stack: TestStack<StackConfig>;

  before(async () => {
    h = labUp(2).hosts[0];
    sshRun(h, `${WIPE}; rm -rf /run/hostnet/ps-*`, { allowFail: true });
    stack = new TestStack<StackConfig>("test-persist", config(h), (c) =>
      Promise.resolve(deployFleet(c, pulumi.secret(privateKey()))),
    );
    await stack.refresh();
  });

  after(async () => {
    if (process.env.HOSTNET_KEEP_LAB === "1" && process.env.PS_KEEP === "1")
      return;
    await stack?.dispose();
    if (h) sshRun(h, `${WIPE}; rm -rf /run/hostnet/ps-*`, { allowFail: true });
  });

  it("up with persist in stack config writes the script and the unit (not enabled: no systemd on lab hosts)", async () => {
    const up = await stack.up();
    expect(up.ops[`${HOST}-restore`]).to.equal("create");
    const state = JSON.parse(await stack.exportState());
    const restore = state.deployment.resources.find((r: any) =>
      r.urn.endsWith(`::${HOST}-restore`),
    );
    expect(restore.outputs.enabled).to.equal(false);
    expect(restore.outputs.enableNote).to.match(
      /systemd does not run this host/,
    );
    const script = sshRun(h, `cat ${RESTORE.path}`);
    expect(script).to.equal(restore.outputs.script);
    for (const name of [
      "vm-psiso1",
      "tap-psbr2",
      "mv-psmv1",
      "hv-psrt2",
      "vx-psseg",
    ])
      expect(script, name).to.include(name);
  });

  it("a host emptied as by a reboot: the script alone brings back the same snapshot, twice, and refresh sees no drift", async () => {
    const before = snapshot(h);
    sshRun(h, WIPE);
    const wiped = snapshotDiff(before, snapshot(h));
    for (const ns of ["vm-psiso1", "guest-psmv1", "vm-psrt2"])
      expect(wiped, "the wipe removed it").to.include(
        `${ns}: - the whole namespace`,
      );
    expect(wiped.join("\n")).to.include(`"name":"${BRIDGE}"`);

    const first = spawnRestore(h);
    expect(first.status, first.stderr).to.equal(0);
    expect(snapshotDiff(before, snapshot(h))).to.deep.equal([]);
    const again = spawnRestore(h);
    expect(again.status, again.stderr).to.equal(0);
    expect(snapshotDiff(before, snapshot(h))).to.deep.equal([]);
    const drift = await stack.preview({ refresh: true, expectNoChanges: true });
    expect(ops(drift)).to.deep.equal({});
  });

  it("the unit file on the host passes systemd-analyze verify", function () {
    // Run on the lab host itself (its /run is its own): the unit as written, with its ExecStart.
    const out = sshRun(
      h,
      `command -v systemd-analyze >/dev/null || { echo '@@missing'; exit 0; }; systemd-analyze verify ${UNIT} 2>&1; echo "@@rc $?"`,
    );
    if (out.includes("@@missing")) {
      console.log(
        "      skipped: systemd-analyze is not installed (scripts/setup.sh installs it from Debian's systemd package)",
      );
      return this.skip();
    }
    expect(out.trim(), "verify prints no warning").to.equal("@@rc 0");
  });

  it("systemd runs the unit at boot", function () {
    const pid1 = spawnSync("ps", ["-p", "1", "-o", "comm="], {
      encoding: "utf8",
    }).stdout.trim();
    if (pid1 !== "systemd") {
      console.log(
        `      skipped: PID 1 on this machine is ${JSON.stringify(pid1)}, not systemd (no /run/systemd/system), and lab hosts are namespaces of it: no unit can be enabled or started here. The unit file is checked by systemd-analyze verify instead.`,
      );
      return this.skip();
    }
    // A machine booted by systemd: the lab still has none of its own (its hosts are namespaces),
    // so the unit is not enabled there either; say so rather than pretend.
    console.log(
      "      skipped: lab hosts are namespaces without a systemd of their own; enabling the unit needs a host booted by systemd",
    );
    this.skip();
  });
});

/** Run the restore script on the host over a separate OpenSSH session. */
function spawnRestore(h: LabHost) {
  const out = sshRun(h, `sh ${RESTORE.path} 2>&1; echo "@@rc $?"`);
  const m = /@@rc (\d+)\s*$/.exec(out);
  return { status: m ? Number(m[1]) : -1, stderr: out };
}
