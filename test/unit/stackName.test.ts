// Which stack a pulumi command line names (scripts/stackName.ts): pure argument and file parsing.
import { expect } from "chai";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  isLabStack,
  selectedStack,
  stackFromArgs,
  stackOf,
} from "../../scripts/stackName";

describe("stackName: the stack a pulumi command line acts on", () => {
  const none = {};
  const cases: Array<[string[], string | undefined]> = [
    [["up", "-s", "lab"], "lab"],
    [["up", "--stack", "lab-x"], "lab-x"],
    [["up", "--stack=lab-x"], "lab-x"],
    [["up", "-slab-x"], "lab-x"],
    [["up", "-s=lab-x"], "lab-x"],
    [["stack", "init", "lab-x"], "lab-x"],
    [["stack", "init", "--secrets-provider", "passphrase", "lab-x"], "lab-x"],
    [["stack", "init", "-C", "/tmp", "lab-x", "--non-interactive"], "lab-x"],
    [["stack", "select", "test-1"], "test-1"],
    [["stack", "rm", "--yes", "lab-y"], "lab-y"],
    [["stack", "rename", "lab-new"], undefined], // renames the selected stack
    [["stack", "rename", "prod2", "-s", "lab"], "lab"],
    [["config", "set", "--secret", "hostnet:x", "v"], undefined],
    [["up", "--", "-s", "lab"], undefined],
    [
      ["preview", "--refresh", "--show-secrets", "--suppress-outputs"],
      undefined,
    ],
    [["stack", "ls"], undefined],
  ];
  for (const [args, want] of cases) {
    it(`${args.join(" ")} -> ${want ?? "(none)"}`, () => {
      expect(stackFromArgs(args, none)).to.equal(want);
    });
  }

  it("falls back to PULUMI_STACK; a named stack wins over it", () => {
    expect(stackFromArgs(["up"], { PULUMI_STACK: "lab" })).to.equal("lab");
    expect(
      stackFromArgs(["up", "-s", "prod"], { PULUMI_STACK: "lab" }),
    ).to.equal("prod");
  });

  it("lab stacks are lab, lab-*, test-*; nothing else", () => {
    expect(["lab", "lab-x", "test-1"].map(isLabStack)).to.deep.equal([
      true,
      true,
      true,
    ]);
    expect(
      ["production", "labx", "my-lab", undefined].map(isLabStack),
    ).to.deep.equal([false, false, false, false]);
  });

  it("reads the selected stack from the CLI's workspace file for this project and backend", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "hn-stackname-"));
    try {
      fs.writeFileSync(
        path.join(root, "Pulumi.yaml"),
        "name: hostnet\nruntime: nodejs\n",
      );
      const home = path.join(root, "home");
      fs.mkdirSync(path.join(home, "workspaces"), { recursive: true });
      const hash = createHash("sha1")
        .update(path.join(root, "Pulumi.yaml"))
        .digest("hex");
      fs.writeFileSync(
        path.join(home, "workspaces", `hostnet-${hash}-workspace.json`),
        JSON.stringify({
          stacks: {
            "file:///state": "organization/hostnet/lab-sel",
            "file:///other": "organization/hostnet/prod",
          },
        }),
      );
      expect(selectedStack(root, home, "file:///state")).to.equal("lab-sel");
      expect(selectedStack(root, home, "file:///other")).to.equal("prod");
      expect(selectedStack(root, home, "file:///nowhere")).to.equal(undefined);
      expect(
        stackOf(["config"], root, {
          PULUMI_HOME: home,
          PULUMI_BACKEND_URL: "file:///state",
        }),
      ).to.equal("lab-sel");
      expect(
        stackOf(["config", "-s", "x"], root, {
          PULUMI_HOME: home,
          PULUMI_BACKEND_URL: "file:///state",
        }),
      ).to.equal("x");
      expect(
        selectedStack(path.join(root, "missing"), home, "file:///state"),
      ).to.equal(undefined);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
