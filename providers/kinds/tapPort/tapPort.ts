// TapPort: a persistent tap device for QEMU (`-netdev tap,ifname=NAME,script=no`), owned by the
// VM's user/group so an unprivileged QEMU can open it, optionally a port of a bridge with its
// port flags (seed 002). Owner, group and the queue/header flags are fixed when the tap is
// created (TUNSETIFF), so changing any of them means a new tap.
import { scopeOf } from "../../host";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { findLink, Link } from "../../state";
import { KindContext, OptionalNetns, ResourceKind } from "../kind";
import { ABSENT, found, isGone, isHostnetMark, ownerMark } from "../../state";
import {
  changedPortFlags,
  livePortFlags,
  setPortFlags,
  PortFlagsInput,
} from "../portFlags";
import { argvToShell, batchLine } from "../../transport";
import { IfName, MacAddress, UnixUser } from "../../schema";

/** A uid/gid or a name that the host resolves (group names follow the same charset). */
const IdOrName = (what: string) => {
  const range = `${what} id must be an integer 0–4294967294`;
  return z.union(
    [z.number().int(range).min(0, range).max(4294967294, range), UnixUser],
    {
      error: (i) =>
        i.code === "invalid_union"
          ? `${what} must be a numeric id (0–4294967294) or a name like "libvirt-qemu"`
          : undefined,
    },
  );
};

const MTU_RANGE = "mtu must be an integer 68–65521 (the tap driver's limits)";

export const TapPortProps = z.object({
  name: IfName,
  netns: OptionalNetns,
  /** uid or user name that may open the tap (the VM's QEMU user). */
  owner: IdOrName("owner").optional(),
  /** gid or group name that may open the tap. */
  group: IdOrName("group").optional(),
  /** One queue per vCPU (QEMU `queues=N`). */
  multiQueue: z.boolean().default(false),
  /** virtio-net header offloads; QEMU's vhost-net wants it. */
  vnetHdr: z.boolean().default(true),
  /** 68–65521: the tap driver's limits. */
  mtu: z
    .number()
    .int(MTU_RANGE)
    .min(68, MTU_RANGE)
    .max(65521, MTU_RANGE)
    .optional(),
  mac: MacAddress.optional(),
  /** Bridge in the same namespace to attach to. */
  master: IfName.optional(),
  /** Bridge port flags (only with master). */
  portFlags: PortFlagsInput.optional(),
  /** Administrative state; a tap no process holds stays operationally DOWN regardless. */
  up: z.boolean().default(true),
});
export type TapPortProps = z.infer<typeof TapPortProps>;

type IdDb = "passwd" | "group";

function where(p: TapPortProps): string {
  return `tap ${p.name}${p.netns ? ` in netns ${p.netns}` : ""}`;
}

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
 * the form the user wrote whenever both denote the same id, so `owner: 1000` and a live
 * "libvirt-qemu" (uid 1000) are not drift; a different id is reported as ip printed it.
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

function tuntapAdd(p: TapPortProps): string {
  const tokens = ["tuntap", "add", "dev", p.name, "mode", "tap"];
  if (p.owner !== undefined) tokens.push("user", String(p.owner));
  if (p.group !== undefined) tokens.push("group", String(p.group));
  if (p.multiQueue) tokens.push("multi_queue");
  if (p.vnetHdr) tokens.push("vnet_hdr");
  return batchLine(tokens);
}

function linkSetup(p: TapPortProps, mark: string): string {
  const tokens = ["link", "set", p.name, "alias", mark];
  if (p.mtu !== undefined) tokens.push("mtu", String(p.mtu));
  if (p.mac !== undefined) tokens.push("address", p.mac);
  if (p.master !== undefined) tokens.push("master", p.master);
  tokens.push(p.up ? "up" : "down");
  return batchLine(tokens);
}

function setFlags(
  ctx: KindContext,
  p: TapPortProps,
  flags: PortFlagsInput | undefined,
): Promise<void> {
  return setPortFlags(ctx.host, p, flags, `set port flags of ${where(p)}`);
}

async function removeLink(
  ctx: KindContext,
  p: TapPortProps,
  what: string,
): Promise<void> {
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: p.netns,
      lines: [batchLine(["link", "del", p.name])],
      what,
    });
  } catch (err) {
    if (!isGone(err)) throw err;
  }
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

