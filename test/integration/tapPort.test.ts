// TapPort lifecycle with the real engine on lab3: a persistent multi-queue tap owned by a VM user,
// a port of a bridge with learning off; changed in place, replaced, repaired after out-of-band
// changes, adopted and destroyed; every step checked through a separate OpenSSH session.
import { expect } from "chai";
import { PortFlagsInput } from "../../providers/kinds/portFlags";
import { TapPort } from "../../providers/kinds/tapPort";
import { independentSnapshot, StepReport, TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

const NS = "tpns1";
const BR = "tpbr0";
const TAP = "tpt0";
const HAND_TAP = "tpa0";
const VM_ID = 1000;

interface Tap {
  res: string;
  name: string;
  owner?: number | string;
  group?: number | string;
  multiQueue?: boolean;
  vnetHdr?: boolean;
  up?: boolean;
  mtu?: number;
  master?: string;
  portFlags?: PortFlagsInput;
  adopt?: boolean;
}

/** Property `key` of `res` reported as changed (see fdbEntry.test.ts: updates carry no metadata diffs). */
function changed(pv: StepReport, res: string, key: string): boolean {
  return (
    (pv.diffs[res] ?? []).includes(key) ||
    new RegExp(`^\\s*[-+~]+ ${key}\\s*:`, "m").test(pv.stdout)
  );
}

describe("TapPort: persistent tap lifecycle on a lab host", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<{ taps: Tap[] }>;
  let baseline: unknown;
  /** What ip prints for uid/gid 1000: the name when the host resolves it, else the number. */
  let vmUser: string | number;
  let vmGroup: string | number;

  const link = (name = TAP): any =>
    sshJson(h, `ip -n ${NS} -j -d link show ${name}`)[0];
  const tun = (name = TAP): any => link(name).linkinfo.info_data;
  const nsState = () => (independentSnapshot(h) as Record<string, unknown>)[NS];
  const base: Tap = {
    res: "t",
    name: TAP,
    owner: VM_ID,
    group: VM_ID,
    multiQueue: true,
    master: BR,
    portFlags: { learning: false },
  };

  before(async () => {
    h = labUp(3).hosts[2];
    stack = new TestStack<{ taps: Tap[] }>(
      "test-tap",
      { taps: [] },
      async (cfg) => {
        const out: Record<string, unknown> = {};
        for (const t of cfg.taps) {
          const { res, ...args } = t;
          const r = new TapPort(res, {
            connection: labConnection(h),
            netns: NS,
            ...args,
          });
          out[res] = { id: r.id, created: r.created };
        }
        return out;
      },
    );
    await stack.destroy().catch(() => undefined); // leftovers of an interrupted run
    // A fixed bridge MAC: an auto-assigned one follows its ports, and would differ after they leave.
    sshRun(
      h,
      `ip netns del ${NS} 2>/dev/null; ip netns add ${NS} && ip -n ${NS} link add ${BR} address 02:00:00:00:7b:00 type bridge`,
    );
    const name = (db: string) =>
      sshRun(h, `getent ${db} ${VM_ID} | cut -d: -f1`).trim();
    vmUser = name("passwd") || VM_ID;
    vmGroup = name("group") || VM_ID;
    baseline = nsState();
  });

  after(async () => {
    await stack?.dispose();
    sshRun(h, `ip netns del ${NS}`, { allowFail: true });
  });

  it("up creates an owned multi-queue tap on the bridge with learning off", async () => {
    stack.config = { taps: [base] };
    const up = await stack.up();
    expect(up.ops.t).to.equal("create");
    expect((up.outputs.t as any).id).to.equal(`tap/${NS}/${TAP}`);
    const l = link();
    expect(l.linkinfo.info_kind).to.equal("tun");
    expect(tun()).to.include({
      type: "tap",
      multi_queue: true,
      vnet_hdr: true,
      persist: true,
      user: vmUser,
      group: vmGroup,
    });
    expect(l.master).to.equal(BR);
    expect(l.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
    expect(l.flags).to.include("UP");
    expect(l.linkinfo.info_slave_data.learning).to.equal(false);
  });

  it("refresh sees no drift, although ip prints the owner by name", async () => {
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.t).to.equal("same");
  });

  it("mtu and port flags change in place", async () => {
    const ifindex = link().ifindex;
    stack.config = {
      taps: [
        { ...base, mtu: 1400, portFlags: { learning: false, flood: false } },
      ],
    };
    const pv = await stack.preview();
    expect(pv.ops.t).to.equal("update");
    expect(changed(pv, "t", "mtu") && changed(pv, "t", "portFlags")).to.equal(
      true,
    );
    await stack.up();
    const l = link();
    expect(l.ifindex).to.equal(ifindex);
    expect(l.mtu).to.equal(1400);
    expect(l.linkinfo.info_slave_data).to.include({
      learning: false,
      flood: false,
    });
  });

  it("multiQueue off replaces the tap, with its settings applied again", async () => {
    const ifindex = link().ifindex;
    stack.config = {
      taps: [
        {
          ...base,
          multiQueue: false,
          mtu: 1400,
          portFlags: { learning: false, flood: false },
        },
      ],
    };
    const pv = await stack.preview();
    expect(pv.ops.t).to.equal("replace");
    expect(changed(pv, "t", "multiQueue")).to.equal(true);
    await stack.up();
    const l = link();
    expect(l.ifindex).to.not.equal(ifindex);
    expect(tun()).to.include({
      multi_queue: false,
      vnet_hdr: true,
      user: vmUser,
    });
    expect(l.mtu).to.equal(1400);
    expect(l.master).to.equal(BR);
    expect(l.linkinfo.info_slave_data).to.include({
      learning: false,
      flood: false,
    });
  });

  it("nomaster and down by hand: preview --refresh reports them, refresh + up repairs", async () => {
    sshRun(h, `ip -n ${NS} link set ${TAP} nomaster down`);
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.t).to.equal("update");
    expect(changed(pv, "t", "master") && changed(pv, "t", "up")).to.equal(true);
    const up = await stack.up({ refresh: true });
    expect(up.ops.t).to.equal("update");
    const l = link();
    expect(l.master).to.equal(BR);
    expect(l.flags).to.include("UP");
    // A port that rejoins starts with the kernel's defaults: hostnet must set its flags again.
    expect(l.linkinfo.info_slave_data).to.include({
      learning: false,
      flood: false,
    });
    expect((await stack.preview({ refresh: true })).ops.t).to.equal("same");
  });

  it("a tap deleted by hand is reported as to-be-created and recreated", async () => {
    sshRun(h, `ip -n ${NS} link del ${TAP}`);
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.t).to.equal("create");
    await stack.up({ refresh: true });
    expect(tun()).to.include({ type: "tap", user: vmUser });
  });

  it("creating over a hand-made tap fails and says adopt: true; adopt records it untouched", async () => {
    sshRun(h, `ip -n ${NS} tuntap add dev ${HAND_TAP} mode tap user root`);
    const before = link(HAND_TAP);
    const handTap: Tap = {
      res: "a",
      name: HAND_TAP,
      owner: "root",
      vnetHdr: false,
      up: false,
    };
    stack.config = { taps: [stack.config.taps[0], handTap] };
    const err = await stack.up().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(String(err))
      .to.match(new RegExp(`tap ${HAND_TAP} in netns ${NS} already exists`))
      .and.match(/adopt: true/);
    stack.config = {
      taps: [stack.config.taps[0], { ...handTap, adopt: true }],
    };
    const up = await stack.up();
    expect(up.ops.a).to.equal("create");
    expect((up.outputs.a as any).created).to.equal(false);
    expect(link(HAND_TAP)).to.deep.equal(before);
    expect((await stack.preview({ refresh: true })).ops.a).to.equal("same");
  });

  it("a create that fails half-way (no such bridge) leaves no tap behind", async () => {
    stack.config = {
      taps: [
        ...stack.config.taps,
        { res: "half", name: "tpt1", master: "tpnobr0" },
      ],
    };
    const err = await stack.up().then(
      () => undefined,
      (e: Error) => e,
    );
    stack.config = { taps: stack.config.taps.filter((t) => t.res !== "half") };
    expect(String(err))
      .to.match(/create tap tpt1 in netns tpns1/)
      .and.match(/tpnobr0/);
    expect(
      sshJson(h, `ip -n ${NS} -j link show`).map((l: any) => l.ifname),
    ).to.not.include("tpt1");
  });

  it("destroy removes hostnet's tap, leaves the adopted one, and the namespace is as before", async () => {
    await stack.destroy();
    const names = sshJson(h, `ip -n ${NS} -j link show`).map(
      (l: any) => l.ifname,
    );
    expect(names).to.not.include(TAP);
    expect(names).to.include(HAND_TAP);
    sshRun(h, `ip -n ${NS} link del ${HAND_TAP}`);
    expect(nsState()).to.deep.equal(baseline);
  });

  const invalid: Array<[string, Partial<Tap>, RegExp]> = [
    [
      "owner with shell syntax",
      { owner: "root;id" },
      /owner: unix user name may contain only .* found ';'/,
    ],
    [
      'name ".."',
      { name: ".." },
      /name: interface name must not be "\." or "\.\."/,
    ],
    [
      "portFlags without master",
      { master: undefined },
      /portFlags: port flags need master/,
    ],
  ];
  for (const [what, bad, message] of invalid) {
    it(`invalid input fails at preview naming the field: ${what}`, async () => {
      const before = nsState();
      stack.config = { taps: [{ ...base, ...bad }] };
      const err = await stack.preview().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(String(err)).to.match(message);
      expect(nsState()).to.deep.equal(before);
    });
  }
});
