// The TapPort kind: every write is read snapshot → observe → plan (plan.ts) → apply. Reading
// resolves user and group names on the host, so that `owner: 1000` and a live "libvirt-qemu"
// (uid 1000) are not drift.
import { ABSENT, found, isGone, isHostnetMark, Link } from "../../state";
import { argvToShell } from "../../transport";
import { applyCreating } from "../applyPlan";
import { KindContext, ResourceKind, upLink } from "../kind";
import { applySteps } from "../plan";
import { livePortFlags } from "../portFlags";
import { deleteTapOp, tapPortPlanner as planner } from "./plan";
import { TapPortProps, where } from "./schema";

type IdDb = "passwd" | "group";

/** Name → numeric id on the host, cached per process: users rarely change under a running VM. */
const idCache = new Map<string, Promise<number | undefined>>();

function idOf(
  ctx: KindContext,
  db: IdDb,
  v: string | number,
): Promise<number | undefined> {
  if (typeof v === "number") return Promise.resolve(v);
  if (/^[0-9]+$/.test(v)) return Promise.resolve(Number(v));
  const key = `${ctx.host.label}\u0000${db}\u0000${v}`;
  if (!idCache.has(key)) {
    const script = `${argvToShell(["getent", db, v])} || true\n`;
    const p = ctx.host.read(script, `look up ${db} entry ${v}`).then((out) => {
      const id = out.trim().split("\n")[0]?.split(":")[2];
      return id !== undefined && /^[0-9]+$/.test(id) ? Number(id) : undefined;
    });
    p.catch(() => idCache.delete(key));
    idCache.set(key, p);
  }
  return idCache.get(key)!;
}

/**
 * ip prints the owner as a name when the host resolves it, else as a number. We report it in
 * the form the user wrote whenever both denote the same id; a different id is reported as ip
 * printed it.
 */
async function liveId(
  ctx: KindContext,
  db: IdDb,
  want: string | number,
  live: string | number | undefined,
): Promise<string | number | undefined> {
  if (live === undefined || String(want) === String(live))
    return live === undefined ? undefined : want;
  const [a, b] = await Promise.all([idOf(ctx, db, want), idOf(ctx, db, live)]);
  return a !== undefined && a === b ? want : live;
}

async function observe(ctx: KindContext, p: TapPortProps) {
  return planner.observe(await ctx.host.snapshot(planner.scope(p)), p);
}

function alreadyThere(ctx: KindContext, p: TapPortProps, link: Link): Error {
  if (link.kind === "tap") {
    return new Error(
      `${ctx.host.label}: ${where(p)} already exists. To manage it with hostnet, set adopt: true on this TapPort.`,
    );
  }
  return new Error(
    `${ctx.host.label}: cannot create ${where(p)}: the name is taken by a ${link.kind} device. Pick another name or remove that device.`,
  );
}

export const tapPortKind: ResourceKind<typeof TapPortProps> = {
  type: "TapPort",
  schema: TapPortProps,
  replaceOn: ["name", "netns", "owner", "group", "multiQueue", "vnetHdr"],
  validate: (p) =>
    p.portFlags !== undefined && p.master === undefined
      ? [
          [
            "portFlags",
            "port flags need master (the bridge this tap is a port of)",
          ],
        ]
      : [],
  expects: upLink,
  id: (p) => `tap/${p.netns ?? "-"}/${p.name}`,
  planner,

  async create(ctx, p) {
    const existing = await observe(ctx, p);
    if (existing) throw alreadyThere(ctx, p, existing);
    await applyCreating(ctx.host, planner.plan(p, undefined, ctx), {
      // EBUSY: someone made the name between our look and our add; it is not ours to undo.
      refuse: (err) =>
        /Device or resource busy/.test(String(err))
          ? new Error(
              `${ctx.host.label}: ${where(p)} appeared while hostnet was creating it; set adopt: true to manage it.\n${String(err)}`,
              { cause: err },
            )
          : undefined,
    });
    return {};
  },

  async read(ctx, p) {
    const link = await observe(ctx, p);
    if (!link || link.kind !== "tap" || !link.tun) return null;
    const live: Record<string, unknown> = {
      name: p.name,
      netns: p.netns,
      multiQueue: link.tun.multiQueue,
      vnetHdr: link.tun.vnetHdr,
      up: link.adminUp,
    };
    if (p.owner !== undefined)
      live.owner = await liveId(ctx, "passwd", p.owner, link.tun.owner);
    if (p.group !== undefined)
      live.group = await liveId(ctx, "group", p.group, link.tun.group);
    if (p.mtu !== undefined) live.mtu = link.mtu;
    if (p.mac !== undefined) live.mac = link.mac;
    if (p.master !== undefined) live.master = link.master;
    if (p.portFlags !== undefined)
      live.portFlags = livePortFlags(link, p.portFlags);
    return live;
  },

  async update(ctx, _olds, news) {
    const link = await observe(ctx, news);
    if (!link || link.kind !== "tap")
      throw new Error(
        `${ctx.host.label}: ${where(news)} is gone, so it cannot be updated. Nothing was changed. Run pulumi up --refresh to recreate it.`,
      );
    await applySteps(ctx.host, planner.plan(news, link, ctx));
    return {};
  },

  async find(ctx, p) {
    const link = await observe(ctx, p);
    return link
      ? found(link.kind === "tap" ? link.alias : undefined, ctx.owner)
      : ABSENT;
  },

  async delete(ctx, p) {
    const link = await observe(ctx, p);
    if (!link) return;
    // The name may since have been reused by hand (a VM's tap made outside hostnet): leave that.
    if (link.kind !== "tap" || !isHostnetMark(link.alias)) {
      throw new Error(
        `${ctx.host.label}: ${where(p)} is now a ${link.kind} device without hostnet's alias; not deleting it. ` +
          `Remove it by hand if it is stale, or drop it from the state (pulumi state delete).`,
      );
    }
    try {
      await ctx.host.run(deleteTapOp(p, `delete ${where(p)}`));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};
