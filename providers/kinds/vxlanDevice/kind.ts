// VxlanDevice: a VXLAN tunnel endpoint that joins a host bridge to one L2 segment spread over many
// hosts (issue 15). hostnet is the control plane: the device learns nothing (nolearning, learning
// off on its bridge port) and floods only to the hosts of its floodTo list (default none); remote
// VMs are programmed as FdbEntry with a remote destination plus permanent neighbours, and
// neigh_suppress on this port makes the bridge answer ARP for them locally, so a broadcast ARP
// never crosses the underlay.
// Every write is "read the scoped snapshot → observe → plan → apply" (plan.ts).
import type { HostSnapshot } from "../../state";
import { ABSENT, findLink, found, isGone, isHostnetMark } from "../../state";
import { applySteps } from "../plan";
import { KindContext, ResourceKind, upLink } from "../kind";
import { floodToProblems, VxlanDeviceProps, where } from "./schema";
import { liveProps, removal, vxlanDevicePlanner as planner } from "./plan";

type P = VxlanDeviceProps;

function snapshotOf(ctx: KindContext, p: P): Promise<HostSnapshot> {
  return ctx.host.snapshot(planner.scope(p));
}

/** What must be true before the device is made; throws the operator's message, nothing changed. */
function preflight(ctx: KindContext, snap: HostSnapshot, p: P): void {
  const ns = snap.namespaces[p.netns ?? ""];
  if (!ns)
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: netns ${p.netns} does not exist. Create it first (VmNetns) or fix netns. Nothing was changed.`,
    );
  const existing = ns.links.find((l) => l.name === p.name);
  if (existing?.kind === "vxlan")
    throw new Error(
      `${ctx.host.label}: ${where(p)}: interface ${p.name} already exists. To manage it with hostnet, set adopt: true on this VxlanDevice; otherwise delete it (ip link del ${p.name}). Nothing was changed.`,
    );
  if (existing)
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: the name is taken by a ${existing.kind} device. Pick another name or remove that device. Nothing was changed.`,
    );
  const bridge = ns.links.find((l) => l.name === p.bridge);
  if (bridge?.kind !== "bridge") {
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: ${p.bridge} ${bridge ? `is a ${bridge.kind} device, not a bridge` : "does not exist"}. Create the bridge first (HostBridge) or fix bridge. Nothing was changed.`,
    );
  }
  const clash = ns.links.find(
    (l) =>
      l.kind === "vxlan" &&
      l.vxlan?.vni === p.vni &&
      (l.vxlan?.port ?? 4789) === p.port &&
      l.vxlan?.local === p.local,
  );
  if (clash)
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: ${clash.name} already carries vni ${p.vni} from ${p.local} on UDP port ${p.port}, and the kernel allows one device per (vni, local, port). Remove ${clash.name} or adopt it under this name. Nothing was changed.`,
    );
}

function explain(ctx: KindContext, p: P, err: unknown): Error {
  const msg = String(err instanceof Error ? err.message : err);
  if (/Address already in use|File exists/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: the kernel refused ${where(p)}: another vxlan device already uses vni ${p.vni} with local ${p.local} and port ${p.port}, or the name appeared meanwhile. What hostnet had made was removed; check ip -d link show type vxlan.`,
    );
  }
  if (/Cannot assign requested address/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: ${p.local} is not an address of this host, so ${where(p)} cannot send from it. Fix local (the host's underlay address). What hostnet had made was removed.`,
    );
  }
  return new Error(
    `${msg}\n${ctx.host.label}: creating ${where(p)} failed; what hostnet had made was removed.`,
  );
}

async function removeLink(ctx: KindContext, p: P, what: string): Promise<void> {
  try {
    await ctx.host.run(removal(p, what).op);
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

/**
 * Create and update alike: plan against the fresh snapshot and apply; a failed make is undone.
 * A create refuses any device already there (the runtime converged this resource's own leftover
 * before calling create); an update of a device that has gone makes it again.
 */
async function converge(
  ctx: KindContext,
  p: P,
  creating: boolean,
): Promise<Record<string, unknown>> {
  const snap = await snapshotOf(ctx, p);
  const live = planner.observe(snap, p);
  if (creating || !live) preflight(ctx, snap, p);
  const steps = planner.plan(p, live, { owner: ctx.owner });
  try {
    await applySteps(ctx.host, steps);
  } catch (err) {
    if (live) throw err;
    // The add and the mark share one batch: a device of ours, or one still without any alias
    // (the batch stopped right after the add), is the half-made one.
    const link = findLink(
      await snapshotOf(ctx, p).catch(() => snap),
      p.netns ?? "",
      p.name,
    );
    if (
      isHostnetMark(link?.alias) ||
      (link?.kind === "vxlan" && link.alias === undefined)
    )
      await removeLink(ctx, p, `remove half-made ${where(p)}`).catch(
        () => undefined,
      );
    throw explain(ctx, p, err);
  }
  return {};
}

export const vxlanDeviceKind: ResourceKind<typeof VxlanDeviceProps> = {
  type: "VxlanDevice",
  schema: VxlanDeviceProps,
  replaceOn: ["name", "netns", "vni", "port"],
  validate: floodToProblems,
  expects: upLink,
  id: (p) => `vxlan/${p.netns ?? "-"}/${p.name}`,
  planner,

  create: (ctx, p) => converge(ctx, p, true),
  update: (ctx, _olds, news) => converge(ctx, news, false),

  async find(ctx, p) {
    const link = findLink(await snapshotOf(ctx, p), p.netns ?? "", p.name);
    return link
      ? found(link.kind === "vxlan" ? link.alias : undefined, ctx.owner)
      : ABSENT;
  },

  async read(ctx, p) {
    const live = planner.observe(await snapshotOf(ctx, p), p);
    return live ? liveProps(live, p) : null;
  },

  async delete(ctx, p) {
    const link = findLink(await snapshotOf(ctx, p), p.netns ?? "", p.name);
    if (!link) return;
    if (link.kind !== "vxlan" || !isHostnetMark(link.alias)) {
      throw new Error(
        `${ctx.host.label}: ${p.name} is now a ${link.kind} device without hostnet's alias; not deleting it. ` +
          `Remove it by hand if it is stale, or drop it from the state (pulumi state delete).`,
      );
    }
    await removeLink(
      ctx,
      p,
      `delete ${where(p)} (its remote fdb entries go with it)`,
    );
  },
};
