// Two deployments of different stacks touching the same host serialize on the host-side lock:
// while a third party holds it both wait (and say so), and their writes never interleave.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Stack } from "@pulumi/pulumi/automation";
import { inlineStack } from "../../scripts/engine";
import { VmNetns } from "../../providers/kinds/vmNetns";
import { spawn } from "child_process";
import { sshArgs, labConnection, LabHost, labUp, sshRun } from "../support/lab";
import { fullSnapshot, snapshotDiff } from "../support/harness";

/**
 * Hold the host's lock from a separate OpenSSH session for `seconds`, as another deployment would.
 * Without it, whether the second stack has to wait depends on which provider starts first.
 */
async function holdLock(h: LabHost, seconds: number): Promise<void> {
  const script = `mkdir -p /run/hostnet; exec 9>>/run/hostnet/lock; flock 9; echo "stack test-lock-holder" > /run/hostnet/lock.owner; echo held; sleep ${seconds}`;
  const ssh = spawn("ssh", [...sshArgs(h), script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    ssh.stdout.on(
      "data",
      (d: Buffer) => d.toString().includes("held") && resolve(),
    );
    ssh.on("exit", (code) =>
      reject(new Error(`lock holder exited (${code}) before taking the lock`)),
    );
  });
}

interface TraceRow {
  t: number;
  what: string;
}

function writes(file: string): TraceRow[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TraceRow)
    .filter((r) => r.what.startsWith("apply "));
}

describe("concurrent runs serialize on the host lock", function () {
  this.timeout(600_000);
  let h: LabHost;
  const stacks: Stack[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hn-lock-"));

  before(() => {
    h = labUp(3).hosts[0];
  });

  after(async () => {
    for (const s of stacks) {
      await s.destroy({ color: "never" }).catch(() => undefined);
      await s.workspace.removeStack(s.name).catch(() => undefined);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs the second stack's writes only after the first one's provider is done", async () => {
    const mk = async (tag: string) => {
      const trace = path.join(dir, `${tag}.jsonl`);
      const stack = await inlineStack(
        `test-lock-${tag}`,
        async () => {
          for (let i = 0; i < 15; i++)
            new VmNetns(`ns${i}`, {
              connection: labConnection(h),
              name: `lk${tag}-${i}`,
            });
        },
        {
          env: {
            HOSTNET_TRACE_FILE: trace,
            HOSTNET_LOCK_OWNER: `stack test-lock-${tag}`,
          },
        },
      );
      stacks.push(stack);
      let out = "";
      return {
        trace,
        run: () =>
          stack
            .up({ color: "never", parallel: 64, onOutput: (s) => (out += s) })
            .then(() => out),
      };
    };
    const a = await mk("a");
    const b = await mk("b");
    const before = fullSnapshot(h);
    await holdLock(h, 8);
    const [outA, outB] = await Promise.all([a.run(), b.run()]);
    const wa = writes(a.trace);
    const wb = writes(b.trace);
    expect(wa.length).to.be.greaterThan(0);
    expect(wb.length).to.be.greaterThan(0);
    const [first, second] = wa[0].t < wb[0].t ? [wa, wb] : [wb, wa];
    // Every write of the second run starts after the last write of the first run.
    expect(second[0].t).to.be.greaterThan(first[first.length - 1].t);
    // Who each run says it waited for: a run reports the holder it found when it first met the lock
    // taken (the outside holder, or the other stack if that got in first). The second writer must
    // have waited, for the outside holder or for the first writer, never for itself; the first
    // writer can only have waited for the outside holder (under load it may come after the holder left).
    const tagA = wa[0].t < wb[0].t ? "a" : "b";
    const tagB = tagA === "a" ? "b" : "a";
    const outs: Record<string, string> = { a: outA, b: outB };
    const waitedFor = (out: string): string[] =>
      [
        ...out.matchAll(
          /waiting for the hostnet lock, held by stack test-lock-(\w+)/g,
        ),
      ].map((m) => m[1]);
    expect(waitedFor(outs[tagB]), `the second writer (${tagB}) waited`).to.not
      .be.empty;
    expect(
      waitedFor(outs[tagB]).every((who) => who === "holder" || who === tagA),
      `${tagB} waited for: ${waitedFor(outs[tagB])}`,
    ).to.equal(true);
    expect(
      waitedFor(outs[tagA]).every((who) => who === "holder"),
      `${tagA} waited for: ${waitedFor(outs[tagA])}`,
    ).to.equal(true);
    const made = sshRun(h, "ip netns list")
      .split("\n")
      .filter((l) => /^lk[ab]-/.test(l));
    expect(made).to.have.length(30);
    // Destroy leaves the host exactly as before (full snapshot: links, addresses, routes, fdb, nft, sysctls, files, processes).
    for (const s of stacks) await s.destroy({ color: "never", parallel: 64 });
    expect(snapshotDiff(before, fullSnapshot(h))).to.deep.equal([]);
  });

  it("a provider killed while it holds the lock releases it: the next run does not wait", async () => {
    // A child process takes the lock through hostnet's own host layer, as a provider does on its
    // first write, and is then killed with SIGKILL (no cleanup of any kind runs).
    const root = path.resolve(__dirname, "..", "..", "..");
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const { hostFor } = require(${JSON.stringify(path.join(root, "dist", "providers", "host"))});
         hostFor(JSON.parse(process.env.CONN)).ensureLocked().then(
           () => console.log("LOCKED"),
           (e) => { console.error(e); process.exit(2); });
         setInterval(() => undefined, 1000);`,
      ],
      {
        env: {
          ...process.env,
          CONN: JSON.stringify(labConnection(h)),
          HOSTNET_LOCK_OWNER: "stack test-lock-crashed",
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on(
        "data",
        (d: Buffer) => d.toString().includes("LOCKED") && resolve(),
      );
      child.on("exit", (code) =>
        reject(new Error(`the lock taker exited (${code}) before locking`)),
      );
    });
    const held = sshRun(
      h,
      "flock -n /run/hostnet/lock true && echo free || echo held; cat /run/hostnet/lock.owner",
    );
    expect(held).to.match(/^held\nstack test-lock-crashed \(pid \d+/);
    const gone = new Promise((resolve) => child.on("exit", resolve));
    child.kill("SIGKILL");
    await gone;
    // The next deployment takes the lock without meeting the dead holder.
    const stack = await inlineStack(
      "test-lock-after",
      async () => {
        new VmNetns("ns", { connection: labConnection(h), name: "lkafter" });
      },
      { env: { HOSTNET_LOCK_OWNER: "stack test-lock-after" } },
    );
    stacks.push(stack);
    const before = fullSnapshot(h);
    let out = "";
    await stack.up({ color: "never", onOutput: (s) => (out += s) });
    expect(out).to.not.match(/waiting for the hostnet lock/);
    expect(sshRun(h, "cat /run/hostnet/lock.owner")).to.match(
      /^stack test-lock-after /,
    );
    await stack.destroy({ color: "never" });
    expect(snapshotDiff(before, fullSnapshot(h))).to.deep.equal([]);
  });
});
