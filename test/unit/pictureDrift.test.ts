// Which picture objects a drift item concerns (scripts/stacks.ts driftObjects, scripts/picture.ts
// driftOfHost and the overlay of topologyDot), and which VM a drifted resource belongs to
// (vmOfResource, formatDrift): pure functions on hand-made inputs.
import { expect } from "chai";
import type { HostSnapshot, Link } from "../../providers/state";
import { driftOfHost, topologyDot } from "../../scripts/picture";
import {
  DriftItem,
  driftObjects,
  formatDrift,
  TreeNode,
  vmOfResource,
} from "../../scripts/stacks";
import { namespaceOf } from "../support/snapshotBuilder";

describe("picture drift overlay: objects of a drifted resource", () => {
  it("names the kernel objects of each resource kind", () => {
    expect(driftObjects("HostBridge", { name: "br-vms" })).to.deep.equal([
      { netns: "", name: "br-vms" },
    ]);
    expect(driftObjects("VmNetns", { name: "vm-web1" })).to.deep.equal([
      { netns: "vm-web1" },
    ]);
    expect(
      driftObjects("VethLink", {
        a: { name: "hv-web1" },
        b: { name: "up0", netns: "vm-web1" },
      }),
    ).to.deep.equal([
      { netns: "", name: "hv-web1", part: "a" },
      { netns: "vm-web1", name: "up0", part: "b" },
    ]);
    expect(
      driftObjects("FdbEntry", {
        bridge: "br0",
        port: "tap0",
        netns: "vm-web1",
        mac: "02:00:00:00:00:01",
      }),
    ).to.deep.equal([{ netns: "vm-web1", name: "tap0" }]);
    expect(driftObjects("FilterChain", { netns: "vm-web1" })).to.deep.equal([
      { netns: "vm-web1", name: "nft:hostnet" },
    ]);
    expect(
      driftObjects("MacvlanPort", { name: "mv-c1", netns: "guest-c1" }),
    ).to.deep.equal([{ netns: "guest-c1", name: "mv-c1" }]);
    expect(driftObjects("HostHealth", { host: "lab1" })).to.deep.equal([]);
    expect(driftObjects("VethLink", undefined)).to.deep.equal([]);
  });

  it("gives each host its items: by machine, else by the longest host name prefixing the resource", () => {
    const item = (resource: string, machineId?: string): DriftItem => ({
      resource,
      type: "FdbEntry",
      op: "create",
      properties: [],
      machineId,
    });
    const items = [
      item("lab1-a-fdb"),
      item("lab1-b-x-fdb"),
      item("lab1-b-y-fdb", "m2"),
      item("lab1-c-fdb", "m1"),
    ];
    const hosts = ["lab1", "lab1-b"];
    expect(
      driftOfHost(items, "lab1", "m1", hosts).map((d) => d.resource),
    ).to.deep.equal(["lab1-a-fdb", "lab1-c-fdb"]);
    expect(
      driftOfHost(items, "lab1-b", "m2", hosts).map((d) => d.resource),
    ).to.deep.equal(["lab1-b-x-fdb", "lab1-b-y-fdb"]);
  });

  it("draws drifted objects red with what drifted, the untouched end of a pair not, missing objects dashed", () => {
    const link = (name: string, index: number, extra: object = {}) => ({
      name,
      index,
      kind: "veth",
      addresses: [],
      ...extra,
    });
    const ns = (links: object[]) => namespaceOf(links as Link[]);
    const snap = {
      machineId: "m1",
      hostname: "h1",
      absent: [],
      namespaces: {
        "": ns([link("hv-a", 5, { peerName: "up0", peerNetns: "vm-a" })]),
        "vm-a": ns([link("up0", 2, { peerName: "hv-a", peerNetns: "" })]),
      },
    } as unknown as HostSnapshot;
    const drift: DriftItem[] = [
      {
        resource: "h1-a-uplink",
        type: "VethLink",
        op: "update",
        properties: ["a.portFlags"],
        objects: driftObjects("VethLink", {
          a: { name: "hv-a" },
          b: { name: "up0", netns: "vm-a" },
        }),
      },
      {
        resource: "h1-b-ns",
        type: "VmNetns",
        op: "create",
        properties: [],
        objects: [{ netns: "vm-b" }],
      },
    ];
    const dot = topologyDot(snap, "h1", drift);
    const line = (nodeId: string) =>
      dot
        .split("\n")
        .find((l) => l.trim().startsWith(JSON.stringify(nodeId))) ?? "";
    expect(line("root/hv-a"))
      .to.include("#cc0000")
      .and.include("DRIFT VethLink update: a.portFlags");
    expect(line("vm-a/up0")).to.not.include("#cc0000");
    expect(dot).to.match(
      /"missing:netns:vm-b" \[shape=box,style=dashed,[^\]]*label="netns vm-b \(not on the host\)\\nDRIFT VmNetns missing"\]/,
    );
    expect(dot).to.include("2 drifted object(s) in red");
    expect(topologyDot(snap, "h1")).to.not.include("#cc0000");
  });
});

