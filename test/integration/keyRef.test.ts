// Small state (issue 10): the SSH key is stored by reference. A stack made the old way (the key
// text, encrypted in every resource's inputs and outputs) is taken over by the program that names
// the key file: only in-place updates that change nothing on the host, after which no resource
// holds the key or a secret; refresh finds nothing; destroy works from the state alone. A stack
// whose key is the config secret hostnet:privateKey stores it once (the default provider's config).
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { inlineStack } from "../../scripts/engine";
import { parseStackConfig, StackConfig } from "../../stacks/config";
import { deployFleet, keySource } from "../../stacks/index";
import { stateSize } from "../../bench/stateSize";
import { independentSnapshot, previewNonUpdates } from "../support/harness";
import { inventory, LabHost, labUp, privateKey } from "../support/lab";

function labConfig(): StackConfig {
  const c = parseStackConfig({
    inventory: "lab",
    bridges: [{ name: "br-kr" }],
    vms: [
      {
        name: "kr-iso",
        host: "lab1",
        attachment: "isolated-netns",
        bridge: "br-kr",
        managedFdb: true,
        mac: "02:00:00:5e:00:01",
        ipv4: ["198.19.94.1/24"],
        simulate: true,
      },
      {
        name: "kr-rt",
        host: "lab1",
        attachment: "routed",
        mac: "02:00:00:5e:00:02",
        ipv4: ["198.19.95.2/32"],
        simulate: true,
      },
    ],
  });
  return { ...c, hosts: c.hosts.filter((h) => h.name === "lab1") };
}

const hostnetResources = (exported: any) =>
  exported.deployment.resources.filter((r: any) =>
    r.type.startsWith("pulumi-nodejs:dynamic/hostnet:"),
  );

describe("the SSH key is stored by reference, not with every resource", function () {
  this.timeout(900_000);
  let lab1: LabHost;
  let initial: Record<string, unknown>;
  const key = () => privateKey().trim();

  before(() => {
    lab1 = labUp(1).hosts[0];
    initial = independentSnapshot(lab1);
  });

  it("a stack made with the key text upgrades in place without touching the host, then holds no key", async () => {
    let byReference = false;
    const config = labConfig();
    const stack = await inlineStack("test-keyref-upgrade", async () =>
      deployFleet(
        config,
        byReference ? keySource(config) : pulumi.secret(privateKey()),
      ),
    );
    try {
      expect((await stack.up({ color: "never" })).summary.result).to.equal(
        "succeeded",
      );
      const before = stateSize(await stack.exportStack());
      expect(
        before.withSecrets,
        "the old way: the key in every resource",
      ).to.be.greaterThan(5);
      const made = independentSnapshot(lab1);

      byReference = true;
      expect(
        await previewNonUpdates(stack),
        "no create, delete or replace",
      ).to.deep.equal([]);
      const up = await stack.up({ color: "never" });
      expect(up.summary.result).to.equal("succeeded");
      expect(
        Object.keys(up.summary.resourceChanges ?? {}).sort(),
      ).to.deep.equal(["same", "update"]);
      expect(
        independentSnapshot(lab1),
        "the upgrade changed nothing on the host",
      ).to.deep.equal(made);

      const exported = await stack.exportStack();
      const after = stateSize(exported);
      console.log(
        `      state: ${before.perResource} -> ${after.perResource} bytes per resource (${after.resources} resources)`,
      );
      expect(after.withSecrets, "resources holding a secret").to.equal(0);
      const text = JSON.stringify(exported);
      expect(text).to.not.include("PRIVATE KEY");
      expect(text).to.not.include(key().split("\n")[1]);
      for (const r of hostnetResources(exported).filter(
        (r: any) => r.outputs.connection,
      ))
        expect(r.outputs.connection.privateKeyFile, r.urn).to.equal(
          inventory().privateKeyPath,
        );

      const refreshed = await stack.refresh({ color: "never" });
      expect(
        Object.keys(refreshed.summary.resourceChanges ?? {}),
      ).to.deep.equal(["same"]);
      const settled = await stack.preview({ color: "never", refresh: true });
      expect(settled.changeSummary).to.not.have.any.keys(
        "create",
        "update",
        "delete",
        "replace",
      );
      expect((await stack.destroy({ color: "never" })).summary.result).to.equal(
        "succeeded",
      );
      expect(
        independentSnapshot(lab1),
        "destroyed from the state alone",
      ).to.deep.equal(initial);
    } finally {
      await stack.destroy({ color: "never" }).catch(() => undefined);
      await stack.workspace
        .removeStack("test-keyref-upgrade")
        .catch(() => undefined);
    }
  });

  it("the config secret hostnet:privateKey is stored once, in the default provider, and destroy reads it from there", async () => {
    const config = labConfig();
    const stack = await inlineStack("test-keyref-config", async () =>
      deployFleet(config, keySource(config)),
    );
    try {
      await stack.setConfig("hostnet:privateKey", {
        value: privateKey(),
        secret: true,
      });
      expect((await stack.up({ color: "never" })).summary.result).to.equal(
        "succeeded",
      );
      const exported = await stack.exportStack();
      // exportStack shows secrets in plaintext: the key text is found wherever it is stored.
      const withKey = exported.deployment.resources.filter((r: any) =>
        JSON.stringify([r.inputs, r.outputs]).includes("PRIVATE KEY"),
      );
      expect(withKey.map((r: any) => r.type)).to.deep.equal([
        "pulumi:providers:pulumi-nodejs",
      ]);
      expect(
        stateSize(exported).withSecrets,
        "resources holding a secret: the default provider only",
      ).to.equal(1);
      const hostnet = hostnetResources(exported);
      expect(hostnet.length).to.be.greaterThan(5);
      for (const r of hostnet.filter((r: any) => r.outputs.connection))
        expect(r.outputs.connection.privateKeyConfig, r.urn).to.equal(
          "hostnet:privateKey",
        );

      const refreshed = await stack.refresh({ color: "never" });
      expect(
        Object.keys(refreshed.summary.resourceChanges ?? {}),
      ).to.deep.equal(["same"]);
      expect((await stack.destroy({ color: "never" })).summary.result).to.equal(
        "succeeded",
      );
      expect(independentSnapshot(lab1)).to.deep.equal(initial);
    } finally {
      await stack.destroy({ color: "never" }).catch(() => undefined);
      await stack.workspace
        .removeStack("test-keyref-config")
        .catch(() => undefined);
    }
  });
});
