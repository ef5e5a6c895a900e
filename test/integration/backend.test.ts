// PostgreSQL as the shared state backend (issue 13, item 4), for real: `npm run backend` starts a
// throwaway cluster of its own (PostgreSQL 15 from Debian, run as a non-root user), the engine's
// postgres:// DIY backend keeps the state in it (table pulumi_state), the GitOps pipeline runs
// against it (apply, drift, drift caught and named, apply repairs), and two checkouts (separate
// processes with separate work directories) apply the same stack at once: the later one fails with
// Pulumi's concurrent-update error while the first holds the lock, nothing interleaves, and both
// agree afterwards. A fleet rollout (`gitops apply --host-stacks`) keeps one row per host stack
// there and its drift check names the host. The test stops and removes the cluster it started.
import { expect } from "chai";
import { execFile, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";
import { backendUrl, findPgBin, readBackend } from "../../scripts/backend";
import { engineEnv, pulumiCommand, PROJECT_NAME } from "../../scripts/engine";
import { LabHost, labUp, ROOT, sshRun } from "../support/lab";

const DIR = path.join(ROOT, ".hostnet", "tmp", "test-backend");

function node(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      "node",
      [path.join(ROOT, "dist", script), ...args],
      { env, maxBuffer: 1 << 26 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
          out: stdout + stderr,
        }),
    );
  });
}

/** A second checkout's process; resolves with its RESULT line once it ends, and calls onLine for each output line. */
function checkout(
  workDir: string,
  configFile: string,
  mode: "up" | "check",
  env: NodeJS.ProcessEnv,
  onText?: (s: string) => void,
) {
  const child = spawn(
    "node",
    [
      path.join(ROOT, "dist", "test", "support", "applyStack.js"),
      workDir,
      "test-pg-race",
      configFile,
      mode,
    ],
    { env },
  );
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
    onText?.(out);
  });
  child.stderr.on("data", (d) => (out += d));
  return new Promise<{ ok: boolean; error?: string; out: string }>((resolve) =>
    child.on("exit", () => {
      const line = out
        .split("\n")
        .reverse()
        .find((l) => l.startsWith("RESULT "));
      resolve({
        ...(line
          ? JSON.parse(line.slice(7))
          : { ok: false, error: "no RESULT line" }),
        out,
      });
    }),
  );
}

