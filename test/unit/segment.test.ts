// Segments as data: the config checks that keep a bad segment from reaching any host, the
// per-host membership every host derives from the same config, and the VxlanDevice / remote
// FdbEntry input checks (preview fails naming the field).
import { expect } from "chai";
import { segmentsForHost } from "../../components/segment";
import {
  parseStackConfig,
  StackConfigError,
  underlayOf,
} from "../../stacks/config";
import { check } from "../../providers/runtime";

const hosts = [
  { name: "h1", address: "198.18.9.11" },
  { name: "h2", address: "198.18.9.12" },
  { name: "h3", address: "h3.example.internal", underlay: "198.18.9.13" },
];
const vm = (
  name: string,
  n: number,
  host: string,
  extra: Record<string, unknown> = {},
) => ({
  name,
  host,
  attachment: "bridged",
  bridge: "br-s",
  mac: `02:00:00:00:00:0${n}`,
  ipv4: [`198.19.9.${n}/24`],
  segment: "s1",
  ...extra,
});
const base = (over: Record<string, unknown> = {}) => ({
  hosts,
  bridges: [{ name: "br-s" }, { name: "br-t" }],
  segments: [{ name: "s1", vni: 100, bridge: "br-s" }],
  vms: [
    vm("a", 1, "h1"),
    vm("b", 2, "h2", { attachment: "isolated-netns" }),
    vm("c", 3, "h3"),
  ],
  ...over,
});

