// VxlanDevice lifecycle (plus a remote FdbEntry on it) on lab2, through the real engine: create,
// update in place, replace on a new VNI (the remote entry comes back on the new device), drift seen
// and repaired, bad input refused with the host unchanged, destroy leaves the host as it was, adopt,
// and its own device left by a run that died before the state was written taken over.
import { expect } from "chai";
import { FdbEntry } from "../../providers/kinds/fdbEntry";
import { HostBridge } from "../../providers/kinds/hostBridge";
import { VxlanDevice } from "../../providers/kinds/vxlanDevice";
import { inlineStack } from "../../scripts/engine";
import { independentSnapshot, TestStack } from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

interface Cfg {
  vni: number;
  mtu?: number;
  learning?: boolean;
  dst: string;
  /** Only the device (the bridge is made by hand), adopted or not. */
  deviceOnly?: boolean;
  adopt?: boolean;
}

const MAC = "02:00:00:7e:00:01";

describe("VxlanDevice lifecycle on lab2 (vx-lc on br-vxlc)", function () {
  this.timeout(600_000);
  let h: LabHost;
  let initial: Record<string, unknown>;
  const program = async (c: Cfg): Promise<void> => {
    const connection = labConnection(h);
    if (c.deviceOnly) {
      new VxlanDevice("vx", {
        connection,
        name: "vx-lc",
        vni: c.vni,
        local: "198.18.5.12",
        bridge: "br-vxlc",
        adopt: c.adopt,
      });
      return;
    }
    const br = new HostBridge("br", { connection, name: "br-vxlc" });
    const vx = new VxlanDevice(
      "vx",
      {
        connection,
        name: "vx-lc",
        vni: c.vni,
        local: "198.18.5.12",
        bridge: "br-vxlc",
        mtu: c.mtu,
        learning: c.learning,
      },
      { dependsOn: [br] },
    );
    new FdbEntry(
      "remote",
      {
        connection,
        bridge: "br-vxlc",
        port: "vx-lc",
        mac: MAC,
        neighbours: ["198.19.71.1"],
        remote: { dst: c.dst, vni: c.vni },
      },
      { dependsOn: [vx] },
    );
  };
  const stack = new TestStack<Cfg>(
    "test-vxlandevice",
    { vni: 7001, dst: "198.18.5.13" },
    program,
  );
  const link = () => sshJson(h, "ip -j -d link show vx-lc")[0];
  const rows = () =>
    sshJson(h, "bridge -j fdb show dev vx-lc")
      .filter((r: any) => r.mac === MAC)
      .map((r: any) => `${r.master ?? "self"} ${r.dst ?? "-"} ${r.state}`)
      .sort();

  before(() => {
    h = labUp(3).hosts[1];
    initial = independentSnapshot(h);
  });
  after(async () => {
    await stack.dispose();
    sshRun(
      h,
      "ip link del vx-lc 2>/dev/null; ip link del br-vxlc 2>/dev/null; true",
      { allowFail: true },
    );
  });

  it("creates the device on the bridge with learning off and neigh_suppress on, and the remote entry", async () => {
    await stack.up();
    const l = link();
    expect(l.linkinfo.info_data).to.include({
      id: 7001,
      local: "198.18.5.12",
      port: 4789,
      learning: false,
    });
    expect(l.master).to.equal("br-vxlc");
    expect(l.ifalias, "the mark of the resource that made it").to.match(
      /^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/,
    );
    expect(l.linkinfo.info_slave_data).to.include({
      learning: false,
      flood: false,
      neigh_suppress: true,
    });
    expect(rows()).to.deep.equal([
      "br-vxlc - static",
      "self 198.18.5.13 static",
    ]);
    expect(sshRun(h, "ip neigh show 198.19.71.1 dev br-vxlc"))
      .to.include(MAC)
      .and.include("PERMANENT");
  });

  it("updates mtu, learning and the remote destination in place", async () => {
    stack.config = { vni: 7001, mtu: 1400, learning: true, dst: "198.18.5.11" };
    const p = await stack.preview();
    expect(p.ops).to.include({ vx: "update", remote: "update" });
    await stack.up();
    expect(link().mtu).to.equal(1400);
    expect(link().linkinfo.info_data.learning).to.equal(true);
    expect(rows()).to.deep.equal([
      "br-vxlc - static",
      "self 198.18.5.11 static",
    ]);
  });

  it("replaces the device for a new VNI, and the remote entry is written again on the new device", async () => {
    stack.config = { vni: 7002, mtu: 1400, dst: "198.18.5.11" };
    const p = await stack.preview();
    expect(p.ops.vx).to.equal("replace");
    expect(p.diffs.vx).to.include("vni");
    await stack.up();
    expect(link().linkinfo.info_data).to.include({ id: 7002, learning: false });
    expect(rows()).to.deep.equal([
      "br-vxlc - static",
      "self 198.18.5.11 static",
    ]);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("reports learning turned on, a flipped port flag and a lost underlay entry as drift and repairs them", async () => {
    sshRun(
      h,
      `ip link set vx-lc type vxlan learning && bridge link set dev vx-lc neigh_suppress off && bridge fdb del ${MAC} dev vx-lc self`,
    );
    const p = await stack.preview({ refresh: true });
    expect(p.ops).to.include({ vx: "update", remote: "update" });
    expect(p.diffs.vx).to.include.members([
      "learning",
      "portFlags.neighSuppress",
    ]);
    expect(p.diffs.remote).to.include("remote");
    await stack.up({ refresh: true });
    expect(link().linkinfo.info_data.learning).to.equal(false);
    expect(link().linkinfo.info_slave_data.neigh_suppress).to.equal(true);
    expect(rows()).to.deep.equal([
      "br-vxlc - static",
      "self 198.18.5.11 static",
    ]);
  });

  it("recreates a device deleted by hand, with its entries", async () => {
    sshRun(h, "ip link del vx-lc");
    const p = await stack.preview({ refresh: true });
    expect(p.ops).to.include({ vx: "create", remote: "create" });
    await stack.up({ refresh: true });
    expect(link().linkinfo.info_data.id).to.equal(7002);
    expect(rows()).to.deep.equal([
      "br-vxlc - static",
      "self 198.18.5.11 static",
    ]);
  });

  it("refuses a bad VNI at preview, naming the field, and changes nothing on the host", async () => {
    const snap = independentSnapshot(h);
    stack.config = { vni: 0, dst: "198.18.5.11" };
    let err = "";
    await stack.preview().catch((e) => (err = String(e)));
    expect(err)
      .to.match(/vni/)
      .and.match(/1.16777215/);
    expect(independentSnapshot(h)).to.deep.equal(snap);
    stack.config = { vni: 7002, mtu: 1400, dst: "198.18.5.11" };
  });

  it("destroy leaves the host as it was", async () => {
    await stack.destroy();
    expect(independentSnapshot(h)).to.deep.equal(initial);
  });

  it("refuses to create over an existing device without adopt, adopts it with adopt: true, and lets it go on destroy", async () => {
    sshRun(
      h,
      [
        "ip link add br-vxlc type bridge",
        "ip link add vx-lc type vxlan id 7003 local 198.18.5.12 dstport 4789 nolearning",
        "ip link set vx-lc master br-vxlc up",
        "bridge link set dev vx-lc learning off flood off neigh_suppress on",
      ].join(" && "),
    );
    const handMade = independentSnapshot(h);
    stack.config = { vni: 7003, dst: "198.18.5.11", deviceOnly: true };
    let err = "";
    await stack.up().catch((e) => (err = String(e)));
    expect(err).to.include(
      "interface vx-lc already exists. To manage it with hostnet, set adopt: true",
    );
    expect(independentSnapshot(h)).to.deep.equal(handMade);
    stack.config = {
      vni: 7003,
      dst: "198.18.5.11",
      deviceOnly: true,
      adopt: true,
    };
    await stack.up();
    await stack.preview({ refresh: true, expectNoChanges: true });
    await stack.destroy();
    expect(
      link().linkinfo.info_data.id,
      "an adopted device is released, not deleted",
    ).to.equal(7003);
    expect(independentSnapshot(h)).to.deep.equal(handMade);
  });

  it("takes over its own device left by a run that died before the state was written, and converges it", async () => {
    sshRun(h, "ip link del vx-lc 2>/dev/null; ip link show br-vxlc >/dev/null");
    const cfg: Cfg = { vni: 7004, dst: "198.18.5.11", deviceOnly: true };
    stack.config = cfg;
    await stack.up();
    const made = link();
    expect(made.ifalias).to.match(/^hostnet:/);
    // What a run killed before its first checkpoint leaves: the device, and no state.
    const forgotten = await inlineStack(
      "test-vxlandevice",
      async () => undefined,
    );
    await forgotten.workspace.removeStack("test-vxlandevice", { force: true });
    sshRun(
      h,
      "ip link set vx-lc type vxlan learning && ip link set vx-lc down",
    );
    const again = new TestStack<Cfg>("test-vxlandevice", cfg, program);
    try {
      const up = await again.up();
      expect(up.ops.vx).to.equal("create");
      const now = link();
      expect(now.ifindex, "the same device, not a new one").to.equal(
        made.ifindex,
      );
      expect(now.linkinfo.info_data.learning).to.equal(false);
      expect(now.flags).to.include("UP");
      await again.preview({ refresh: true, expectNoChanges: true });
      await again.destroy();
      expect(sshRun(h, "ip link show vx-lc 2>&1 || true")).to.match(
        /does not exist/,
      );
    } finally {
      await again.dispose();
    }
  });
});
