// Safe apply (commit-confirm) with the real engine on a lab host whose SSH address sits on the
// interface being enslaved: lab4's mgmt0 (198.18.J.14/24 in lab J), used by this file alone, because a
// change here can cut SSH to the whole host. Covers: enslaving mgmt0 into a bridge (address, MAC
// and a route move with it) confirmed over a new session and NOT reverted afterwards; an update of
// that bridge, confirmed; an update that really cuts SSH (bridge set down), reverted by the host
// itself; destroy moving everything back; a create that cuts SSH, reverted by the host, with
// nothing recorded; the refusal without safeApply; invalid input. Everything is checked over
// separate OpenSSH sessions; after() repairs lab4 from the root namespace if anything is left.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as path from "path";
import { HostBridge, HostBridgeArgs } from "../../providers/kinds/hostBridge";
import { TestStack } from "../support/harness";
import {
  escapeRegExp,
  labConnection,
  LabHost,
  labUp,
  ROOT,
  sshRun,
} from "../support/lab";

type Spec = Omit<HostBridgeArgs, "connection">;
interface Cfg {
  bridges: Record<string, Spec>;
}

const T = 10; // confirmTimeoutSeconds used throughout
const ROUTE = "198.19.44.0/24"; // a static route via mgmt0 that must follow the address
// Taken from the lab inventory in before(), so the file runs in any lab (HOSTNET_LAB_ID):
let ADDR = ""; // lab4's mgmt0 address with its prefix, e.g. 198.18.0.14/24
let IP_RE = ""; // that address (without prefix) as a regular expression
let GATEWAY = ""; // the lab bridge's address in the root namespace, e.g. 198.18.0.1
let LAB_NS = ""; // lab4's network namespace, e.g. hnlab-4
const STATE = "/run/hostnet/safe-apply";