function problems(raw: Record<string, unknown>): string[] {
  try {
    parseStackConfig(raw);
  } catch (err) {
    if (err instanceof StackConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("segments in the stack config", () => {
  it("accepts a valid segment and derives the same membership on every host", () => {
    const c = parseStackConfig(base());
    const underlay = new Map(
      c.hosts.map((h) => [h.name, underlayOf(h)!] as const),
    );
    const h1 = segmentsForHost("h1", c.segments, c.vms, underlay);
    expect(h1).to.have.length(1);
    expect(h1[0]).to.include({ device: "vx-s1", local: "198.18.9.11" });
    expect(
      h1[0].members.map((m) => [m.vm, m.host, m.port, m.underlay]),
    ).to.deep.equal([
      ["a", "h1", "tap-a", "198.18.9.11"],
      ["b", "h2", "hv-b", "198.18.9.12"],
      ["c", "h3", "tap-c", "198.18.9.13"],
    ]);
    const h3 = segmentsForHost("h3", c.segments, c.vms, underlay);
    expect(h3[0].local).to.equal("198.18.9.13");
    expect(h3[0].members).to.deep.equal(h1[0].members);
  });

  it("a host without VMs of the segment is no member unless listed in hosts", () => {
    const c = parseStackConfig(
      base({ vms: [vm("a", 1, "h1"), vm("b", 2, "h2")] }),
    );
    const underlay = new Map(
      c.hosts.map((h) => [h.name, underlayOf(h)!] as const),
    );
    expect(segmentsForHost("h3", c.segments, c.vms, underlay)).to.deep.equal(
      [],
    );
    const listed = parseStackConfig(
      base({
        segments: [
          { name: "s1", vni: 100, bridge: "br-s", hosts: ["h1", "h2", "h3"] },
        ],
        vms: [vm("a", 1, "h1")],
      }),
    );
    expect(
      segmentsForHost(
        "h3",
        listed.segments,
        listed.vms,
        underlay,
      )[0].members.map((m) => m.vm),
    ).to.deep.equal(["a"]);
  });

  it("names the field of every bad segment setting", () => {
    const found = problems(
      base({
        segments: [
          { name: "s1", vni: 100, bridge: "br-s", hosts: ["h1", "nope"] },
          { name: "s1", vni: 100, bridge: "br-s" },
          { name: "s3", vni: 300, bridge: "br-missing" },
        ],
        vms: [
          vm("a", 1, "h1", { arpSuppress: true, managedFdb: true }),
          vm("b", 2, "h2", { segment: "zz" }),
          vm("c", 3, "h3", { bridge: "br-t" }),
          vm("d", 4, "h1", { attachment: "routed", bridge: undefined }),
          vm("e", 5, "h2"),
        ],
      }),
    );
    const expected = [
      /^segments\[0\]\.hosts\[1\]: no host named nope/,
      /^segments\[1\]\.name: s1 is already used by segments\[0\]/,
      /^segments\[1\]\.vni: 100 is already used by segments\[0\]/,
      /^segments\[1\]\.bridge: br-s already carries segment s1/,
      /^segments\[2\]\.bridge: no bridge named br-missing/,
      /^vms\[0\]\.arpSuppress: a segment VM must not have neigh_suppress/,
      /^vms\[1\]\.segment: no segment named zz/,
      /^vms\[2\]\.bridge: segment s1 is on bridge br-s, but the VM is on br-t/,
      /^vms\[3\]\.segment: only bridged and isolated-netns VMs/,
      /^vms\[4\]\.host: h2 is not in segments\[0\]\.hosts/,
    ];
    for (const re of expected)
      expect(
        found.some((p) => re.test(p)),
        `${re} in:\n${found.join("\n")}`,
      ).to.equal(true);
  });

  it("floodTo: the listed host copies broadcasts to every member, the others to it alone", () => {
    const c = parseStackConfig(
      base({
        segments: [{ name: "s1", vni: 100, bridge: "br-s", floodTo: ["h2"] }],
      }),
    );
    const underlay = new Map(
      c.hosts.map((h) => [h.name, underlayOf(h)!] as const),
    );
    const floodOf = (h: string) =>
      segmentsForHost(h, c.segments, c.vms, underlay)[0].floodTo;
    expect(floodOf("h2")).to.deep.equal(["198.18.9.11", "198.18.9.13"]);
    expect(floodOf("h1")).to.deep.equal(["198.18.9.12"]);
    expect(floodOf("h3")).to.deep.equal(["198.18.9.12"]);
    const none = parseStackConfig(base());
    expect(
      segmentsForHost("h1", none.segments, none.vms, underlay)[0].floodTo,
      "no floodTo: nothing is flooded",
    ).to.deep.equal([]);
  });

  it("floodTo names only member hosts, each once", () => {
    const found = problems(
      base({
        segments: [
          {
            name: "s1",
            vni: 100,
            bridge: "br-s",
            hosts: ["h1", "h2"],
            floodTo: ["h1", "h3", "h1"],
          },
        ],
        vms: [vm("a", 1, "h1"), vm("b", 2, "h2")],
      }),
    );
    expect(found).to.deep.equal([
      "segments[0].floodTo[1]: h3 is not a host of segment s1 (its hosts: h1, h2); list a host that has a VM of the segment or is in its hosts",
      "segments[0].floodTo[2]: h1 is listed twice",
    ]);
  });

  it("needs an IPv4 underlay for a member host whose address is a name", () => {
    const found = problems(
      base({
        hosts: [
          hosts[0],
          hosts[1],
          { name: "h3", address: "h3.example.internal" },
        ],
      }),
    );
    expect(found).to.have.length(1);
    expect(found[0]).to.match(
      /^hosts\[2\]\.underlay: host h3 is in segment s1 but its address h3\.example\.internal is not an IPv4 address/,
    );
  });

  it("rejects bad segment names and VNIs at the schema", () => {
    const found = problems(
      base({
        segments: [{ name: "this-name-is-too-long", vni: 0, bridge: "br-s" }],
      }),
    );
    expect(found.some((p) => /segments\[0\]\.name/.test(p))).to.equal(true);
    expect(
      found.some((p) => /segments\[0\]\.vni/.test(p) && /16777215/.test(p)),
    ).to.equal(true);
  });
});

describe("VxlanDevice and remote FdbEntry inputs", () => {
  const conn = { connection: { host: "198.18.9.11" } };
  it("fails check naming vni, local and port", async () => {
    const r = await check(
      "VxlanDevice",
      {},
      {
        ...conn,
        name: "vx-a",
        vni: 16777216,
        local: "not-an-ip",
        port: 0,
        bridge: "br-a",
      },
    );
    expect((r.failures ?? []).map((f) => f.property).sort()).to.deep.equal([
      "local",
      "port",
      "vni",
    ]);
  });
  it("fills in the segment defaults: port 4789, learning off, neigh_suppress on the port", async () => {
    const r = await check(
      "VxlanDevice",
      {},
      { ...conn, name: "vx-a", vni: 7, local: "198.18.9.11", bridge: "br-a" },
    );
    expect(r.failures).to.equal(undefined);
    expect(r.inputs).to.deep.include({
      port: 4789,
      learning: false,
      portFlags: { learning: false, flood: false, neighSuppress: true },
    });
  });
  it("fails check naming remote when its destination is not an IPv4 address", async () => {
    const r = await check(
      "FdbEntry",
      {},
      {
        ...conn,
        bridge: "br-a",
        port: "vx-a",
        mac: "02:00:00:00:00:01",
        remote: { dst: "h2" },
      },
    );
    expect((r.failures ?? []).map((f) => f.property)).to.deep.equal(["remote"]);
  });
});
