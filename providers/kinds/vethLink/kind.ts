// VethLink: a veth pair whose two ends may live in different namespaces. Seed 000 joins a per-VM
// namespace to the host bridge with one (host end enslaved, port flags of seed 002); seed 003
// routes to a namespace through one instead: a /32 device route and proxy ARP on the host end.
// Identity is each end's (name, namespace); everything else is changed in place, end by end.
// Every write is "read the scoped snapshot → observe → plan → apply" (plan.ts).
import type { HostSnapshot } from "../../state";
import { ABSENT, Finding, findLink, found, isGone, ROOT_NS } from "../../state";
import { KindContext, ResourceKind, upLink } from "../kind";
import { applyGuarded } from "./guard";
import { anchorOf, forceForwardingKnown, liveOf } from "./observe";
import { deleteOp, vethLinkPlanner as planner } from "./plan";
import {
  ENDS,
  pairLabel,
  validate,
  VethEnd,
  VethLinkProps,
  where,
} from "./schema";

function snapshotOf(ctx: KindContext, p: VethLinkProps): Promise<HostSnapshot> {
  return ctx.host.snapshot(planner.scope(p));
}

const present = (snap: HostSnapshot, p: VethLinkProps): VethEnd[] =>
  ENDS.map((k) => p[k]).filter((e) =>
    findLink(snap, e.netns ?? ROOT_NS, e.name),
  );

function takenError(
  ctx: KindContext,
  p: VethLinkProps,
  taken: VethEnd[],
): Error {
  const names =
    taken.length > 0
      ? taken.map((e) => `${e.name} in ${where(e)}`).join(" and ")
      : "one of the names";
  return new Error(
    `${ctx.host.label}: cannot create ${pairLabel(p)}: ${names} already ${taken.length > 1 ? "exist" : "exists"}. To manage an existing pair with hostnet, ` +
      `set adopt: true on this VethLink; otherwise choose other names or delete the old interface.`,
  );
}