/** Puts lab4 back as lab.sh made it, from the root namespace (works even when SSH is cut). */
function repairFromRoot(): void {
  const script = [
    `for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^sabr'); do ip link del "$l"; done`,
    "ip link set mgmt0 nomaster",
    `ip addr replace ${ADDR} dev mgmt0`,
    "ip link set mgmt0 up",
    `ip route del ${ROUTE} 2>/dev/null`,
    "true",
  ].join("; ");
  execFileSync("ip", ["netns", "exec", LAB_NS, "sh", "-c", script], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** Stops commit-confirm timers this file may have left armed on lab4, and forgets their state. */
function disarm(h: LabHost): void {
  const stop = `p=$(cat "$f"); tr '\\0' ' ' </proc/"$p"/cmdline 2>/dev/null | grep -q 'hostbridge-sabr.*/timer.sh' && kill -TERM "-$p"`;
  sshRun(
    h,
    `for f in ${STATE}/hostbridge-sabr*/timer.pid; do [ -e "$f" ] && { ${stop}; }; done; rm -rf ${STATE}/hostbridge-sabr*; true`,
    { allowFail: true },
  );
}

function ipJson(h: LabHost, args: string): any[] {
  const out = sshRun(h, `ip -j ${args}`).trim();
  return out === "" ? [] : JSON.parse(out);
}

function linkOf(h: LabHost, name: string): any {
  return ipJson(h, `-d addr show dev ${name} 2>/dev/null || true`)[0];
}

function inet(link: any): string[] {
  return (link?.addr_info ?? [])
    .filter((a: any) => a.family === "inet")
    .map((a: any) => `${a.local}/${a.prefixlen}`);
}

function routeDev(h: LabHost): string | undefined {
  return ipJson(h, `route show ${ROUTE}`)[0]?.dev;
}

function sabrLinks(h: LabHost): string[] {
  return ipJson(h, "link show")
    .map((l: any) => l.ifname)
    .filter((n: string) => n.startsWith("sabr"));
}

/** The host-side commit-confirm directory of a bridge: who decided, and whether a revert ran. */
function decision(
  h: LabHost,
  bridge: string,
): { by: string; revertLog: boolean; timers: number } {
  const out = sshRun(
    h,
    `d=$(ls -d ${STATE}/hostbridge-${bridge}-* 2>/dev/null | head -1); ` +
      `echo "by=$(cat "$d/decided/by" 2>/dev/null)"; [ -e "$d/revert.log" ] && echo revertlog; ` +
      // only `sh <dir>/timer.sh` processes: this command's own text mentions timer.sh too
      `echo "timers=$(ps -eo args | awk '$1 == "sh" && $2 ~ /hostbridge-${bridge}-[^ ]*/timer[.]sh$/' | wc -l)"`,
  );
  return {
    by: /by=(\S*)/.exec(out)![1],
    revertLog: /revertlog/.test(out),
    timers: Number(/timers=(\d+)/.exec(out)![1]),
  };
}

/** mgmt0 as lab.sh made it: no master, its address, the route through it, no sabr* link, SSH fine. */
function expectPristine(h: LabHost): void {
  expect(sshRun(h, "hostname").trim(), "a new SSH session works").to.equal(
    "lab4",
  );
  const mgmt = linkOf(h, "mgmt0");
  expect(mgmt.master, "mgmt0 has no master").to.equal(undefined);
  expect(inet(mgmt)).to.deep.equal([ADDR]);
  expect(routeDev(h)).to.equal("mgmt0");
  expect(sabrLinks(h)).to.deep.equal([]);
}

async function failureOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    const e = err as {
      message?: string;
      commandResult?: { stdout?: string; stderr?: string };
    };
    return [e.message, e.commandResult?.stdout, e.commandResult?.stderr].join(
      "\n",
    );
  }
  throw new Error("expected the engine run to fail, but it succeeded");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("safe apply (commit-confirm) of a HostBridge on lab4's management interface", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<Cfg>;
  let mgmtMac = "";
  let confirmedAt = 0;

  before(async () => {
    const inv = labUp(4);
    h = inv.hosts[3];
    expect(h.name, "this file needs lab4 to itself").to.equal("lab4");
    ADDR = `${h.address}/24`;
    IP_RE = escapeRegExp(h.address);
    GATEWAY = inv.gateway;
    LAB_NS = h.netns;
    repairFromRoot();
    disarm(h);
    sshRun(
      h,
      `ip route replace ${ROUTE} via ${GATEWAY} dev mgmt0 proto static`,
    );
    mgmtMac = linkOf(h, "mgmt0").address;
    stack = new TestStack<Cfg>(
      "test-safeapply",
      { bridges: {} },
      async (cfg) => {
        const out: Record<string, unknown> = {};
        for (const [key, spec] of Object.entries(cfg.bridges)) {
          const b = new HostBridge(key, {
            connection: labConnection(h),
            ...spec,
          });
          out[key] = {
            id: b.id,
            managedUplink: b.managedUplink,
            up: b.up,
            mtu: b.mtu,
          };
        }
        return out;
      },
    );
    await stack.destroy(); // state left by an interrupted run; its objects were repaired above
  });

  after(async () => {
    await stack?.dispose();
    if (!h) return;
    disarm(h);
    repairFromRoot();
    const status = execFileSync(
      "bash",
      [path.join(ROOT, "scripts", "lab.sh"), "status"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    ).toString();
    expect(status, "lab4 is healthy at the end").to.match(
      /^lab4 .* yes\s+ok\s*$/m,
    );
  });

  it("refuses to enslave mgmt0 without safeApply, says how to do it, and changes nothing", async () => {
    stack.config.bridges = { plain: { name: "sabr2", uplink: "mgmt0" } };
    const err = await failureOf(stack.up());
    stack.config.bridges = {};
    expect(err).to.match(
      new RegExp(
        `refusing to enslave mgmt0 to bridge sabr2: mgmt0 carries ${IP_RE}`,
      ),
    );
    expect(err).to.match(/set safeApply: true to do this with commit-confirm/);
    expectPristine(h);
  });

  it("rejects a confirm timeout under 5 s at preview, naming the field", async () => {
    stack.config.bridges = {
      bad: {
        name: "sabr2",
        uplink: "mgmt0",
        safeApply: true,
        confirmTimeoutSeconds: 2,
      },
    };
    const err = await failureOf(stack.preview());
    stack.config.bridges = {};
    expect(err).to.match(
      /confirmTimeoutSeconds: confirmTimeoutSeconds must be at least 5/,
    );
  });

  it("enslaves mgmt0 into sabr0, moving its address, MAC and route, and confirms over a new session", async () => {
    stack.config.bridges = {
      br: {
        name: "sabr0",
        uplink: "mgmt0",
        safeApply: true,
        confirmTimeoutSeconds: T,
      },
    };
    const r = await stack.up();
    confirmedAt = Date.now();
    expect(r.ops.br).to.equal("create");
    expect((r.outputs.br as any).managedUplink).to.equal("mgmt0");

    expect(sshRun(h, "hostname").trim(), "a new SSH session works").to.equal(
      "lab4",
    );
    const mgmt = linkOf(h, "mgmt0");
    const br = linkOf(h, "sabr0");
    expect(mgmt.master).to.equal("sabr0");
    expect(inet(mgmt), "the address left mgmt0").to.deep.equal([]);
    expect(inet(br), "the address is on sabr0").to.deep.equal([ADDR]);
    expect(br.address, "sabr0 took mgmt0's MAC").to.equal(mgmtMac);
    // The resource's own mark, set in the step that creates the bridge (a dead run's bridge is adopted).
    expect(br.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
    expect(routeDev(h), "the static route follows the address").to.equal(
      "sabr0",
    );
    expect(decision(h, "sabr0").by).to.equal("confirmed");
  });

  it("is not reverted once the confirm timeout has passed", async () => {
    await sleep(Math.max(0, confirmedAt + (T + 3) * 1000 - Date.now()));
    expect(linkOf(h, "mgmt0").master).to.equal("sabr0");
    expect(inet(linkOf(h, "sabr0"))).to.deep.equal([ADDR]);
    const d = decision(h, "sabr0");
    expect(d).to.deep.equal({ by: "confirmed", revertLog: false, timers: 0 });
  });

  it("a refreshed preview reports no drift; a changed confirm timeout alone is an update (delete sees only what was recorded)", async () => {
    await stack.preview({ refresh: true, expectNoChanges: true });
    stack.config.bridges.br = {
      ...stack.config.bridges.br,
      confirmTimeoutSeconds: T + 5,
    };
    const p = await stack.preview();
    stack.config.bridges.br = {
      ...stack.config.bridges.br,
      confirmTimeoutSeconds: T,
    };
    expect(p.ops.br).to.equal("update");
  });

  it("commit-confirms an update of the bridge that now carries the management path (mtu)", async () => {
    disarm(h); // forget the create's decision, so this one is seen to be made anew
    stack.config.bridges.br = { ...stack.config.bridges.br, mtu: 1400 };
    const r = await stack.up();
    expect(r.ops.br).to.equal("update");
    expect(linkOf(h, "sabr0").mtu).to.equal(1400);
    expect(decision(h, "sabr0").by).to.equal("confirmed");
  });

  it("an update that really cuts SSH (bridge down) fails, the host reverts it by itself, and the state keeps the old bridge", async () => {
    stack.config.bridges.br = { ...stack.config.bridges.br, up: false };
    const began = Date.now();
    const err = await failureOf(stack.up());
    const took = (Date.now() - began) / 1000;
    stack.config.bridges.br = { ...stack.config.bridges.br, up: true };

    expect(err).to.match(new RegExp(`the change cut SSH to ${IP_RE}`));
    expect(err).to.match(/reverted update bridge sabr0.* by itself at about/);
    expect(err).to.match(/Nothing is recorded as applied/);
    // A lower bound only: it shows the revert waited for the timer; how much longer a loaded machine takes is not behaviour.
    expect(
      took,
      "fails no earlier than T seconds after the apply",
    ).to.be.at.least(T);

    expect(sshRun(h, "hostname").trim()).to.equal("lab4");
    const br = linkOf(h, "sabr0");
    expect(br.flags, "sabr0 is up again").to.include("UP");
    expect(inet(br)).to.deep.equal([ADDR]);
    expect(
      routeDev(h),
      "the route the kernel flushed with the bridge going down is back",
    ).to.equal("sabr0");
    expect(linkOf(h, "mgmt0").master).to.equal("sabr0");
    expect(decision(h, "sabr0")).to.include({ by: "timer", revertLog: true });
    const state = JSON.parse(await stack.exportState());
    const rec = state.deployment.resources.find((x: any) =>
      x.urn.endsWith("::br"),
    );
    expect(rec.outputs.up, "the state still says up").to.equal(true);
    await stack.preview({ refresh: true, expectNoChanges: true });
  });

  it("an update that drops the uplink moves the address back onto mgmt0, and one that sets it again moves it onto sabr0", async () => {
    disarm(h);
    const { uplink: _dropped, ...withoutUplink } = stack.config.bridges.br;
    stack.config.bridges.br = withoutUplink;
    let r = await stack.up();
    expect(r.ops.br).to.equal("update");
    expect((r.outputs.br as any).managedUplink).to.equal(undefined);
    expect(sshRun(h, "hostname").trim()).to.equal("lab4");
    expect(linkOf(h, "mgmt0").master).to.equal(undefined);
    expect(inet(linkOf(h, "mgmt0"))).to.deep.equal([ADDR]);
    expect(inet(linkOf(h, "sabr0"))).to.deep.equal([]);
    expect(routeDev(h)).to.equal("mgmt0");
    expect(decision(h, "sabr0").by).to.equal("confirmed");

    disarm(h);
    stack.config.bridges.br = { ...withoutUplink, uplink: "mgmt0" };
    r = await stack.up();
    expect(r.ops.br).to.equal("update");
    expect((r.outputs.br as any).managedUplink).to.equal("mgmt0");
    expect(linkOf(h, "mgmt0").master).to.equal("sabr0");
    expect(inet(linkOf(h, "sabr0"))).to.deep.equal([ADDR]);
    expect(routeDev(h)).to.equal("sabr0");
    expect(decision(h, "sabr0").by).to.equal("confirmed");
  });

  it("destroy moves the address and route back onto mgmt0 and deletes sabr0, commit-confirmed", async () => {
    disarm(h);
    await stack.destroy();
    expectPristine(h);
    expect(linkOf(h, "mgmt0").address).to.equal(mgmtMac);
    expect(decision(h, "sabr0").by).to.equal("confirmed");
  });

  it("a create that cuts SSH fails with the host reverting by itself, and nothing is recorded", async () => {
    // A bridge left down takes the address off the wire: a real operator mistake, not a test hook.
    stack.config.bridges = {
      cut: {
        name: "sabr1",
        uplink: "mgmt0",
        safeApply: true,
        up: false,
        confirmTimeoutSeconds: T,
      },
    };
    const began = Date.now();
    const err = await failureOf(stack.up());
    const took = (Date.now() - began) / 1000;
    stack.config.bridges = {};

    expect(err).to.match(
      new RegExp(
        `the change cut SSH to ${IP_RE}: no new SSH session could be made within 10 s`,
      ),
    );
    expect(err).to.match(
      new RegExp(
        `The host reverted create bridge sabr1, enslave mgmt0 and move ${IP_RE}/24 and 1 route\\(s\\) onto sabr1 .* by itself at about`,
      ),
    );
    expect(err).to.match(/Nothing is recorded as applied/);
    // A lower bound only: it shows the revert waited for the timer; how much longer a loaded machine takes is not behaviour.
    expect(
      took,
      "fails no earlier than T seconds after the apply",
    ).to.be.at.least(T);

    expectPristine(h);
    expect(decision(h, "sabr1")).to.include({ by: "timer", revertLog: true });
    const state = JSON.parse(await stack.exportState());
    const bridges = (state.deployment.resources ?? []).filter((x: any) =>
      /::(cut|br)$/.test(x.urn),
    );
    expect(bridges, "no HostBridge is recorded").to.deep.equal([]);
  });
});