describe("drift report: the VM a drifted resource belongs to", () => {
  const S = "urn:pulumi:lab::hostnet::";
  const tree = new Map<string, TreeNode>([
    [`${S}hostnet:topology:Host::lab1`, { type: "hostnet:topology:Host" }],
    [
      `${S}hostnet:attachment:Bridged::lab1-k8s-worker-prod-017`,
      {
        type: "hostnet:attachment:Bridged",
        parent: `${S}hostnet:topology:Host::lab1`,
      },
    ],
    [
      `${S}FdbEntry::lab1-k8s-worker-prod-017-fdb`,
      {
        type: "pulumi-nodejs:dynamic:hostnet:FdbEntry",
        parent: `${S}hostnet:attachment:Bridged::lab1-k8s-worker-prod-017`,
      },
    ],
    [
      `${S}hostnet:topology:Segment::lab1-seg-s1`,
      {
        type: "hostnet:topology:Segment",
        parent: `${S}hostnet:topology:Host::lab1`,
      },
    ],
    [
      `${S}FdbEntry::lab1-seg-s1-web2`,
      {
        type: "pulumi-nodejs:dynamic:hostnet:FdbEntry",
        parent: `${S}hostnet:topology:Segment::lab1-seg-s1`,
      },
    ],
    [
      `${S}VxlanDevice::lab1-seg-s1-vx`,
      {
        type: "pulumi-nodejs:dynamic:hostnet:VxlanDevice",
        parent: `${S}hostnet:topology:Segment::lab1-seg-s1`,
      },
    ],
    [
      `${S}HostBridge::lab1-br0`,
      {
        type: "pulumi-nodejs:dynamic:hostnet:HostBridge",
        parent: `${S}hostnet:topology:Host::lab1`,
      },
    ],
  ]);

  it("names the VM of a resource under its attachment, and of a segment's entry; none for host objects", () => {
    expect(
      vmOfResource(`${S}FdbEntry::lab1-k8s-worker-prod-017-fdb`, tree),
    ).to.equal("k8s-worker-prod-017");
    expect(vmOfResource(`${S}FdbEntry::lab1-seg-s1-web2`, tree)).to.equal(
      "web2",
    );
    expect(vmOfResource(`${S}VxlanDevice::lab1-seg-s1-vx`, tree)).to.equal(
      undefined,
    );
    expect(vmOfResource(`${S}HostBridge::lab1-br0`, tree)).to.equal(undefined);
  });

  it("prints the VM and its key next to the drifted object", () => {
    expect(
      formatDrift([
        {
          resource: "lab1-k8s-worker-prod-017-fdb",
          type: "FdbEntry",
          op: "update",
          properties: ["neighbours"],
          vm: { name: "k8s-worker-prod-017", key: "k8s--1a2b3" },
        },
      ]),
    ).to.include(
      "DRIFT FdbEntry lab1-k8s-worker-prod-017-fdb: update: neighbours [VM k8s-worker-prod-017, key k8s--1a2b3]",
    );
  });
});