describe("PostgreSQL shared backend (npm run backend; GitOps and two checkouts against it)", function () {
  this.timeout(900_000);
  let env: NodeJS.ProcessEnv;
  let url = "";
  let hosts: LabHost[];

  before(async function () {
    if (!findPgBin() && process.env.HOSTNET_TEST_INSTALL_POSTGRES !== "1") {
      console.log(
        "      SKIP: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin); `npm run backend -- up` installs them (apt-get install postgresql)",
      );
      this.skip();
    }
    env = { ...process.env, HOSTNET_BACKEND_DIR: DIR, HOSTNET_QUIET: "1" };
    await node("scripts/backend.js", ["down", "--purge"], env); // a cluster left by an interrupted run
    const up = await node("scripts/backend.js", ["up"], env);
    expect(up.code, up.out).to.equal(0);
    url = up.out.match(/^PULUMI_BACKEND_URL=(\S+)$/m)?.[1] ?? "";
    env.PULUMI_BACKEND_URL = url;
    hosts = labUp(2).hosts;
  });

  after(async () => {
    if (!env) return;
    const down = await node("scripts/backend.js", ["down", "--purge"], env);
    expect(down.code, down.out).to.equal(0);
    expect(fs.existsSync(DIR), "the test's cluster is removed").to.equal(false);
  });

  it("npm run backend: a running cluster on 127.0.0.1, a generated password, not run as root; up again is idempotent; url and status agree", async () => {
    const info = readBackend(DIR)!;
    expect(url)
      .to.equal(backendUrl(info))
      .and.match(
        /^postgres:\/\/hostnet:[A-Za-z0-9_-]{20,}@127\.0\.0\.1:\d+\/pulumi\?sslmode=disable$/,
      );
    const pid = Number(
      fs
        .readFileSync(path.join(DIR, "data", "postmaster.pid"), "utf8")
        .split("\n")[0],
    );
    const uid = fs
      .readFileSync(`/proc/${pid}/status`, "utf8")
      .match(/^Uid:\s+(\d+)/m)![1];
    expect(Number(uid), "the server's uid").to.not.equal(0);
    const again = await node("scripts/backend.js", ["up"], env);
    expect(again.out).to.include(`PULUMI_BACKEND_URL=${url}`);
    expect((await node("scripts/backend.js", ["status"], env)).code).to.equal(
      0,
    );
    expect(
      (await node("scripts/backend.js", ["url"], env)).out.trim(),
    ).to.equal(`PULUMI_BACKEND_URL=${url}`);
  });

  it("the GitOps pipeline against Postgres: apply, drift clean, drift caught and named (exit 3), apply repairs; the state is in pulumi_state", async () => {
    const fileState = path.join(
      ROOT,
      ".hostnet",
      "state",
      ".pulumi",
      "stacks",
      PROJECT_NAME,
      "lab.json",
    );
    const fileBefore = fs.existsSync(fileState)
      ? fs.statSync(fileState).mtimeMs
      : 0;
    const gitops = (mode: string) =>
      node("scripts/gitops.js", [mode, "lab"], env);
    try {
      const apply = await gitops("apply");
      expect(apply.code, apply.out).to.equal(0);
      expect((await gitops("drift")).code).to.equal(0);
      sshRun(
        hosts[0],
        "bridge fdb del 02:00:00:0a:01:01 dev hv-web1 master static",
      );
      const drift = await gitops("drift");
      expect(drift.code, drift.out).to.equal(3);
      expect(drift.out).to.match(
        /DRIFT FdbEntry lab1-web1-fdb: missing on the host/,
      );
      const repair = await gitops("apply");
      expect(repair.code, repair.out).to.equal(0);
      const keys = await sql(
        `SELECT key FROM pulumi_state WHERE key LIKE '%/stacks/${PROJECT_NAME}/lab.json'`,
      );
      expect(keys, "the lab stack's checkpoint row").to.have.length(1);
      expect(
        fs.existsSync(fileState) ? fs.statSync(fileState).mtimeMs : 0,
        "the file backend was not used",
      ).to.equal(fileBefore);
    } finally {
      const d = await node(
        "scripts/pulumi.js",
        ["destroy", "--yes", "-s", "lab", "--non-interactive"],
        env,
      );
      expect(d.code, d.out).to.equal(0);
    }
  });

  it("two checkouts apply the same stack at once: the second fails with the concurrent-update error, nothing interleaves, both agree", async () => {
    const configFile = path.join(DIR, "race.json");
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        inventory: "lab",
        bridges: [{ name: "br-pg" }],
        vms: [1, 2, 3, 4].map((i) => ({
          name: `pg${i}`,
          host: "lab2",
          attachment: "isolated-netns",
          bridge: "br-pg",
          managedFdb: true,
          simulate: true,
          mac: `02:00:00:3d:00:0${i}`,
          ipv4: [`198.19.70.${i}/24`],
        })),
        rollout: { serial: [1], maxFailures: 0, healthCheck: true },
      }),
    );
    const [dirA, dirB] = ["checkout-a", "checkout-b"].map((d) =>
      path.join(DIR, d),
    );
    let second: ReturnType<typeof checkout> | undefined;
    // B starts once A has taken the stack's lock and is updating.
    const first = checkout(dirA, configFile, "up", env, (out) => {
      if (!second && /Updating \(/.test(out))
        second = checkout(dirB, configFile, "up", env);
    });
    const a = await first;
    expect(a.ok, a.out).to.equal(true);
    expect(second, "B was started while A was updating").to.not.equal(
      undefined,
    );
    const b = await second!;
    expect(b.ok, "B must not update while A holds the lock").to.equal(false);
    expect(b.error).to.match(/the stack is currently locked by 1 lock\(s\)/);
    // Nothing interleaved: one update in the stack's history, and B applied nothing on the host.
    const stack = await automation.LocalWorkspace.selectStack(
      {
        stackName: "test-pg-race",
        projectName: PROJECT_NAME,
        program: async () => ({}),
      },
      {
        workDir: dirA,
        envVars: engineEnv("test-pg-race", env),
        pulumiCommand: await pulumiCommand(),
      },
    );
    const history = await stack.history();
    expect(history.map((h) => `${h.kind}:${h.result}`)).to.deep.equal([
      "update:succeeded",
    ]);
    // Both checkouts agree: each sees no changes against the live hosts, through the shared state.
    for (const dir of [dirB, dirA]) {
      const check = await checkout(dir, configFile, "check", env);
      expect(check.ok, check.out).to.equal(true);
    }
    expect(
      sshRun(hosts[1], "ip netns list | grep -c '^vm-pg' || true").trim(),
    ).to.equal("4");
    await stack.destroy({ color: "never", parallel: 64 });
    await stack.workspace.removeStack("test-pg-race");
    expect(sshRun(hosts[1], "ip -o link show br-pg 2>&1 || true")).to.include(
      "does not exist",
    );
  });

  it("a fleet rollout against Postgres: gitops apply --host-stacks rolls both host stacks (canary first), drift aggregates them and names the host; each host stack's state is a row", async () => {
    const envName = "test-pg-fleet";
    const configDir = path.join(DIR, "fleet-config");
    fs.mkdirSync(configDir, { recursive: true });
    fs.writeFileSync(
      path.join(configDir, `Pulumi.${envName}.yaml`),
      [
        "config:",
        "  hostnet:inventory: lab",
        "  hostnet:bridges:",
        "    - name: br-pgf",
        "  hostnet:vms:",
        ...hosts.map(
          (h, i) =>
            `    - {name: pgf${i + 1}, host: ${h.name}, attachment: bridged, bridge: br-pgf, filter: none, managedFdb: true, simulate: true, ` +
            `mac: "02:00:00:3f:00:0${i + 1}", ipv4: [198.19.71.${i + 1}/24]}`,
        ),
        "  hostnet:rollout:",
        "    serial: [1, 1]",
        "    maxFailures: 0",
        "    healthCheck: true",
        "",
      ].join("\n"),
    );
    const fleetEnv = { ...env, HOSTNET_CONFIG_DIR: configDir };
    const gitops = (mode: string) =>
      node("scripts/gitops.js", [mode, envName, "--host-stacks"], fleetEnv);
    try {
      const apply = await gitops("apply");
      expect(apply.code, apply.out).to.equal(0);
      expect(apply.out).to.match(
        new RegExp(`^fleet up ${envName}: lab1\\s+healthy`, "m"),
      );
      expect(apply.out).to.include("no drift on any host");
      sshRun(
        hosts[1],
        "bridge fdb del 02:00:00:3f:00:02 dev tap-pgf2 master static",
      );
      const drift = await gitops("drift");
      expect(drift.code, drift.out).to.equal(3);
      expect(drift.out).to.match(
        /DRIFT lab2 FdbEntry lab2-pgf2-fdb: missing on the host/,
      );
      const keys = await sql(
        `SELECT key FROM pulumi_state WHERE key LIKE '%/stacks/${PROJECT_NAME}/${envName}.%.json' ORDER BY key`,
      );
      expect(keys.map((k) => k.split("/").pop())).to.deep.equal(
        hosts.map((h) => `${envName}.${h.name}.json`),
      );
    } finally {
      const d = await node("scripts/fleet.js", ["destroy", envName], fleetEnv);
      expect(d.code, d.out).to.equal(0);
      fs.rmSync(configDir, { recursive: true, force: true });
    }
    for (const h of hosts)
      expect(sshRun(h, "ip -o link show br-pgf 2>&1 || true")).to.include(
        "does not exist",
      );
  });

  /** A query against the cluster, through psql. */
  function sql(query: string): Promise<string[]> {
    return new Promise((resolve, reject) =>
      execFile(
        path.join(findPgBin()!, "psql"),
        [url, "-tAc", query],
        (err, stdout, stderr) =>
          err
            ? reject(new Error(stderr))
            : resolve(stdout.split("\n").filter(Boolean)),
      ),
    );
  }
});
