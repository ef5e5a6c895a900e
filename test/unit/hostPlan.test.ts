import { expect } from "chai";
import { expectedHealth, PlannedResource } from "../../components/hostPlan";
import { KINDS } from "../../providers/runtime/index";

const planned = (
  kind: PlannedResource["kind"],
  props: Record<string, unknown>,
): PlannedResource => ({ kind, name: `r-${kind}`, props, owner: "" });

describe("HostPlan: the health check derived from the planned resources", () => {
  it("expects every link a kind sets up and every bridge entry, in plan order, each once", () => {
    const resources = [
      planned("HostBridge", { name: "br-s" }),
      planned("VethLink", {
        a: { name: "hv-a", master: "br-s" },
        b: { name: "eth0", netns: "vm-a", up: false },
      }),
      planned("VxlanDevice", {
        name: "vx-s1",
        vni: 5001,
        local: "198.18.9.12",
        bridge: "br-s",
      }),
      planned("FdbEntry", {
        bridge: "br-s",
        port: "vx-s1",
        mac: "02:00:00:00:00:01",
        remote: { dst: "198.18.9.11" },
      }),
      planned("FdbEntry", {
        bridge: "br-s",
        port: "hv-a",
        mac: "02:00:00:00:00:02",
      }),
      // The same entry planned twice (a VM's own and its segment's) is expected once.
      planned("FdbEntry", {
        bridge: "br-s",
        port: "hv-a",
        mac: "02:00:00:00:00:02",
      }),
      planned("FilterChain", { table: "hostnet", ports: [] }),
    ];
    expect(expectedHealth(resources, KINDS)).to.deep.equal({
      links: [{ name: "br-s" }, { name: "hv-a" }, { name: "vx-s1" }],
      fdb: [
        { bridge: "br-s", mac: "02:00:00:00:00:01" },
        { bridge: "br-s", mac: "02:00:00:00:00:02" },
      ],
    });
  });

  it("keeps a link's namespace, and expects nothing of props that do not parse", () => {
    const resources = [
      planned("TapPort", { name: "tap-x", netns: "vm-x" }),
      planned("HostBridge", { name: "not a valid name!" }),
    ];
    expect(expectedHealth(resources, KINDS)).to.deep.equal({
      links: [{ netns: "vm-x", name: "tap-x" }],
      fdb: [],
    });
  });
});
