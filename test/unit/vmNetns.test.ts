// VmNetns manages only sysctls the host snapshot reads; one it did not read would show as drift on
// every refresh (issue 11: rp_filter and default.disable_ipv6 were such keys).
import { expect } from "chai";
import { snapshotScript } from "../../providers/state";
import { NAMESPACE_SYSCTLS } from "../../providers/kinds/vmNetns";
import { diff } from "../../providers/runtime";

describe("VmNetns sysctls are all read by the snapshot", () => {
  const script = snapshotScript();
  for (const key of NAMESPACE_SYSCTLS) {
    it(`reads ${key}`, () => {
      const path = key.replace(/^net\./, "").replace(/\./g, "/");
      expect(script, `the snapshot's sysctl list lacks ${path}`).to.match(
        new RegExp(`for k in [^;]*\\b${path.replace(/\//g, "\\/")}\\b`),
      );
    });
  }
});

// Delete sees the recorded outputs only: setting force on an existing VmNetns must be a change
// (an update records it), or the refusal to delete could never be overridden.
describe("VmNetns force is recorded", () => {
  const olds = {
    connection: { host: "198.18.1.10" },
    name: "vm-a",
    sysctls: {},
    loopbackUp: true,
    force: false,
  };
  it("force false → true is a change, in place", async () => {
    const r = await diff("VmNetns", "netns/vm-a", olds, {
      ...olds,
      force: true,
    });
    expect(r.changes).to.equal(true);
    expect(r.replaces).to.deep.equal([]);
  });
  it("an unchanged VmNetns (force recorded as before) is no change", async () =>
    expect(
      (await diff("VmNetns", "netns/vm-a", olds, { ...olds })).changes,
    ).to.equal(false));
});
