// VmNetns lifecycle with the real engine on lab3: a namespace is created with its loopback marked
// and its sysctls set, drift of a sysctl is reported and repaired, a namespace made by hand is
// refused with the adopt message and adopted when asked, a namespace that still holds interfaces
// hostnet does not own is not deleted unless forced, and destroy leaves the host as the full
// snapshot before it. Every step is checked through a separate OpenSSH session.
import { expect } from "chai";
import { VmNetns } from "../../providers/kinds/vmNetns";
import {
  failureOf,
  fullSnapshot,
  snapshotDiff,
  StepReport,
  TestStack,
} from "../support/harness";
import { labConnection, LabHost, labUp, sshJson, sshRun } from "../support/lab";

const NS = "vnns1";
const HAND = "vnhand1";
const STRANGER = "vnx0";
const STRANGER_PEER = "vnx1";

interface Ns {
  res: string;
  name: string;
  sysctls?: Record<string, string>;
  loopbackUp?: boolean;
  force?: boolean;
  adopt?: boolean;
}

/** Property `key` of `res` reported as changed (updates may carry no metadata diffs). */
function changed(pv: StepReport, res: string, key: string): boolean {
  return (
    (pv.diffs[res] ?? []).some((d) => d === key || d.startsWith(`${key}.`)) ||
    new RegExp(`^\\s*[-+~]+ ${key}\\s*:`, "m").test(pv.stdout)
  );
}

