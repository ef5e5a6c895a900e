// Idempotent creates, kind by kind, with the real engine on a lab host. A run that dies before the
// state is written leaves objects the next `up` does not know: we make them with a full `up`, then
// forget the stack (`pulumi stack rm --force` keeps the host as it is). The next `up` of a stack with
// the same name must adopt every object with no error and converge the ones changed meanwhile.
// Objects carrying another resource's mark, or none, must still be refused with the adopt message
// and leave the host unchanged. Covers VmNetns, HostBridge, VethLink, TapPort, MacvlanPort,
// FilterChain and FdbEntry (HostTopology with an isolated-netns + managed-fdb VM and a macvlan VM).
import { expect } from "chai";
import { HostTopology } from "../../components/hostTopology";
import { BridgeSpec, VmSpec } from "../../components/spec";
import { ownerToken } from "../../providers/state";
import { create } from "../../providers/runtime";
import { closeAllSessions } from "../../providers/transport";
import { inlineStack, PROJECT_NAME } from "../../scripts/engine";
import { TestStack } from "../support/harness";
import { fullHostState } from "../support/hostState";
import {
  LabHost,
  labConnection,
  labUp,
  privateKey,
  sshRun,
} from "../support/lab";

const STACK = "test-leftover";
const OTHER = "test-leftover-b";
const VM = { isolated: "lo1", macvlan: "lo2" };
const NS = `vm-${VM.isolated}`;
const GUEST = `guest-${VM.macvlan}`;
const KINDS = [
  "VmNetns",
  "HostBridge",
  "VethLink",
  "TapPort",
  "MacvlanPort",
  "FilterChain",
  "FdbEntry",
];

function program(h: LabHost) {
  return async () => {
    new HostTopology("lo", {
      hostName: h.name,
      connection: labConnection(h),
      bridges: [BridgeSpec.parse({ name: "br-lo" })],
      simulatedNics: ["lonic0"],
      vms: [
        VmSpec.parse({
          name: VM.isolated,
          host: h.name,
          mac: "02:00:00:1e:00:01",
          ipv4: ["198.19.30.1/24"],
          attachment: "isolated-netns",
          bridge: "br-lo",
          managedFdb: true,
          arpSuppress: true,
        }),
        VmSpec.parse({
          name: VM.macvlan,
          host: h.name,
          mac: "02:00:00:1e:00:02",
          ipv4: ["198.19.30.2/24"],
          attachment: "macvlan",
          lower: "lonic0",
          simulate: true,
        }),
      ],
    });
  };
}

/** Drop a stack from the backend without touching the host: what a run killed before its first checkpoint leaves. */
async function forget(name: string): Promise<void> {
  const s = await inlineStack(name, async () => undefined);
  await s.workspace.removeStack(name, { force: true });
}

function removeByHand(h: LabHost): void {
  sshRun(
    h,
    `for n in ${NS} ${GUEST}; do ip netns del $n 2>/dev/null; done; for l in br-lo lonic0 hv-${VM.isolated}; do ip link del $l 2>/dev/null; done; true`,
  );
}

interface Recorded {
  kind: string;
  name: string;
  inputs: Record<string, unknown>;
}

/** The hostnet resources of a stack's state with their inputs, credentials made usable again. */
async function recorded(stack: TestStack<null>): Promise<Recorded[]> {
  const state = JSON.parse(await stack.exportState());
  return (state.deployment.resources ?? []).flatMap((r: any) => {
    const kind = String(r.type).split(":").pop()!;
    if (!KINDS.includes(kind)) return [];
    const name = String(r.urn).split("::").pop()!;
    return [
      {
        kind,
        name,
        inputs: { ...r.inputs, credentials: { privateKey: privateKey() } },
      },
    ];
  });
}

/** runtime.create of every recorded resource with the given token; the error of each (or "created"). */
async function createAll(
  rs: Recorded[],
  token: (r: Recorded) => string,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const r of rs) {
    out[`${r.kind} ${r.name}`] = await create(r.kind, {
      ...r.inputs,
      ownerToken: token(r),
    }).then(
      () => "created",
      (err: Error) => err.message,
    );
  }
  return out;
}

