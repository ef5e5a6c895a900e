// Root hooks: whatever the tests brought up, the lab is taken down at the end of the run.
import { execFileSync } from "child_process";
import * as path from "path";
import { ROOT } from "./lab";

export const mochaHooks = {
  afterAll(this: Mocha.Context) {
    this.timeout(120000);
    if (process.env.HOSTNET_KEEP_LAB === "1") return;
    execFileSync("bash", [path.join(ROOT, "scripts", "lab.sh"), "down"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  },
};
