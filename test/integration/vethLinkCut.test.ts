// Issue 12, class 1, second line of defence: a VethLink step that may cut the management path is
// applied under commit-confirm, and one that really cuts it is reverted by the host itself.
//
// The engine's preview already refuses a route that captures the SSH peer whenever it can read
// the management path (safety.test), so no stack can send this route through `pulumi up`. The
// provider's own code is driven here instead (the kind's create and update, in this process),
// against a real lab host over real SSH: what would happen when the preview could not judge the
// path (it could not be read, or it changed between preview and up). The host is compared with
// a full snapshot before and after (test/support/harness.ts).
import { expect } from "chai";
import { Host, hostFor, managementPathOf } from "../../providers/host";
import { VethLinkProps, vethLinkKind } from "../../providers/kinds/vethLink";
import { closeAllSessions } from "../../providers/transport";
import { fullSnapshot, snapshotDiff } from "../support/harness";
import { labConnection, LabHost, labUp, sshRun } from "../support/lab";

const A = "ccv0";
const B = "ccv1";
const OWNER = "0123abcd-00000000c1";
/** The commit-confirm directory of the pair (guard.ts names it after the anchor end). */
const STATE = `/run/hostnet/safe-apply/vethlink-${A}`;

function cleanup(h: LabHost): void {
  sshRun(h, `ip link del ${A} 2>/dev/null; rm -rf ${STATE}; true`, {
    allowFail: true,
  });
}

/** What changed on the host besides commit-confirm's own record of the change (its logs). */
function changes(
  before: Record<string, any>,
  after: Record<string, any>,
): string[] {
  return snapshotDiff(before, after).filter(
    (l) =>
      !/^@host\/files: [+-] /.test(l) || !l.slice(15).startsWith(`${STATE}/`),
  );
}

const pair = (routes: Array<{ to: string }>) =>
  VethLinkProps.parse({ a: { name: A, routes }, b: { name: B } });

describe("VethLink under commit-confirm: a route that cuts SSH reverts by itself", function () {
  this.timeout(300_000);
  let h: LabHost;
  let host: Host;
  let peer: string;

  before(async () => {
    h = labUp(3).hosts[2];
    cleanup(h);
    host = hostFor(labConnection(h));
    const mp = await managementPathOf(host);
    if (!mp) throw new Error(`${h.name}: the management path cannot be read`);
    peer = mp.peer;
  });

  after(() => {
    if (h) cleanup(h);
    closeAllSessions();
  });

  it("a create whose route captures the SSH peer: cut, reverted by the host, pair removed, host unchanged", async () => {
    const before = fullSnapshot(h);
    const err = await vethLinkKind
      .create({ host, owner: OWNER }, pair([{ to: `${peer}/32` }]))
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(err, "the create must fail").to.be.instanceOf(Error);
    expect(err!.message).to.match(/the change cut SSH to /);
    expect(err!.message).to.match(/reverted .* by itself/);
    expect(err!.message).to.include(`route replace ${peer}/32 dev ${A}`);
    expect(err!.message).to.include("Nothing is recorded as applied");
    expect(sshRun(h, `cat ${STATE}/decided/by`).trim()).to.equal("timer");
    expect(changes(before, fullSnapshot(h))).to.deep.equal([]);
  });

  it("an update that adds the route to a live pair: reverted, the pair exactly as before", async () => {
    cleanup(h);
    const plain = pair([]);
    await vethLinkKind.create({ host, owner: OWNER }, plain);
    const before = fullSnapshot(h);
    const err = await vethLinkKind
      .update({ host, owner: OWNER }, plain, pair([{ to: `${peer}/32` }]))
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(err, "the update must fail").to.be.instanceOf(Error);
    expect(err!.message).to.match(/the change cut SSH to .*reverted/s);
    expect(changes(before, fullSnapshot(h))).to.deep.equal([]);
  });

  it("a route near the path that does not cut it is confirmed and kept", async () => {
    // Covers the peer, but less specifically than the route the host uses for it.
    const wide = `${peer.split(".").slice(0, 2).join(".")}.0.0/16`;
    const before = fullSnapshot(h);
    await vethLinkKind.update(
      { host, owner: OWNER },
      pair([]),
      pair([{ to: wide }]),
    );
    expect(sshRun(h, `cat ${STATE}/decided/by`).trim()).to.equal("confirmed");
    const diff = changes(before, fullSnapshot(h));
    expect(diff).to.have.length(1);
    expect(diff[0]).to.satisfy((l: string) =>
      l.startsWith(`(root)/routes: + unicast ${wide} dev ${A} `),
    );
    await vethLinkKind.delete({ host, owner: OWNER }, pair([{ to: wide }]));
  });
});