describe("idempotent creates: a dead run's objects are adopted, anyone else's refused", function () {
  this.timeout(1_200_000);
  let h: LabHost;
  let stack: TestStack<null>;
  let made: Record<string, unknown>;
  let resources: Recorded[];

  before(async () => {
    h = labUp(1).hosts[0];
    await forget(STACK).catch(() => undefined);
    await forget(OTHER).catch(() => undefined);
    removeByHand(h);
    stack = new TestStack(STACK, null, program(h));
    const first = await stack.up();
    expect(
      Object.values(first.ops).filter((o) => o === "create").length,
    ).to.be.greaterThan(10);
    made = fullHostState(h);
    resources = await recorded(stack);
    expect([...new Set(resources.map((r) => r.kind))].sort()).to.deep.equal(
      [...KINDS].sort(),
    );
  });

  after(async () => {
    closeAllSessions();
    await forget(STACK).catch(() => undefined);
    await forget(OTHER).catch(() => undefined);
    removeByHand(h);
  });

  it("the next up of the same stack adopts every object without error and converges what drifted", async () => {
    await forget(STACK);
    // Meanwhile, things drifted: a port down, a flag, a neighbour, an address, a namespace sysctl.
    sshRun(
      h,
      [
        `ip -n ${NS} link set tap0 down`,
        `bridge link set dev hv-${VM.isolated} learning on`,
        "ip neigh del 198.19.30.1 dev br-lo",
        `ip -n ${GUEST} addr flush dev mv-${VM.macvlan}`,
        `ip netns exec ${NS} sysctl -q -w net.ipv6.conf.all.disable_ipv6=0`,
      ].join(" && "),
    );
    expect(fullHostState(h)).to.not.deep.equal(made);
    stack = new TestStack(STACK, null, program(h));
    const r = await stack.up();
    expect(r.stdout).to.not.match(/already exists/i);
    expect(new Set(Object.values(r.ops))).to.deep.equal(new Set(["create"]));
    expect(fullHostState(h)).to.deep.equal(made);
    await stack.preview({ refresh: true, expectNoChanges: true });
    // They count as made by hostnet: the state says so.
    const state = JSON.parse(await stack.exportState());
    const createdFlags = state.deployment.resources
      .filter((x: any) => KINDS.includes(String(x.type).split(":").pop() ?? ""))
      .map((x: any) => x.outputs.created);
    expect(new Set(createdFlags)).to.deep.equal(new Set([true]));
  });

  it("another stack's objects (another resource's mark) are refused with the adopt message, by the engine and by every kind", async () => {
    const other = new TestStack(OTHER, null, program(h));
    const err = await other.up().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(String(err?.message)).to.match(/set adopt: true/);
    expect(fullHostState(h)).to.deep.equal(made);
    const answers = await createAll(resources, (r) =>
      ownerToken(PROJECT_NAME, OTHER, r.kind, r.name),
    );
    for (const [what, answer] of Object.entries(answers))
      expect(answer, what).to.match(/set adopt: true/);
    closeAllSessions(); // let go of the host lock the refused creates took
    expect(fullHostState(h)).to.deep.equal(made);
  });

  it("objects without a mark are refused with the adopt message and left as they are", async () => {
    // Strip every mark: aliases of all links (and loopbacks), the comment of the filter table.
    const strip = (ns: string) =>
      `for l in $(ip -n ${ns} -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do ip -n ${ns} link set dev $l alias ''; done`;
    const table = `ip netns exec ${NS} sh -c 'nft list table bridge hostnet | grep -v "^\\s*comment \\"hostnet" > /tmp/hn-lo.nft; nft delete table bridge hostnet; nft -f /tmp/hn-lo.nft; rm -f /tmp/hn-lo.nft'`;
    sshRun(h, [strip(NS), strip(GUEST), table].join("; "));
    sshRun(
      h,
      `for l in br-lo lonic0 lonic0p hv-${VM.isolated}; do ip link set dev $l alias ''; done`,
    );
    const stripped = fullHostState(h);
    expect(JSON.stringify(stripped)).to.not.include('"alias":"hostnet');
    const answers = await createAll(resources, (r) =>
      ownerToken(PROJECT_NAME, STACK, r.kind, r.name),
    );
    for (const [what, answer] of Object.entries(answers))
      expect(answer, what).to.match(/set adopt: true/);
    expect(fullHostState(h)).to.deep.equal(stripped);
  });
});
