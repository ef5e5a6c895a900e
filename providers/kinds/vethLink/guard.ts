// Commit-confirm for VethLink steps that may cut the management path (issue 12, class 1).
//
// What can never be right (an address equal to the SSH peer, a gateway or a management address;
// a root-namespace route or prefix that would win the lookup for the peer) is refused at preview
// (host/managementPath.ts). What gets past that check and still touches the routing of the host's
// root namespace near the management path is applied under commit-confirm (host/safeApply.ts):
// the host arms a timer that runs the step's undo unless hostnet confirms over a NEW SSH session.
// Such a step is one that adds or removes, in the root namespace,
//   - a route or address whose prefix covers the SSH peer or a gateway towards it, at any length
//     (the preview check judged the table it read then; a removal can take the path away too),
//   - anything on the management interface itself,
//   - any route or address at all when the management path could not be read.
// Every other step (a VM's /32 route, an address in a VM namespace) is applied as usual.
import {
  commitConfirm,
  ipBatchLine,
  ManagementPath,
  managementPathOf,
  managementTouch,
  marksOf,
} from "../../host";
import type { HostOp } from "../../host";
import type { KindContext } from "../kind";
import type { Step } from "../plan";

/** How long the host waits for hostnet's confirmation before it reverts the step by itself. */
export const CONFIRM_TIMEOUT_SECONDS = 15;

/** The host's own wait (its connection's confirmTimeoutSeconds, set per host in stack config), or the default. */
export function confirmTimeoutOf(conn: {
  confirmTimeoutSeconds?: number;
}): number {
  return conn.confirmTimeoutSeconds ?? CONFIRM_TIMEOUT_SECONDS;
}

type IpBatch = Extract<HostOp, { kind: "batch" }>;

/** The route and address lines of a root-namespace `ip -batch` step, as tokens. */
function routingLines(step: Step): string[][] {
  const op = step.op;
  if (op.kind !== "batch" || op.tool !== "ip" || op.netns !== undefined)
    return [];
  return op.lines
    .map((l) => l.split(" ")) // batchLine joins validated tokens with single spaces
    .filter((t) => t[0] === "route" || t[0] === "addr");
}

/** Whether a step may cut the management path `mp` (undefined: the path could not be read). */
export function mayCut(step: Step, mp: ManagementPath | undefined): boolean {
  const lines = routingLines(step);
  if (lines.length === 0) return false;
  if (mp === undefined) return true;
  const marks = marksOf(mp);
  // Any token naming the management interface, or the line's prefix containing a mark.
  return lines.some(
    (t) =>
      managementTouch(marks, { devs: t, prefixes: [t[2]] }, "prefix") !==
      undefined,
  );
}

/** A commit-confirm directory name from a pair's anchor: [A-Za-z0-9_.@-] only. */
function changeId(anchor: string): string {
  return `vethlink-${anchor.replace(/[^A-Za-z0-9_.@-]/g, "_")}`;
}

const tokensOf = (op: IpBatch): string[][] => op.lines.map((l) => l.split(" "));

/**
 * Apply steps in order; each that may cut the management path (and has an undo) goes through
 * commit-confirm, every other one through the host's queue. The management path is read only
 * when a root-namespace routing step comes up (one read per host and provider process).
 */
export async function applyGuarded(
  ctx: KindContext,
  steps: readonly Step[],
  anchor: string,
): Promise<void> {
  let mp: Promise<ManagementPath | undefined> | undefined;
  for (const s of steps) {
    if (s.undo?.kind === "batch" && routingLines(s).length > 0) {
      mp ??= managementPathOf(ctx.host).catch(() => undefined);
      if (mayCut(s, await mp)) {
        const [op, undo] = [s.op as IpBatch, s.undo];
        await commitConfirm(ctx.host, {
          id: changeId(anchor),
          what: `${op.what} (${op.lines.join("; ")})`,
          apply: [ipBatchLine(op.netns, tokensOf(op))],
          revert: [ipBatchLine(undo.netns, tokensOf(undo), { force: true })],
          confirmTimeoutSeconds: confirmTimeoutOf(ctx.host.session.conn),
        });
        continue;
      }
    }
    await ctx.host.run(s.op);
  }
}
