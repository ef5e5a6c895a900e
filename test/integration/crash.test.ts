// Crash safety with per-step checkpoints off (hostnet's runner default, scripts/engine.ts): SIGKILL
// the engine, or the dynamic provider, in the middle of an `up` of an isolated-netns + managed-fdb
// host, and in the middle of a `destroy`. The state then says less than the host holds; a plain
// `up --refresh` (or `destroy`) must converge without "already exists", the host must end exactly
// as a clean run leaves it (full state: links, flags, masters, aliases, addresses, routes,
// neighbours, fdb, nft rulesets, namespace sysctls), and `preview --refresh --expect-no-changes`
// must be clean. Each engine run is a child process (test/support/crashRunner.ts) so it can be killed.
// HOSTNET_CRASH_VMS sets the VM count (default 30 in `npm test` to keep CI short; 100 passes too:
// HOSTNET_CRASH_VMS=100 npx mocha --require dist/test/support/hooks.js dist/test/integration/crash.test.js).
import { expect } from "chai";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_NAME, STATE_DIR } from "../../scripts/engine";
import { CRASH_BRIDGE, CRASH_NS_PREFIX } from "../support/crashRunner";
import { stackMayExist } from "../support/harness";
import { fullHostState } from "../support/hostState";
import { LabHost, labUp, ROOT, sshRun } from "../support/lab";

const STACK = "test-crash";
const VMS = Number(process.env.HOSTNET_CRASH_VMS ?? 30);
const HOST_INDEX = 1;
const RUNNER = path.join(ROOT, "dist", "test", "support", "crashRunner.js");

interface RunResult {
  ok: boolean;
  ops: Record<string, number>;
  error?: string;
  output: string;
}

function start(op: string): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(
    process.execPath,
    [RUNNER, op, STACK, String(VMS), String(HOST_INDEX)],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const done = new Promise<RunResult>((resolve) =>
    child.on("exit", () => {
      const line = output.split("\n").find((l) => l.startsWith("@@result "));
      const r = line
        ? JSON.parse(line.slice(9))
        : { ok: false, ops: {}, error: "the runner printed no result" };
      resolve({ ...r, output });
    }),
  );
  return { child, done };
}

async function run(op: string): Promise<RunResult> {
  return start(op).done;
}

/** Children of a process, from /proc. */
function childrenOf(pid: number): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(
          stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1],
        );
        return ppid === pid ? [Number(d)] : [];
      } catch {
        return [];
      }
    });
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** The engine (`pulumi`, a child of the runner) or the dynamic provider (a child of the engine). */
function victim(
  runner: number,
  target: "engine" | "provider",
): number | undefined {
  const engine = childrenOf(runner).find((p) =>
    /(^|\/)pulumi /.test(cmdline(p)),
  );
  if (engine === undefined || target === "engine") return engine;
  return childrenOf(engine).find((p) =>
    cmdline(p).includes("dynamic-provider"),
  );
}

/** The lock files of the test stack in the file backend. */
function stackLocks(): string[] {
  const dir = path.join(
    STATE_DIR,
    ".pulumi",
    "locks",
    "organization",
    PROJECT_NAME,
    STACK,
  );
  return fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => f.endsWith(".json"))
    : [];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VM namespaces and VM ports on the host bridge that exist now. */
function progress(h: LabHost): { ns: number; ports: number } {
  const out = sshRun(
    h,
    `echo $(ip netns list | grep -c '^${CRASH_NS_PREFIX}'; ip -o link show | grep -c ': hv-c')`,
  );
  const [ns, ports] = out.trim().split(/\s+/).map(Number);
  return { ns, ports };
}

/**
 * Start `op`, SIGKILL the target once `when` holds on the host, and wait for the runner to end.
 * Returns what the host held at the kill; fails the test when the run ended before the kill.
 */
