// VM names in the pictures (scripts/picture.ts vmLabels, configVms and topologyDot's owners): which
// objects of a host's picture belong to which VM, derived from the stack config with the components'
// own derivedNames; pure functions on hand-made inputs.
import { expect } from "chai";
import type { HostSnapshot } from "../../providers/state";
import { derivedNames, vmKey } from "../../components/spec";
import { configVms, topologyDot, vmLabels } from "../../scripts/picture";
import { link, namespaceOf } from "../support/snapshotBuilder";

const LONG = "k8s-worker-prod-017";

describe("pictures: VM names next to their derived keys", () => {
  it("maps each VM's namespaces and host ends to its name and key, on its own host only", () => {
    const key = vmKey(LONG);
    expect(key).to.not.equal(LONG);
    const labels = vmLabels(
      [
        { name: LONG, host: "lab1" },
        { name: "web1", host: "lab1" },
        { name: "Some.VM_42", ifname: "svm42", host: "lab1" },
        { name: "elsewhere-vm-with-long-name", host: "lab2" },
      ],
      "lab1",
    );
    const text = `vm ${LONG} (key ${key})`;
    const n = derivedNames(LONG);
    for (const k of [
      `netns:${n.netns}`,
      `netns:${n.guestNetns}`,
      `link:${n.hostPort}`,
      `link:${n.tap}`,
      `link:${n.macvlan}`,
    ])
      expect(labels.get(k), k).to.equal(text);
    expect(labels.get("link:hv-web1")).to.equal("vm web1");
    expect(labels.get("netns:vm-svm42")).to.equal("vm Some.VM_42 (key svm42)");
    const other = derivedNames("elsewhere-vm-with-long-name");
    expect(labels.has(`link:${other.hostPort}`)).to.equal(false);
    expect(labels.size).to.equal(15);
  });

  it("draws the name on the VM's namespace cluster and host ends; other objects unchanged", () => {
    const n = derivedNames(LONG);
    const veth = (name: string, peerName: string, peerNetns: string) =>
      link(name, { kind: "veth", peerName, peerNetns });
    const snap = {
      machineId: "m1",
      hostname: "h1",
      absent: [],
      namespaces: {
        "": namespaceOf([
          link("br-vms", { kind: "bridge" }),
          veth(n.hostPort, "eth0", n.guestNetns),
          link(n.tap, { kind: "tap", master: "br-vms" }),
        ]),
        [n.guestNetns]: namespaceOf([veth("eth0", n.hostPort, "")]),
      },
    } as unknown as HostSnapshot;
    const owners = vmLabels([{ name: LONG, host: "h1" }], "h1");
    const dot = topologyDot(snap, "h1", undefined, owners);
    const line = (start: string) =>
      dot.split("\n").find((l) => l.trim().startsWith(start)) ?? "";
    const text = `vm ${LONG} (key ${vmKey(LONG)})`;
    expect(line(JSON.stringify(`root/${n.hostPort}`))).to.include(
      `label="${n.hostPort}\\n${text}\\nveth"`,
    );
    expect(line(JSON.stringify(`root/${n.tap}`))).to.include(text);
    expect(dot).to.include(`label="netns ${n.guestNetns}\\n${text}"`);
    expect(line(JSON.stringify("root/br-vms"))).to.not.include("vm ");
    expect(line(JSON.stringify(`${n.guestNetns}/eth0`))).to.not.include(LONG);
    expect(topologyDot(snap, "h1")).to.not.include(LONG);
  });

  it("reads the VMs of a stack's config; a bad entry names its field", () => {
    expect(
      configVms({
        "hostnet:vms": {
          value: JSON.stringify([
            { name: LONG, host: "lab1", attachment: "routed", ipv4: [] },
          ]),
        },
      }),
    ).to.deep.equal([{ name: LONG, host: "lab1" }]);
    expect(configVms({})).to.deep.equal([]);
    expect(() =>
      configVms({
        "hostnet:vms": { value: JSON.stringify([{ name: "a b", host: "x" }]) },
      }),
    ).to.throw(/vms\[0\]\.name: VM name must be/);
  });
});
