// The commit-confirm wait of VethLink steps near the management path is set per host
// (hosts[].confirmTimeoutSeconds, carried by the connection); a bad value is refused at config
// time with the field named, before any host is contacted.
import { expect } from "chai";
import { confirmTimeoutOf } from "../../providers/kinds/vethLink/guard";
import { Connection } from "../../providers/transport";
import { formatIssues } from "../../providers/schema";
import { hostConnection, parseStackConfig } from "../../stacks/config";

const host = (extra: Record<string, unknown>) => ({
  name: "h1",
  address: "192.0.2.10",
  hostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
  ...extra,
});

describe("per-host commit-confirm timeout", () => {
  it("defaults to 15 s and follows hosts[].confirmTimeoutSeconds through the connection", () => {
    const c = parseStackConfig({
      hosts: [host({}), host({ name: "h2", confirmTimeoutSeconds: 40 })],
    });
    const conns = c.hosts.map((h) =>
      Connection.parse(hostConnection(h, "KEY")),
    );
    expect(conns.map(confirmTimeoutOf)).to.deep.equal([15, 40]);
  });

  const bad: Array<[unknown, RegExp]> = [
    [4, /at least 5/],
    [0, /at least 5/],
    [-15, /at least 5/],
    [3601, /at most 3600/],
    [7.5, /whole number of seconds/],
    ["15", /expected number/],
  ];
  for (const [value, why] of bad) {
    it(`refuses hosts[].confirmTimeoutSeconds = ${JSON.stringify(value)}, naming the field`, () => {
      expect(() =>
        parseStackConfig({ hosts: [host({ confirmTimeoutSeconds: value })] }),
      )
        .to.throw(/hosts\[0\]\.confirmTimeoutSeconds: /)
        .that.satisfies((e: Error) => why.test(e.message));
    });
  }

  it("a resource's connection refuses it the same way", () => {
    const r = Connection.safeParse({
      host: "192.0.2.10",
      privateKey: "KEY",
      hostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
      confirmTimeoutSeconds: 2,
    });
    expect(r.success, "2 s must be refused").to.equal(false);
    if (r.success) return;
    expect(formatIssues(r.error, "connection")).to.deep.equal([
      "connection.confirmTimeoutSeconds: confirmTimeoutSeconds must be at least 5 (hostnet needs time to reconnect and confirm)",
    ]);
  });
});
