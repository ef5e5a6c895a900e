// One source for every fact (issue 11): stack config's host entries take their connection fields
// from the transport's schema, a VM's macvlan modes are MacvlanPort's, and the health check's
// managed-fdb row test is the one in state/.
import { expect } from "chai";
import {
  HostEntry,
  StackConfigError,
  parseStackConfig,
} from "../../stacks/config";
import { ConnectionFields } from "../../providers/transport";
import { MACVLAN_MODES } from "../../providers/kinds/macvlanPort";
import { VmSpec } from "../../components/spec";
import { FdbRow, isManagedFdbRow } from "../../providers/state";

const host = { name: "h1", address: "198.18.9.11" };
const keyLine =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0Jm3hYdJ0P1rZq7Q9l2m0kYc5nq9cZQ0m3Jt8r2xX";

function configProblems(h: Record<string, unknown>): string[] {
  try {
    parseStackConfig({ hosts: [h] });
    return [];
  } catch (e) {
    expect(e).to.be.instanceOf(StackConfigError);
    return (e as StackConfigError).problems;
  }
}

describe("stack config hosts use the transport's connection schema", () => {
  it("accepts a pinned host key and fills the transport's defaults", () => {
    const h = HostEntry.parse({ ...host, hostKey: keyLine });
    expect(h).to.include({ port: 22, user: "root", sudo: false });
    expect(h.hostKey).to.equal(keyLine);
  });

  it("refuses a host key the transport would refuse, naming the field", () => {
    const problems = configProblems({ ...host, hostKey: "not a key" });
    expect(problems).to.have.length(1);
    expect(problems[0]).to.match(
      /^hosts\[0\]\.hostKey: host key must be an OpenSSH public key line/,
    );
  });

  it("refuses a relative knownHostsFile, as the transport does", () => {
    const problems = configProblems({ ...host, knownHostsFile: "known_hosts" });
    expect(problems).to.deep.equal([
      "hosts[0].knownHostsFile: knownHostsFile must be an absolute path",
    ]);
  });

  it("takes the address rules from the connection's host field", () => {
    for (const address of ["-oProxyCommand=x", "a b"]) {
      const ours = HostEntry.safeParse({ ...host, address });
      const theirs = ConnectionFields.shape.host.safeParse(address);
      expect(ours.success, address).to.equal(false);
      expect(ours.error!.issues[0].message).to.equal(
        theirs.error!.issues[0].message,
      );
    }
  });
});

describe("a VM's macvlan modes are MacvlanPort's", () => {
  const vm = (macvlanMode: string) =>
    VmSpec.safeParse({
      name: "web1",
      host: "h1",
      mac: "52:54:00:00:00:01",
      ipv4: ["198.19.1.1/24"],
      attachment: "macvlan",
      lower: "eth1",
      macvlanMode,
    });
  for (const mode of MACVLAN_MODES.filter((m) => m !== "source"))
    it(`admits ${mode}`, () => expect(vm(mode).success).to.equal(true));
  it("refuses source (a VM attachment lists no source MACs) and unknown modes", () => {
    expect(vm("source").success).to.equal(false);
    expect(vm("vepa2").success).to.equal(false);
  });
});

describe("isManagedFdbRow", () => {
  const row = (over: Partial<FdbRow> = {}): FdbRow => ({
    mac: "52:54:00:00:00:01",
    dev: "vp-web1",
    master: "br0",
    state: "static",
    flags: [],
    ...over,
  });
  const want = { mac: "52:54:00:00:00:01", bridge: "br0" };
  it("is a static or permanent entry of the bridge's own table", () => {
    expect(isManagedFdbRow(row(), want)).to.equal(true);
    expect(isManagedFdbRow(row({ state: "permanent" }), want)).to.equal(true);
    expect(
      isManagedFdbRow(row(), {
        ...want,
        mac: "52:54:00:00:00:01".toUpperCase(),
      }),
    ).to.equal(true);
  });
  it("is not a learned entry, a self row, another bridge, MAC or VLAN", () => {
    expect(isManagedFdbRow(row({ state: "reachable" }), want)).to.equal(false);
    expect(isManagedFdbRow(row({ flags: ["self"] }), want)).to.equal(false);
    expect(isManagedFdbRow(row({ master: "br1" }), want)).to.equal(false);
    expect(isManagedFdbRow(row({ mac: "52:54:00:00:00:02" }), want)).to.equal(
      false,
    );
    expect(isManagedFdbRow(row({ vlan: 10 }), want)).to.equal(false);
    expect(isManagedFdbRow(row({ vlan: 10 }), { ...want, vlan: 10 })).to.equal(
      true,
    );
  });
});