async function create(
  ctx: KindContext,
  p: TapPortProps,
): Promise<Record<string, unknown>> {
  const existing = findLink(
    await ctx.host.snapshot(scopeOf(p.netns)),
    p.netns ?? "",
    p.name,
  );
  if (existing) throw alreadyThere(ctx, p, existing);
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: p.netns,
      lines: [tuntapAdd(p), linkSetup(p, ownerMark(ctx.owner))],
      what: `create ${where(p)}`,
    });
  } catch (err) {
    // EBUSY: someone made the name between our look and our add; it is not ours to undo.
    if (/Device or resource busy/.test(String(err)))
      throw new Error(
        `${ctx.host.label}: ${where(p)} appeared while hostnet was creating it; set adopt: true to manage it.\n${String(err)}`,
        { cause: err },
      );
    await removeLink(ctx, p, `remove half-made ${where(p)}`);
    throw err;
  }
  try {
    await setFlags(ctx, p, p.portFlags);
  } catch (err) {
    await removeLink(ctx, p, `remove half-made ${where(p)}`);
    throw err;
  }
  return {};
}

async function read(
  ctx: KindContext,
  p: TapPortProps,
): Promise<Record<string, unknown> | null> {
  const link = findLink(
    await ctx.host.snapshot(scopeOf(p.netns)),
    p.netns ?? "",
    p.name,
  );
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
}

async function update(
  ctx: KindContext,
  olds: TapPortProps,
  news: TapPortProps,
): Promise<Record<string, unknown>> {
  const tokens: string[] = [];
  if (news.mtu !== undefined && news.mtu !== olds.mtu)
    tokens.push("mtu", String(news.mtu));
  if (news.mac !== undefined && news.mac !== olds.mac)
    tokens.push("address", news.mac);
  const masterChanged = news.master !== olds.master;
  if (masterChanged)
    tokens.push(...(news.master ? ["master", news.master] : ["nomaster"]));
  if (news.up !== olds.up) tokens.push(news.up ? "up" : "down");
  if (tokens.length > 0) {
    const lines = [batchLine(["link", "set", news.name, ...tokens])];
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: news.netns,
      lines,
      what: `reconfigure ${where(news)}`,
    });
  }
  // A port joining a bridge starts with the kernel's default flags: set all of ours again.
  await setFlags(
    ctx,
    news,
    masterChanged
      ? news.portFlags
      : changedPortFlags(olds.portFlags, news.portFlags),
  );
  return {};
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
  id: (p) => `tap/${p.netns ?? "-"}/${p.name}`,
  create,
  read,
  update,

  async find(ctx, p) {
    const link = findLink(
      await ctx.host.snapshot(scopeOf(p.netns)),
      p.netns ?? "",
      p.name,
    );
    return link
      ? found(link.kind === "tap" ? link.alias : undefined, ctx.owner)
      : ABSENT;
  },

  async delete(ctx, p) {
    const link = findLink(
      await ctx.host.snapshot(scopeOf(p.netns)),
      p.netns ?? "",
      p.name,
    );
    if (!link) return;
    // The name may since have been reused by hand (a VM's tap made outside hostnet): leave that.
    if (link.kind !== "tap" || !isHostnetMark(link.alias)) {
      throw new Error(
        `${ctx.host.label}: ${where(p)} is now a ${link.kind} device without hostnet's alias; not deleting it. ` +
          `Remove it by hand if it is stale, or drop it from the state (pulumi state delete).`,
      );
    }
    await removeLink(ctx, p, `delete ${where(p)}`);
  },
};

export interface TapPortArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof TapPortProps>>> {
  name: pulumi.Input<string>;
}

/** A persistent tap for a QEMU guest, optionally a bridge port. */
export class TapPort extends HostnetResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly netns: pulumi.Output<string | undefined>;
  declare readonly owner: pulumi.Output<string | number | undefined>;
  declare readonly group: pulumi.Output<string | number | undefined>;
  declare readonly multiQueue: pulumi.Output<boolean>;
  declare readonly vnetHdr: pulumi.Output<boolean>;
  declare readonly mtu: pulumi.Output<number | undefined>;
  declare readonly mac: pulumi.Output<string | undefined>;
  declare readonly master: pulumi.Output<string | undefined>;
  declare readonly portFlags: pulumi.Output<PortFlagsInput | undefined>;
  declare readonly up: pulumi.Output<boolean>;
  constructor(
    name: string,
    args: TapPortArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("TapPort", name, args, opts);
  }
}