async function killedRun(
  h: LabHost,
  op: string,
  target: "engine" | "provider",
  when: (p: { ns: number; ports: number }) => boolean,
) {
  const { child, done } = start(op);
  let ended = false;
  void done.then(() => (ended = true));
  for (;;) {
    if (ended)
      throw new Error(
        `the ${op} ended before it could be killed:\n${(await done).output.slice(-3000)}`,
      );
    const p = progress(h);
    const pid = when(p) ? victim(child.pid!, target) : undefined;
    if (pid !== undefined) {
      process.kill(pid, "SIGKILL");
      const r = await done;
      expect(r.ok, `the killed ${op} reported success`).to.equal(false);
      // A dead engine leaves its lock in the DIY backend; hostnet's runners remove a lock whose
      // process is gone (scripts/staleLock.ts), so the operator's next step is a plain run.
      if (target === "engine")
        expect(stackLocks(), "the killed engine's lock").to.have.length(1);
      return p;
    }
    await sleep(300);
  }
}

function expectConverged(r: RunResult, what: string): void {
  expect(
    r.ok,
    `${what} failed:\n${r.error ?? ""}\n${r.output.slice(-4000)}`,
  ).to.equal(true);
  expect(r.output).to.not.match(/already exists/i);
}

describe(`crash safety: engine or provider SIGKILLed mid-run, ${VMS} VMs on one host (checkpoints off)`, function () {
  this.timeout(3_600_000);
  let h: LabHost;
  let initial: Record<string, unknown>;
  let recovered: Record<string, unknown>;

  before(async () => {
    h = labUp(HOST_INDEX + 1).hosts[HOST_INDEX];
    if (stackMayExist((s) => s === STACK))
      expect((await run("rm")).ok, "removing a leftover test stack").to.equal(
        true,
      );
    // An interrupted earlier run of this test may have left objects no state knows.
    sshRun(
      h,
      `for n in $(ip netns list | cut -d' ' -f1 | grep '^${CRASH_NS_PREFIX}'); do ip netns del $n; done; ip link del ${CRASH_BRIDGE} 2>/dev/null; ip neigh flush nud permanent; true`,
    );
    initial = fullHostState(h);
    expect(
      Object.keys(initial).filter((n) => n.startsWith(CRASH_NS_PREFIX)),
    ).to.deep.equal([]);
  });

  after(async () => {
    await run("rm");
  });

  it("an up whose engine is killed is finished by a plain up --refresh, and preview --refresh is clean", async () => {
    const at = await killedRun(
      h,
      "up",
      "engine",
      (p) => p.ports >= Math.ceil(VMS / 4),
    );
    console.log(
      `      engine killed with ${at.ns} namespaces and ${at.ports} host-bridge ports on the host`,
    );
    expect(at.ports).to.be.lessThan(VMS + 1);
    const rerun = await run("up-refresh");
    expectConverged(rerun, "up --refresh after the kill");
    expect(rerun.output).to.match(
      /removed the lock of stack \S+ left by a run that died/,
    );
    expect(stackLocks(), "locks after the rerun").to.deep.equal([]);
    recovered = fullHostState(h);
    expectConverged(
      await run("preview-clean"),
      "preview --refresh --expect-no-changes",
    );
  });

  it("a destroy whose engine is killed is finished by a plain destroy: the host is as before the test", async () => {
    const at = await killedRun(
      h,
      "destroy",
      "engine",
      (p) => p.ports <= Math.floor(VMS / 2),
    );
    console.log(
      `      engine killed with ${at.ns} namespaces and ${at.ports} host-bridge ports left`,
    );
    expectConverged(await run("destroy"), "destroy after the kill");
    expect(fullHostState(h)).to.deep.equal(initial);
  });

  it("a clean up from empty makes exactly the host state the killed-and-rerun up made", async () => {
    expectConverged(await run("up"), "clean up");
    expect(fullHostState(h)).to.deep.equal(recovered);
    expectConverged(await run("destroy"), "destroy");
    expect(fullHostState(h)).to.deep.equal(initial);
  });

  it("an up whose provider is killed is finished by a plain up --refresh, equal to the clean run, preview clean", async () => {
    const at = await killedRun(
      h,
      "up",
      "provider",
      (p) => p.ports >= Math.ceil(VMS / 4),
    );
    console.log(
      `      provider killed with ${at.ns} namespaces and ${at.ports} host-bridge ports on the host`,
    );
    expectConverged(await run("up-refresh"), "up --refresh after the kill");
    expect(fullHostState(h)).to.deep.equal(recovered);
    expectConverged(
      await run("preview-clean"),
      "preview --refresh --expect-no-changes",
    );
    expectConverged(await run("destroy"), "destroy");
    expect(fullHostState(h)).to.deep.equal(initial);
  });
});
