// What an operator types, run as they would run it: a plain `pulumi` with the project's engine on
// PATH (the engine starts our pulumi-language-nodejs) and `npm run pulumi` (the program hosted
// in-process), against the same small lab stack, each seeing the other's result; the lab passphrase
// for every argument form that names a lab stack; config errors printed without a stack trace.
import { expect } from "chai";
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { LabHost, labUp, ROOT, sshRun } from "../support/lab";

const BIN = path.join(ROOT, ".hostnet", "engine", "bin");

/** The environment of a fresh operator shell: none of the PULUMI_* settings engineEnv would add. */
function operatorEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${BIN}:${process.env.PATH}`,
    ...extra,
  };
  for (const k of Object.keys(env)) if (k.startsWith("PULUMI_")) delete env[k];
  delete env.HOSTNET_HOME;
  return env;
}

function run(
  file: string,
  args: string[],
  extra: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: ROOT, env: operatorEnv(extra), maxBuffer: 1 << 26 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
          out: stdout + stderr,
        }),
    );
  });
}
/** `pulumi ARGS` as typed after `export PATH="$PWD/.hostnet/engine/bin:$PATH"`. */
const plain = (...args: string[]) => run("pulumi", args);
/** `npm run pulumi -- ARGS` (the script npm runs). */
const npmPulumi = (...args: string[]) =>
  run("node", [path.join(ROOT, "dist", "scripts", "pulumi.js"), ...args]);

function stackFile(stack: string): string {
  return path.join(ROOT, `Pulumi.${stack}.yaml`);
}

async function removeStack(stack: string): Promise<void> {
  await plain("stack", "rm", "--yes", "--force", "-s", stack);
  fs.rmSync(stackFile(stack), { force: true });
}

describe("operator: plain pulumi, npm run pulumi, lab passphrase, config errors", function () {
  this.timeout(900_000);

  describe("a small lab stack through both paths", () => {
    const STACK = "test-plain";
    let lab1: LabHost;
    const bridgeExists = () =>
      sshRun(lab1, "ip -o link show br-pl 2>&1 || true").includes("br-pl:");

    before(async () => {
      lab1 = labUp(1).hosts[0];
      await removeStack(STACK);
      fs.writeFileSync(
        stackFile(STACK),
        [
          "config:",
          "  hostnet:inventory: lab",
          "  hostnet:bridges: [{name: br-pl}]",
          "  hostnet:vms:",
          '    - {name: pl1, host: lab1, attachment: bridged, bridge: br-pl, mac: "02:00:00:3a:00:01", ipv4: [198.19.60.1/24], simulate: true}',
          "",
        ].join("\n"),
      );
    });
    after(async () => {
      await npmPulumi("destroy", "--yes", "-s", STACK);
      await removeStack(STACK);
    });

    it("plain `pulumi` (language host from PATH): stack init, preview, up, no-op preview; npm run pulumi agrees", async () => {
      const init = await plain("stack", "init", STACK);
      expect(init.code, init.out).to.equal(0);
      const preview = await plain("preview", "-s", STACK);
      expect(preview.code, preview.out).to.equal(0);
      expect(preview.out)
        .to.match(/\+ \d+ to create/)
        .and.not.include("from $PATH");
      expect(bridgeExists(), "preview changed nothing").to.equal(false);
      const up = await plain("up", "--yes", "--skip-preview", "-s", STACK);
      expect(up.code, up.out).to.equal(0);
      expect(up.out).to.match(/\+ \d+ created/);
      expect(bridgeExists()).to.equal(true);
      expect(
        sshRun(lab1, "ip netns exec guest-pl1 ip -o addr show eth0"),
      ).to.include("198.19.60.1/24");
      const again = await plain(
        "preview",
        "--refresh",
        "--expect-no-changes",
        "-s",
        STACK,
      );
      expect(again.code, again.out).to.equal(0);
      const other = await npmPulumi(
        "preview",
        "--expect-no-changes",
        "-s",
        STACK,
      );
      expect(other.code, other.out).to.equal(0);
      const destroy = await npmPulumi("destroy", "--yes", "-s", STACK);
      expect(destroy.code, destroy.out).to.equal(0);
      expect(bridgeExists()).to.equal(false);
    });

    it("npm run pulumi: preview, up, no-op preview; plain `pulumi` agrees and destroys", async () => {
      const preview = await npmPulumi("preview", "-s", STACK);
      expect(preview.code, preview.out).to.equal(0);
      expect(preview.out).to.match(/\+ \d+ to create/);
      const up = await npmPulumi("up", "--yes", "--skip-preview", "-s", STACK);
      expect(up.code, up.out).to.equal(0);
      expect(bridgeExists()).to.equal(true);
      const again = await npmPulumi(
        "preview",
        "--refresh",
        "--expect-no-changes",
        "-s",
        STACK,
      );
      expect(again.code, again.out).to.equal(0);
      const other = await plain(
        "refresh",
        "--yes",
        "--expect-no-changes",
        "-s",
        STACK,
      );
      expect(other.code, other.out).to.equal(0);
      const destroy = await plain("destroy", "--yes", "-s", STACK);
      expect(destroy.code, destroy.out).to.equal(0);
      expect(bridgeExists()).to.equal(false);
    });
  });

  describe("the lab passphrase reaches every subcommand that names a lab stack", () => {
    for (const [how, pulumi] of [
      ["npm run pulumi", npmPulumi],
      ["plain pulumi", plain],
    ] as const) {
      it(`${how}: stack init NAME, config set --secret with -s/--stack=/-sNAME, the selected stack`, async () => {
        const stack = how === "plain pulumi" ? "lab-optest-p" : "lab-optest-n";
        await removeStack(stack);
        try {
          const steps: string[][] = [
            ["stack", "init", stack],
            ["config", "set", "--secret", "hostnet:a", "one", "-s", stack],
            [
              "config",
              "set",
              "--secret",
              "hostnet:b",
              "two",
              `--stack=${stack}`,
            ],
            ["config", "set", "--secret", "hostnet:c", "three", `-s${stack}`],
            ["stack", "select", stack],
            ["config", "set", "--secret", "hostnet:d", "four"],
          ];
          for (const args of steps) {
            const r = await pulumi(...args);
            expect(r.code, `${args.join(" ")}: ${r.out}`).to.equal(0);
          }
          const got = await pulumi("config", "--show-secrets", "--json");
          expect(got.code, got.out).to.equal(0);
          const values = JSON.parse(got.out);
          expect(
            ["a", "b", "c", "d"].map((k) => values[`hostnet:${k}`]?.value),
          ).to.deep.equal(["one", "two", "three", "four"]);
        } finally {
          await removeStack(stack);
        }
      });
    }

    it("a stack that is not a lab stack gets no passphrase: the CLI asks for one", async () => {
      const stack = "prodlike-optest";
      await removeStack(stack);
      try {
        const r = await npmPulumi("stack", "init", stack, "--non-interactive");
        expect(r.code).to.not.equal(0);
        expect(r.out).to.include("PULUMI_CONFIG_PASSPHRASE");
      } finally {
        await removeStack(stack);
      }
    });
  });

  describe("a config error prints its problems and no stack trace", () => {
    const STACK = "test-badcfg";
    before(async () => {
      await removeStack(STACK);
      fs.writeFileSync(
        stackFile(STACK),
        'config:\n  hostnet:vms:\n    - {name: "bad;1", host: nowhere, attachment: bridged, mac: "zz", ipv4: [198.19.60.300/24]}\n',
      );
      const init = await npmPulumi("stack", "init", STACK);
      expect(init.code, init.out).to.equal(0);
    });
    after(() => removeStack(STACK));

    const TRACE = /^\s+at .+\(.*\.js:\d+:\d+\)$/m;
    const gitops = (extra: Record<string, string> = {}) =>
      run(
        "node",
        [path.join(ROOT, "dist", "scripts", "gitops.js"), "preview", STACK],
        { HOSTNET_QUIET: "1", ...extra },
      );

    for (const [how, cmd] of [
      ["npm run gitops -- preview", () => gitops()],
      ["npm run pulumi -- preview", () => npmPulumi("preview", "-s", STACK)],
      ["plain pulumi preview", () => plain("preview", "-s", STACK)],
    ] as const) {
      it(how, async () => {
        const r = await cmd();
        expect(r.code, r.out).to.not.equal(0);
        expect(r.out).to.include(
          "stack config has 3 problem(s); nothing was applied",
        );
        for (const field of ["vms[0].name", "vms[0].mac", "vms[0].ipv4[0]"])
          expect(r.out).to.include(`- ${field}:`);
        expect(r.out).to.not.match(TRACE);
        // gitops prints them once; the engine shows them as the stack's error and in its Diagnostics.
        if (how.includes("gitops"))
          expect(
            r.out.split("stack config has 3 problem(s)").length - 1,
          ).to.equal(1);
        else
          expect(r.out).to.match(
            /Diagnostics:\s+pulumi:pulumi:Stack \(hostnet-test-badcfg\):\s+error: stack config has 3/,
          );
      });
    }

    it("HOSTNET_DEBUG=1 adds the trace", async () => {
      const r = await gitops({ HOSTNET_DEBUG: "1" });
      expect(r.code).to.not.equal(0);
      expect(r.out).to.match(TRACE).and.include("parseStackConfig");
    });
  });
});