async function explainCreateFailure(
  ctx: KindContext,
  p: VethLinkProps,
  err: unknown,
): Promise<Error> {
  const text = String(err);
  const missingNs =
    /argument "([^"]+)" is wrong: Invalid "netns" value|Cannot open network namespace "([^"]+)"/.exec(
      text,
    );
  if (missingNs) {
    return new Error(
      `${ctx.host.label}: cannot create ${pairLabel(p)}: netns ${missingNs[1] ?? missingNs[2]} does not exist. Create it first (VmNetns) and make this VethLink depend on it.`,
    );
  }
  if (!/File exists/.test(text)) return err as Error;
  // Someone made one of the names between our read and our write.
  const snap = await snapshotOf(ctx, p).catch(() => undefined);
  return takenError(ctx, p, snap ? present(snap, p) : []);
}

async function find(ctx: KindContext, p: VethLinkProps): Promise<Finding> {
  const snap = await snapshotOf(ctx, p);
  const o = planner.observe(snap, p);
  if (o)
    return found(o[anchorOf(p)[0] === p.a ? "a" : "b"].link.alias, ctx.owner);
  return present(snap, p).length > 0 ? found(undefined, ctx.owner) : ABSENT;
}

/**
 * Plan against what is there: the runtime already took over this resource's own leftover (find),
 * so anything found under either name is someone else's and is refused with the adopt message.
 * Nothing half-made: when a step after the pair's creation fails, the pair is removed again.
 */
async function create(
  ctx: KindContext,
  p: VethLinkProps,
): Promise<Record<string, unknown>> {
  const snap = await snapshotOf(ctx, p);
  const taken = present(snap, p);
  if (taken.length > 0) throw takenError(ctx, p, taken);
  for (const k of ENDS)
    if (p[k].ipv6Forwarding && forceForwardingKnown(snap, p[k].netns) === false)
      throw new Error(
        `${ctx.host.label}: ${pairLabel(p)}: ${k}.ipv6Forwarding needs net.ipv6.conf.<interface>.force_forwarding, which this kernel does not have (Linux 6.17 or newer has it). Nothing was changed. Upgrade the host's kernel, or give the VM no IPv6 (routed IPv6 needs it: hostnet does not turn on net.ipv6.conf.all.forwarding, which would make interfaces with accept_ra=1 ignore router advertisements).`,
      );
  const [make, ...rest] = planner.plan(p, undefined, { owner: ctx.owner });
  try {
    await ctx.host.run(make.op);
  } catch (err) {
    throw await explainCreateFailure(ctx, p, err);
  }
  try {
    await applyGuarded(ctx, rest, anchorOf(p)[0].name);
  } catch (err) {
    await ctx.host.run(make.undo!).catch((undo: Error) => {
      if (isGone(undo)) return;
      throw new Error(
        `${(err as Error).message}\n  and removing the half-made pair failed too; delete ${p.a.name} in ${where(p.a)} by hand: ${undo.message}`,
      );
    });
    throw err;
  }
  return {};
}

async function read(
  ctx: KindContext,
  p: VethLinkProps,
): Promise<Record<string, unknown> | null> {
  const o = planner.observe(await snapshotOf(ctx, p), p);
  return o ? liveOf(p, o) : null;
}

/**
 * Planned against the live kernel, not the old inputs, so a repair after drift changes exactly
 * what drifted. Also converges this resource's own leftover (the planner stamps both ends).
 */
async function update(
  ctx: KindContext,
  _olds: VethLinkProps,
  news: VethLinkProps,
): Promise<Record<string, unknown>> {
  const o = planner.observe(await snapshotOf(ctx, news), news);
  if (!o) {
    throw new Error(
      `${ctx.host.label}: ${pairLabel(news)} is gone from the host. Run pulumi up --refresh to recreate it.`,
    );
  }
  const steps = planner.plan(news, o, { owner: ctx.owner });
  await applyGuarded(ctx, steps, anchorOf(news)[0].name);
  return {};
}

/**
 * Deletes of gone pairs are skipped before they reach the host: a re-run destroy (after a killed
 * one) would otherwise merge dozens of failing `link del` lines into one batch, which stops at the
 * first and leaves the rest to retries.
 */
async function remove(ctx: KindContext, p: VethLinkProps): Promise<void> {
  const snap = await snapshotOf(ctx, p);
  const end = ENDS.map((k) => p[k]).find(
    (e) => findLink(snap, e.netns ?? ROOT_NS, e.name)?.kind === "veth",
  );
  if (!end) return;
  try {
    await ctx.host.run(deleteOp(end, `delete ${pairLabel(p)}`));
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

export const vethLinkKind: ResourceKind<typeof VethLinkProps> = {
  type: "VethLink",
  schema: VethLinkProps,
  // Identity is nested (each end's name and namespace): see replaces.
  replaceOn: [],
  replaces: (olds, news) =>
    ENDS.filter(
      (k) =>
        olds[k]?.name !== news[k]?.name ||
        (olds[k]?.netns ?? "") !== (news[k]?.netns ?? ""),
    ),
  compared: ["a", "b", "mtu"],
  validate,
  // An end's name in the root namespace is where its sysctls (proxy_arp, forwarding, ...) go:
  // the management interface is refused there, so they only ever reach ends hostnet makes.
  addressUses: (p) =>
    ENDS.flatMap((k) => [
      {
        path: `${k}.name`,
        value: p[k].name,
        kind: "interface" as const,
        rootNs: !p[k].netns,
      },
      ...p[k].addresses.map((value, i) => ({
        path: `${k}.addresses[${i}]`,
        value,
        kind: "address" as const,
        rootNs: !p[k].netns,
      })),
      ...p[k].routes.map((r, i) => ({
        path: `${k}.routes[${i}].to`,
        value: r.to,
        kind: "route" as const,
        rootNs: !p[k].netns,
      })),
    ]),
  expects: (p) => ({
    links: [p.a, p.b].flatMap((end) => upLink(end).links ?? []),
  }),
  id: (p) => `veth/${p.a.netns ?? "-"}/${p.a.name}`,
  planner,
  create,
  find,
  read,
  update,
  delete: remove,
};
