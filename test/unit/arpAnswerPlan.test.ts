// Which ArpAnswer tables a host gets (components/arpAnswer.ts), as data: one per bridge that has
// this host's VMs on it and addresses to answer for; a segment's members on every host and the
// bridge's arpSuppress VMs are answered; every VM of the bridge on this host asks through it.
import { expect } from "chai";
import { arpAnswersForHost, arpTableName } from "../../components/arpAnswer";
import { segmentsForHost } from "../../components/segment";
import { BridgeSpec, VmSpec } from "../../components/spec";

const vm = (
  name: string,
  n: number,
  host: string,
  extra: Partial<Record<keyof VmSpec, unknown>> = {},
): VmSpec =>
  VmSpec.parse({
    name,
    host,
    attachment: "bridged",
    bridge: "br-s",
    mac: `02:00:00:00:00:0${n}`,
    ipv4: [`198.19.9.${n}/24`],
    ...extra,
  });
const bridges = (extra: Record<string, unknown> = {}) =>
  ["br-s", "br-t"].map((name) => BridgeSpec.parse({ name, ...extra }));
const underlay = new Map([
  ["h1", "198.18.9.11"],
  ["h2", "198.18.9.12"],
]);

describe("ArpAnswer tables of a host (components/arpAnswer.ts)", () => {
  const segment = { name: "s1", vni: 100, bridge: "br-s", port: 4789 };
  const vms = [
    vm("a", 1, "h1", { segment: "s1" }),
    vm("b", 2, "h2", { segment: "s1", attachment: "isolated-netns" }),
    vm("c", 3, "h1", { bridge: "br-t", managedFdb: true, arpSuppress: true }),
    vm("d", 4, "h1", { bridge: "br-t" }),
    vm("e", 5, "h1", { bridge: "br-t", attachment: "macvlan", lower: "eth0" }),
  ];
  const forHost = (host: string, b = bridges()) =>
    arpAnswersForHost(
      host,
      b,
      vms.filter((v) => v.host === host),
      segmentsForHost(host, [segment], vms, underlay),
    );

  it("answers a segment's members on every host, asked from the local members' ports", () => {
    const [seg] = forHost("h2");
    expect(seg).to.deep.equal({
      bridge: "br-s",
      table: arpTableName("br-s"),
      askers: [{ vm: "b", port: "hv-b" }],
      entries: [
        { ip: "198.19.9.1", mac: "02:00:00:00:00:01" },
        { ip: "198.19.9.2", mac: "02:00:00:00:00:02" },
      ],
    });
  });

  it("answers a bridge's arpSuppress VMs, asked from every VM port on the bridge (not macvlan)", () => {
    const t = forHost("h1").find((a) => a.bridge === "br-t");
    expect(t?.askers).to.deep.equal([
      { vm: "c", port: "tap-c" },
      { vm: "d", port: "tap-d" },
    ]);
    expect(t?.entries).to.deep.equal([
      { ip: "198.19.9.3", mac: "02:00:00:00:00:03" },
    ]);
  });

  it("makes no table for a bridge with nothing to answer, nor when arpAnswer is off", () => {
    expect(forHost("h2").map((a) => a.bridge)).to.deep.equal(["br-s"]);
    expect(forHost("h1", bridges({ arpAnswer: false }))).to.deep.equal([]);
  });

  it("names the table after the bridge, with a hash when the name needs changing", () => {
    expect(arpTableName("br0")).to.equal("hostnet_arp_br0");
    expect(arpTableName("br-s")).to.match(/^hostnet_arp_br_s_[0-9a-f]{6}$/);
    expect(arpTableName("br_s")).to.equal("hostnet_arp_br_s");
    expect(arpTableName("br.s")).to.not.equal(arpTableName("br-s"));
  });
});
