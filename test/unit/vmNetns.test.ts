// VmNetns manages only sysctls the host snapshot reads; one it did not read would show as drift on
// every refresh (issue 11: rp_filter and default.disable_ipv6 were such keys).
import { expect } from "chai";
import { snapshotScript } from "../../providers/state";
import { NAMESPACE_SYSCTLS } from "../../providers/kinds/vmNetns";

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
