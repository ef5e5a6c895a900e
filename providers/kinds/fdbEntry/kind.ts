// FdbEntry: one static forwarding-database entry on a bridge (seed 002). Together with
// learning=off and flood=off on the VM ports this is libvirt's macTableManager='libvirt': the
// bridge knows every VM's MAC up front instead of learning it, so unknown unicast is never flooded.
// Every write is "read the scoped snapshot → observe → plan → apply" (plan.ts).
import type { HostSnapshot } from "../../state";
import { ABSENT, Finding, isGone, judgeMark } from "../../state";
import type { HostOp } from "../../host";
import { applySteps, Step } from "../plan";
import { KindContext, ResourceKind } from "../kind";
import { FdbEntryProps, where } from "./schema";
import {
  fdbEntryPlanner as planner,
  FdbObserved,
  liveProps,
  removal,
} from "./plan";

type P = FdbEntryProps;

/** The scoped snapshot; throws rather than calling an unreadable table empty. */
async function snapshotOf(ctx: KindContext, p: P): Promise<HostSnapshot> {
  const snap = await ctx.host.snapshot(planner.scope(p));
  const failed = snap.namespaces[p.netns ?? ""]?.failedSections ?? [];
  if (failed.includes("fdb") || failed.includes("links")) {
    throw new Error(
      `${ctx.host.label}: could not read the forwarding database for ${where(p)}; nothing was changed. Check that iproute2's bridge tool works there and retry.`,
    );
  }
  return snap;
}

/** `fdb add ... master` names only the port, so the port must already hang off the right bridge. */
function checkPort(ctx: KindContext, snap: HostSnapshot, p: P): void {
  const ns = snap.namespaces[p.netns ?? ""];
  const link = ns?.links.find((l) => l.name === p.port);
  const fix =
    "attach the port to the bridge first (or depend on the resource that does), or correct bridge/port";
  if (!ns)
    throw new Error(
      `${ctx.host.label}: cannot set ${where(p)}: netns ${p.netns} does not exist; create it first.`,
    );
  if (!link)
    throw new Error(
      `${ctx.host.label}: cannot set ${where(p)}: port ${p.port} does not exist; ${fix}.`,
    );
  if (link.master !== p.bridge) {
    throw new Error(
      `${ctx.host.label}: cannot set ${where(p)}: ${p.port} is ${link.master ? `a port of ${link.master}` : "not a bridge port"}, not of ${p.bridge}; ${fix}.`,
    );
  }
}

function explain(ctx: KindContext, p: P, err: unknown): Error {
  if (
    p.vlan !== undefined &&
    /Invalid argument|Operation not supported/.test(String(err))
  ) {
    return new Error(
      `${ctx.host.label}: the kernel refused ${where(p)}: vlan entries need vlan_filtering on bridge ${p.bridge} ` +
        `(and a kernel built with bridge VLAN filtering). Turn vlan_filtering on, or drop vlan from this FdbEntry.\n${String(err)}`,
    );
  }
  return err as Error;
}

/** Apply a creation; when a step fails, undo the steps before it (nothing half-made). */
async function applyOrUndo(
  ctx: KindContext,
  steps: readonly Step[],
): Promise<void> {
  const done: HostOp[] = [];
  for (const s of steps) {
    try {
      await ctx.host.run(s.op);
    } catch (err) {
      for (const undo of done.reverse())
        await ctx.host.run(undo).catch(() => undefined);
      throw err;
    }
    if (s.undo) done.push(s.undo);
  }
}

function refuseStatic(ctx: KindContext, p: P): Error {
  return new Error(
    `${ctx.host.label}: ${where(p)} already exists as a static entry. To manage it with hostnet, set adopt: true on this FdbEntry.`,
  );
}

/** Plan against what is there: an existing static entry that is not this resource's is refused. */
async function createOnce(
  ctx: KindContext,
  p: P,
): Promise<FdbObserved | undefined> {
  const snap = await snapshotOf(ctx, p);
  checkPort(ctx, snap, p);
  const o = planner.observe(snap, p);
  if (o?.row) throw refuseStatic(ctx, p);
  await applyOrUndo(ctx, planner.plan(p, o, { owner: ctx.owner }));
  return o;
}

async function create(
  ctx: KindContext,
  p: P,
): Promise<Record<string, unknown>> {
  try {
    await createOnce(ctx, p);
  } catch (err) {
    // The bridge learned the MAC after the snapshot was read: plan again against the fresh one.
    if (!/File exists/.test(String(err))) throw explain(ctx, p, err);
    await createOnce(ctx, p).catch((again) => {
      throw explain(ctx, p, again);
    });
  }
  return {};
}

/**
 * An entry cannot carry a mark: it is ours when it is static, on the declared port, and that port
 * carries a mark of this stack (ownership.ts). Learned entries count as absent (create takes them over).
 */
function finding(o: FdbObserved | undefined, p: P, owner?: string): Finding {
  if (o?.row?.state !== "static") return ABSENT;
  const verdict =
    o.row.dev === p.port ? judgeMark(o.port?.alias, owner) : "none";
  return { present: true, verdict: verdict === "stack" ? "mine" : verdict };
}

export const fdbEntryKind: ResourceKind<typeof FdbEntryProps> = {
  type: "FdbEntry",
  schema: FdbEntryProps,
  replaceOn: ["bridge", "mac", "netns", "vlan"],
  expects: (p) => ({
    fdb: [
      { ...(p.netns ? { netns: p.netns } : {}), bridge: p.bridge, mac: p.mac },
    ],
  }),
  addressUses: (p) =>
    p.neighbours.map((value, i) => ({
      path: `neighbours[${i}]`,
      value,
      kind: "address" as const,
      rootNs: !p.netns,
    })),
  id: (p) =>
    `fdb/${p.netns ?? "-"}/${p.bridge}/${p.mac}${p.vlan === undefined ? "" : `/vlan${p.vlan}`}`,
  planner,

  create,

  async find(ctx, p) {
    return finding(planner.observe(await snapshotOf(ctx, p), p), p, ctx.owner);
  },

  async read(ctx, p) {
    return liveProps(planner.observe(await snapshotOf(ctx, p), p), p);
  },

  async update(ctx, _olds, news) {
    const snap = await snapshotOf(ctx, news);
    const o = planner.observe(snap, news);
    // The bridge's entry is (re)written: its port must be on the bridge.
    if (o?.row?.dev !== news.port) checkPort(ctx, snap, news);
    await applySteps(ctx.host, planner.plan(news, o, { owner: ctx.owner }));
    return {};
  },

  async delete(ctx, p) {
    const o = planner.observe(await snapshotOf(ctx, p), p);
    for (const s of removal(p, o)) {
      try {
        await ctx.host.run(s.op);
      } catch (err) {
        if (!isGone(err)) throw err;
      }
    }
  },
};
