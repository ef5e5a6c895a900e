// State compatibility across releases: a stack made by the code of the previous release (its own
// program, components and provider runtime, built from git at RELEASE) is taken over by this
// checkout's code: a refresh finds no changes, a preview plans no delete or replace and no create but
// the one addition of this release (an ArpAnswer table), an update and a destroy
// work, and the hosts end as they began. Resource type tokens, component types and resource names
// must therefore not change, and the provider stored in old state must keep loading.
import { expect } from "chai";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { inlineStack, PROJECT_ROOT } from "../../scripts/engine";
import { changedProperties } from "../../scripts/stacks";
import { stateSize } from "../../bench/stateSize";
import { previewNonUpdates } from "../support/harness";
import { inventory, LabHost, labUp, privateKey, sshRun } from "../support/lab";

/** The release this code must stay compatible with (main before the architecture and scale work). */
const RELEASE = "a8d98674b7bad95fd66f034025f2609335ae7511";
const STACK = "test-compat";

/** Every attachment kind on two hosts, with names of their own (other tests share the lab). */
function rawConfig(hosts: LabHost[], extraVm = false): Record<string, unknown> {
  const vm = (
    name: string,
    host: string,
    attachment: string,
    n: number,
    extra: Record<string, unknown> = {},
  ) => ({
    name,
    host,
    attachment,
    mac: `02:00:00:7c:00:${n.toString(16).padStart(2, "0")}`,
    ipv4: [
      attachment === "routed"
        ? `198.19.124.${n}/32`
        : `198.19.${attachment === "macvlan" ? 125 : 124}.${n}/24`,
    ],
    simulate: true,
    ...extra,
  });
  const vms = [
    vm("cmpiso1", "lab1", "isolated-netns", 11, {
      bridge: "br-cmp",
      managedFdb: true,
      arpSuppress: true,
    }),
    vm("cmpbr1", "lab1", "bridged", 12, { bridge: "br-cmp", managedFdb: true }),
    vm("cmpmv1", "lab2", "macvlan", 21, {
      lower: "cmpnic0",
      macvlanMode: "private",
    }),
    vm("cmprt1", "lab2", "routed", 31),
  ];
  if (extraVm)
    vms.push(
      vm("cmpiso2", "lab1", "isolated-netns", 13, {
        bridge: "br-cmp",
        managedFdb: true,
      }),
    );
  return {
    hosts: hosts.map((h) => ({
      name: h.name,
      address: h.address,
      port: h.port,
      user: "root",
      hostKey: h.hostKey,
    })),
    bridges: [{ name: "br-cmp" }],
    simulatedNics: ["cmpnic0"],
    vms,
    rollout: { serial: [1, "100%"], maxFailures: 0, healthCheck: true },
  };
}

/**
 * The program of a checkout at `root` (its dist), fed the same raw config. The release passes the
 * key text (stored with every resource); this code passes the key file by reference, as its stack
 * program does for the lab.
 */
function programOf(root: string, raw: () => Record<string, unknown>) {
  const stacks = require(path.join(root, "dist", "stacks", "index.js"));
  const config = require(path.join(root, "dist", "stacks", "config.js"));
  return async () =>
    stacks.deployFleet(
      config.parseStackConfig(raw()),
      root === PROJECT_ROOT
        ? { privateKeyFile: inventory().privateKeyPath }
        : pulumi.secret(privateKey()),
    );
}

/** What the lab hosts hold, as the test compares it: every link with its master, alias and flags, fdb, nft. */
function hostView(h: LabHost): string {
  return sshRun(
    h,
    "for n in '' $(ip netns list | cut -d' ' -f1); do echo \"== $n\"; " +
      'x() { if [ -z "$n" ]; then "$@"; else ip netns exec "$n" "$@"; fi; }; ' +
      "x ip -o -d link show | sed 's/^[0-9]*: //; s/ link-netns[^ ]*//; s/ link-netnsid [0-9]*//'; " +
      "x ip -o addr show; x ip route show; x bridge fdb show | grep -v permanent; x nft list ruleset 2>/dev/null; done",
  );
}

function releaseAvailable(): boolean {
  return (
    spawnSync("git", [
      "-C",
      PROJECT_ROOT,
      "cat-file",
      "-e",
      `${RELEASE}^{commit}`,
    ]).status === 0
  );
}