describe("VmNetns: namespace lifecycle on a lab host", function () {
  this.timeout(600_000);
  let h: LabHost;
  let stack: TestStack<{ spaces: Ns[] }>;
  let baseline: Record<string, any>;

  const namespaces = (): string[] =>
    sshRun(h, "ip netns list")
      .split("\n")
      .map((l) => l.split(" ")[0])
      .filter(Boolean);
  const sysctl = (ns: string, key: string): string =>
    sshRun(h, `ip netns exec ${ns} sysctl -n ${key}`).trim();
  const loopback = (ns: string): any =>
    sshJson(h, `ip -n ${ns} -j link show lo`)[0];
  const sysctls = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "2",
    "net.ipv6.conf.all.disable_ipv6": "1",
  };
  const base: Ns = { res: "n", name: NS, sysctls };

  before(async () => {
    h = labUp(3).hosts[1];
    stack = new TestStack<{ spaces: Ns[] }>(
      "test-vmnetns",
      { spaces: [] },
      async (cfg) => {
        const out: Record<string, unknown> = {};
        for (const s of cfg.spaces) {
          const { res, ...args } = s;
          const r = new VmNetns(res, { connection: labConnection(h), ...args });
          out[res] = { id: r.id, created: r.created };
        }
        return out;
      },
    );
    await stack.destroy().catch(() => undefined); // leftovers of an interrupted run
    sshRun(h, `ip netns del ${NS}; ip netns del ${HAND}`, { allowFail: true });
    baseline = fullSnapshot(h);
  });

  after(async () => {
    await stack?.dispose();
    sshRun(h, `ip netns del ${NS}; ip netns del ${HAND}`, { allowFail: true });
  });

  it("up creates the namespace: loopback up and marked, every sysctl set", async () => {
    stack.config = { spaces: [base] };
    const up = await stack.up();
    expect(up.ops.n).to.equal("create");
    expect((up.outputs.n as any).id).to.equal(`netns/${NS}`);
    expect((up.outputs.n as any).created).to.equal(true);
    expect(namespaces()).to.include(NS);
    const lo = loopback(NS);
    expect(lo.flags).to.include("UP");
    expect(lo.ifalias).to.match(/^hostnet:[0-9a-f]{8}-[0-9a-f]{10}$/);
    for (const [k, v] of Object.entries(sysctls))
      expect(sysctl(NS, k), k).to.equal(v);
    expect((await stack.preview({ refresh: true })).ops.n).to.equal("same");
  });

  it("a sysctl changed by hand: preview --refresh reports it, up --refresh sets it back", async () => {
    sshRun(h, `ip netns exec ${NS} sysctl -q -w net.ipv4.ip_forward=0`);
    const pv = await stack.preview({ refresh: true });
    expect(pv.ops.n).to.equal("update");
    expect(changed(pv, "n", "sysctls")).to.equal(true);
    const up = await stack.up({ refresh: true });
    expect(up.ops.n).to.equal("update");
    expect(sysctl(NS, "net.ipv4.ip_forward")).to.equal("1");
    expect(sysctl(NS, "net.ipv4.conf.all.rp_filter")).to.equal("2");
    expect((await stack.preview({ refresh: true })).ops.n).to.equal("same");
  });

  it("a namespace made by hand is refused with the adopt message and left alone; adopt records it untouched", async () => {
    sshRun(h, `ip netns add ${HAND}`);
    const untouched = () => fullSnapshot(h)[HAND];
    const before = untouched();
    const hand: Ns = { res: "a", name: HAND, loopbackUp: false };
    stack.config = { spaces: [base, hand] };
    const err = await failureOf(stack.up());
    expect(err)
      .to.match(new RegExp(`netns ${HAND} already exists`))
      .and.match(/Nothing was changed/)
      .and.match(/adopt: true/);
    expect(untouched()).to.deep.equal(before);
    stack.config = { spaces: [base, { ...hand, adopt: true }] };
    const up = await stack.up();
    expect(up.ops.a).to.equal("create");
    expect((up.outputs.a as any).created).to.equal(false);
    expect(untouched()).to.deep.equal(before);
    expect((await stack.preview({ refresh: true })).ops.a).to.equal("same");
  });

  it("delete refuses while the namespace holds an interface hostnet did not make, and changes nothing", async () => {
    // A veth pair made by hand inside the namespace (the lab kernel has no dummy module).
    sshRun(
      h,
      `ip -n ${NS} link add ${STRANGER} type veth peer name ${STRANGER_PEER}`,
    );
    const before = fullSnapshot(h);
    stack.config = { spaces: stack.config.spaces.filter((s) => s.res !== "n") };
    const err = await failureOf(stack.up());
    expect(err)
      .to.match(new RegExp(`netns ${NS} still holds interfaces`))
      .and.match(
        new RegExp(
          `\\((${STRANGER}, ${STRANGER_PEER}|${STRANGER_PEER}, ${STRANGER})\\)`,
        ),
      )
      .and.match(/Nothing was changed/)
      .and.match(/force: true/);
    expect(snapshotDiff(before, fullSnapshot(h))).to.deep.equal([]);
  });

  it("force: true set on the existing resource lets delete take the namespace with the stranger", async () => {
    stack.config = {
      spaces: [
        { ...base, force: true },
        ...stack.config.spaces.filter((s) => s.res !== "n"),
      ],
    };
    const up = await stack.up();
    expect(up.ops.n).to.equal("update");
    expect(namespaces()).to.include(NS);
    stack.config = { spaces: stack.config.spaces.filter((s) => s.res !== "n") };
    expect((await stack.up()).ops.n).to.equal("delete");
    expect(namespaces()).to.not.include(NS);
  });

  it("destroy leaves the adopted namespace; without it the host is as the full snapshot before", async () => {
    stack.config = {
      spaces: [base, ...stack.config.spaces.filter((s) => s.res !== "n")],
    };
    await stack.up();
    expect(namespaces()).to.include(NS);
    await stack.destroy();
    const left = namespaces();
    expect(left).to.not.include(NS);
    expect(left).to.include(HAND);
    sshRun(h, `ip netns del ${HAND}`);
    expect(snapshotDiff(baseline, fullSnapshot(h))).to.deep.equal([]);
  });

  const invalid: Array<[string, Partial<Ns>, RegExp]> = [
    [
      "a sysctl hostnet does not manage",
      { sysctls: { "net.core.somaxconn": "1" } },
      /sysctls\["net\.core\.somaxconn"\]: hostnet manages these namespace sysctls: net\.ipv4\.ip_forward/,
    ],
    ['name ".."', { name: ".." }, /name: netns name must not be/],
    ["name with a slash", { name: "a/b" }, /name: netns name may contain only/],
  ];
  for (const [what, bad, message] of invalid) {
    it(`invalid input fails at preview naming the field: ${what}`, async () => {
      const before = fullSnapshot(h);
      stack.config = { spaces: [{ ...base, ...bad }] };
      expect(await failureOf(stack.preview())).to.match(message);
      expect(snapshotDiff(before, fullSnapshot(h))).to.deep.equal([]);
    });
  }
});
