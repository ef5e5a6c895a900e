// MacvlanPort: a macvlan or macvtap on a lower device (seed 004), the guest attachment without a
// bridge: bridge mode switches port-to-port inside the lower, vepa sends it out to a hairpin switch,
// private forbids it, passthru hands the whole lower to one guest, source admits listed senders.
// The port is made where its lower lives and then moved into its target namespace, because a
// macvlan can only be created next to its lower device. Every write is "read the scoped snapshot
// → observe → plan → apply" (plan.ts).
import type { HostSnapshot } from "../../state";
import { ABSENT, findLink, found, isGone, ownerMark } from "../../state";
import { KindContext, ResourceKind, upLink } from "../kind";
import { applySteps } from "../plan";
import {
  deleteOp,
  liveOf,
  macvlanPortPlanner as planner,
  outputsOf,
} from "./plan";
import {
  MacvlanPortProps,
  nsKey,
  nsLabel,
  P,
  replaces,
  targetOf,
  validate,
} from "./schema";

function snapshotOf(ctx: KindContext, p: P): Promise<HostSnapshot> {
  return ctx.host.snapshot(planner.scope(p));
}

/** Refuse before anything is made: a missing namespace or lower, or the name taken. */
function preflight(ctx: KindContext, p: P, snap: HostSnapshot): void {
  for (const ns of new Set([p.lowerNetns, targetOf(p)])) {
    if (!snap.namespaces[nsKey(ns)]) {
      throw new Error(
        `${ctx.host.label}: ${nsLabel(ns)} does not exist, so ${p.type} ${p.name} cannot be made there. Create the namespace first (VmNetns) or fix netns/lowerNetns.`,
      );
    }
    if (findLink(snap, nsKey(ns), p.name)) {
      throw new Error(
        `${ctx.host.label} (${nsLabel(ns)}): interface ${p.name} already exists. To manage it with hostnet, set adopt: true on this MacvlanPort; otherwise pick another name or delete it (ip link del ${p.name}).`,
      );
    }
  }
  if (!findLink(snap, nsKey(p.lowerNetns), p.lower)) {
    throw new Error(
      `${ctx.host.label} (${nsLabel(p.lowerNetns)}): lower device ${p.lower} of ${p.type} ${p.name} does not exist. Create it first, or fix lower/lowerNetns (the lower must live in lowerNetns).`,
    );
  }
}

/** Remove a half-made port wherever it got to; only this resource's (its mark), so a racing namesake survives. */
async function undoCreate(ctx: KindContext, p: P): Promise<string> {
  const snap = await snapshotOf(ctx, p);
  const problems: string[] = [];
  for (const ns of new Set([p.lowerNetns, targetOf(p)])) {
    if (findLink(snap, nsKey(ns), p.name)?.alias !== ownerMark(ctx.owner))
      continue;
    try {
      await ctx.host.run(
        deleteOp(p, ns, `remove half-made ${p.type} ${p.name}`),
      );
    } catch (err) {
      if (!isGone(err)) problems.push(String(err));
    }
  }
  return problems.length === 0
    ? ""
    : `\nCleaning up also failed; remove ${p.name} by hand:\n${problems.join("\n")}`;
}

function explain(ctx: KindContext, p: P, err: unknown, cleanup: string): Error {
  const msg = String(err instanceof Error ? err.message : err);
  if (/File exists/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: interface ${p.name} appeared while hostnet was creating it. Set adopt: true to manage the existing one, or pick another name.${cleanup}`,
    );
  }
  if (/Invalid argument/.test(msg) && p.mode === "passthru") {
    return new Error(
      `${msg}\n${ctx.host.label}: a lower device in passthru mode carries exactly one macvlan/macvtap; ${p.lower} already has another. Remove the others (ip -d link show) or choose another mode.${cleanup}`,
    );
  }
  if (/Invalid argument/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: the kernel refused ${p.type} ${p.name} on ${p.lower}; if ${p.lower} already carries a passthru port, it can carry no other.${cleanup}`,
    );
  }
  if (/busy/i.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: ${p.lower} is busy, typically because it is a bridge port; a macvlan lower must not be enslaved. Use another lower device.${cleanup}`,
    );
  }
  return new Error(`${msg}${cleanup}`);
}

async function liveOutputs(
  ctx: KindContext,
  p: P,
): Promise<Record<string, unknown>> {
  return outputsOf(
    findLink(await snapshotOf(ctx, p), nsKey(targetOf(p)), p.name),
  );
}

/** Plan against what is there; the runtime took over this resource's own leftover already (find). */
async function create(
  ctx: KindContext,
  p: P,
): Promise<Record<string, unknown>> {
  preflight(ctx, p, await snapshotOf(ctx, p));
  try {
    await applySteps(
      ctx.host,
      planner.plan(p, undefined, { owner: ctx.owner }),
    );
  } catch (err) {
    throw explain(ctx, p, err, await undoCreate(ctx, p));
  }
  return liveOutputs(ctx, p);
}

/** Planned against the live port, not the old inputs: a repair changes exactly what drifted. */
async function update(
  ctx: KindContext,
  _olds: P,
  p: P,
): Promise<Record<string, unknown>> {
  const o = planner.observe(await snapshotOf(ctx, p), p);
  if (!o) {
    throw new Error(
      `${ctx.host.label} (${nsLabel(targetOf(p))}): ${p.type} ${p.name} is gone from the host. Run pulumi up --refresh to recreate it.`,
    );
  }
  await applySteps(ctx.host, planner.plan(p, o, { owner: ctx.owner }));
  return liveOutputs(ctx, p);
}

export const macvlanPortKind: ResourceKind<typeof MacvlanPortProps> = {
  type: "MacvlanPort",
  schema: MacvlanPortProps,
  replaceOn: ["name", "type", "lower", "lowerNetns", "netns"],
  compared: [
    "name",
    "type",
    "lower",
    "lowerNetns",
    "netns",
    "mode",
    "sourceMacs",
    "mac",
    "mtu",
    "addresses",
    "up",
  ],
  validate,
  addressUses: (p) =>
    p.addresses.map((value, i) => ({
      path: `addresses[${i}]`,
      value,
      kind: "address" as const,
      rootNs: !targetOf(p),
    })),
  replaces,
  expects: upLink,
  id: (p) => `${p.type}/${p.netns ?? p.lowerNetns ?? "-"}/${p.name}`,
  planner,
  create,

  /** A port moved to its target in the creating batch, so a leftover of ours lives there. */
  async find(ctx, p) {
    const snap = await snapshotOf(ctx, p);
    const there = findLink(snap, nsKey(targetOf(p)), p.name);
    if (there)
      return found(there.kind === p.type ? there.alias : undefined, ctx.owner);
    return findLink(snap, nsKey(p.lowerNetns), p.name)
      ? found(undefined, ctx.owner)
      : ABSENT;
  },

  async read(ctx, p) {
    const o = planner.observe(await snapshotOf(ctx, p), p);
    return o ? { ...liveOf(p, o), ...outputsOf(o.link) } : null;
  },

  update,

  async delete(ctx, p) {
    // A gone port is not sent to the host (see VethLink's delete: merged failing deletes stall).
    if (!planner.observe(await snapshotOf(ctx, p), p)) return;
    try {
      await ctx.host.run(
        deleteOp(p, targetOf(p), `delete ${p.type} ${p.name}`),
      );
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};