describe("state made by the previous release is refreshed, updated and destroyed by this code", function () {
  this.timeout(900_000);
  let hosts: LabHost[];
  const old = fs.mkdtempSync(path.join(os.tmpdir(), "hostnet-release-"));
  let initial: string[] = [];
  let extraVm = false;

  before(function () {
    if (!releaseAvailable()) {
      // A shallow clone has no history to build the previous release from.
      console.log(
        `      skipped: commit ${RELEASE} is not in this clone's history (shallow clone?)`,
      );
      this.skip();
    }
    hosts = labUp(3).hosts.slice(0, 2);
    execFileSync("sh", [
      "-c",
      `git -C "$1" archive "$2" | tar -x -C "$3"`,
      "sh",
      PROJECT_ROOT,
      RELEASE,
      old,
    ]);
    fs.symlinkSync(
      path.join(PROJECT_ROOT, "node_modules"),
      path.join(old, "node_modules"),
    );
    execFileSync(
      path.join(PROJECT_ROOT, "node_modules", ".bin", "tsc"),
      ["-p", path.join(old, "tsconfig.json")],
      { stdio: "inherit" },
    );
    initial = hosts.map(hostView);
  });

  after(async () => {
    // A failed run leaves the stack: take it down with this code so the lab is clean for the rest.
    const left = await inlineStack(
      STACK,
      programOf(PROJECT_ROOT, () => rawConfig(hosts, extraVm)),
    );
    if ((await left.exportStack()).deployment?.resources?.length)
      await left.destroy({ color: "never" }).catch(() => undefined);
    await left.workspace.removeStack(STACK).catch(() => undefined);
    fs.rmSync(old, { recursive: true, force: true });
  });

  it("the old release creates; this code refreshes with no changes, updates and destroys", async () => {
    const raw = () => rawConfig(hosts, extraVm);
    // The previous release: its program, and its provider runtime in the engine's provider process.
    const oldStack = await inlineStack(STACK, programOf(old, raw), {
      env: { HOSTNET_HOME: old },
    });
    const made = await oldStack.up({ color: "never" });
    expect(made.summary.result).to.equal("succeeded");
    const resources = (await oldStack.exportStack()).deployment.resources
      .length;
    expect(resources).to.be.greaterThan(20);
    const providers = (await oldStack.exportStack()).deployment.resources
      .filter((r: any) => r.inputs?.__provider)
      .map((r: any) => r.inputs.__provider);
    expect(
      providers.some((p: string) => p.includes("runtime.js")),
      "old state stores the release's closure provider",
    ).to.equal(true);

    // This code, same stack: the stored providers load, the hosts match, nothing to do.
    const stack = await inlineStack(STACK, programOf(PROJECT_ROOT, raw), {
      env: { HOSTNET_HOME: PROJECT_ROOT },
    });
    const refreshed = await stack.refresh({ color: "never" });
    expect(
      Object.keys(refreshed.summary.resourceChanges ?? {}),
      "refresh by this code",
    ).to.deep.equal(["same"]);
    // A preview may update properties this release added (e.g. a managed port's table became
    // exclusive), but nothing is created, deleted or replaced: URNs and identities are the same.
    const changed = await previewNonUpdates(stack, (md) =>
      (md.diffs ?? changedProperties(md.old?.outputs, md.new?.inputs)).join(
        ",",
      ),
    );
    // One addition is this release's: a bridge with an arpSuppress VM gets its ArpAnswer table.
    const added = changed.filter((c) => c.startsWith("create lab1-arp-br-cmp"));
    expect(added, "the ArpAnswer of br-cmp").to.have.length(1);
    expect(
      changed.filter((c) => !added.includes(c)),
      "preview by this code: only in-place updates",
    ).to.deep.equal([]);
    const taken = await stack.up({ color: "never" });
    expect(taken.summary.result).to.equal("succeeded");
    const settled = await stack.preview({ color: "never", refresh: true });
    expect(
      settled.changeSummary,
      "after one up by this code",
    ).to.not.have.any.keys("create", "update", "delete", "replace");
    expect(
      stateSize(await stack.exportStack()).withSecrets,
      "resources still holding the key after one up by this code",
    ).to.equal(0);

    // An update through this code: one more VM, then back to the release's config.
    extraVm = true;
    const grown = await stack.up({ color: "never" });
    expect(grown.summary.result).to.equal("succeeded");
    expect(sshRun(hosts[0], "ip netns list")).to.include("cmpiso2");
    const noop = await stack.preview({ color: "never", refresh: true });
    expect(noop.changeSummary).to.not.have.any.keys(
      "create",
      "update",
      "delete",
      "replace",
    );

    const destroyed = await stack.destroy({ color: "never" });
    expect(destroyed.summary.resourceChanges, "destroy").to.have.property(
      "delete",
    );
    expect(hosts.map(hostView)).to.deep.equal(initial);
    await stack.workspace.removeStack(STACK);
  });
});
