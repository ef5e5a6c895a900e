// FdbEntry: one static forwarding-database entry on a bridge (seed 002). Together with
// learning=off and flood=off on the VM ports this is libvirt's macTableManager='libvirt': the
// bridge knows every VM's MAC up front instead of learning it, so unknown unicast is never flooded.
// The kernel keys an entry by (bridge, mac, vlan); the port is just where it points, so moving a
// VM's MAC to another port is an in-place `fdb replace`.
import { scopeOf } from "../../host";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import type { FdbRow, HostSnapshot } from "../../state";
import { KindContext, OptionalNetns, ResourceKind } from "../kind";
import { ABSENT, Finding, isGone, judgeMark } from "../../state";
import { batchLine } from "../../transport";
import {
  GuestIpv4Address,
  IfName,
  Ipv4Address,
  MacAddress,
} from "../../schema";

const VLAN_RANGE = "vlan must be an integer 1–4094";
const VNI_RANGE = "remote.vni must be an integer 1–16777215";

export const RemoteDst = z
  .object({
    /** Underlay address of the host the MAC lives on. */
    dst: Ipv4Address,
    /** VNI to send with; unset: the vxlan device's own. */
    vni: z
      .number()
      .int(VNI_RANGE)
      .min(1, VNI_RANGE)
      .max(16777215, VNI_RANGE)
      .optional(),
  })
  .strict();
export type RemoteDst = z.infer<typeof RemoteDst>;

export const FdbEntryProps = z.object({
  /** The bridge whose forwarding database holds the entry. */
  bridge: IfName,
  /** The bridge port the MAC lives behind (a VM's tap or veth end). */
  port: IfName,
  /** Unicast MAC of the VM interface; stored lowercase. */
  mac: MacAddress,
  netns: OptionalNetns,
  /** Needs vlan_filtering on the bridge; kernels without it refuse such an entry. */
  vlan: z
    .number()
    .int(VLAN_RANGE)
    .min(1, VLAN_RANGE)
    .max(4094, VLAN_RANGE)
    .optional(),
  /**
   * ARP suppression: the VM's IPv4 addresses, published as permanent neighbours (with this MAC)
   * on the bridge. With neigh_suppress on the ports, the bridge answers ARP for them itself
   * instead of flooding the request to every port.
   */
  neighbours: z.array(GuestIpv4Address).default([]),
  /**
   * The port's whole static table is this entry (managedFdb: learning is off, so the table alone
   * decides where frames go). Any other static entry on the port, and any other permanent
   * neighbour with this MAC, is drift: refresh reports it and `up` removes it.
   */
  exclusive: z.boolean().optional(),
  /**
   * The MAC lives on another host of a VXLAN segment: `port` is the vxlan device and the device's
   * own table gets `MAC dst <remote underlay address>` (a "self" entry) besides the bridge's entry.
   */
  remote: RemoteDst.optional(),
});
export type FdbEntryProps = z.infer<typeof FdbEntryProps>;

function where(p: FdbEntryProps): string {
  return `fdb entry ${p.mac}${p.vlan ? ` vlan ${p.vlan}` : ""} on bridge ${p.bridge}${p.netns ? ` in netns ${p.netns}` : ""}`;
}

function vlanTokens(p: FdbEntryProps): string[] {
  return p.vlan === undefined ? [] : ["vlan", String(p.vlan)];
}

/** Only the bridge's own static entries count; "self" rows are the port device's own table. */
function isManagedRow(r: FdbRow, p: FdbEntryProps): boolean {
  return (
    r.mac === p.mac &&
    r.master === p.bridge &&
    r.vlan === p.vlan &&
    (r.state === "static" || r.state === "permanent") &&
    !r.flags.includes("self")
  );
}

/** The namespace's fdb rows; throws rather than calling an unreadable table empty. */
function fdbRows(
  ctx: KindContext,
  snap: HostSnapshot,
  p: FdbEntryProps,
): FdbRow[] | undefined {
  const ns = snap.namespaces[p.netns ?? ""];
  if (!ns) return undefined;
  if (
    ns.failedSections.includes("fdb") ||
    ns.failedSections.includes("links")
  ) {
    throw new Error(
      `${ctx.host.label}: could not read the forwarding database for ${where(p)}; nothing was changed. Check that iproute2's bridge tool works there and retry.`,
    );
  }
  return ns.fdb;
}

/**
 * Static entries on this entry's port that are not this entry: a MAC hijack on a managed port.
 * The kernel's own entry for the port's MAC (state permanent) is not a stranger.
 */
async function strangers(
  ctx: KindContext,
  p: FdbEntryProps,
): Promise<FdbRow[]> {
  const snap = await ctx.host.snapshot(scopeOf(p.netns));
  const own = snap.namespaces[p.netns ?? ""]?.links.find(
    (l) => l.name === p.port,
  )?.mac;
  const rows = fdbRows(ctx, snap, p) ?? [];
  return rows.filter(
    (r) =>
      r.dev === p.port &&
      r.master === p.bridge &&
      r.mac !== p.mac &&
      r.mac !== own &&
      (r.state === "static" || r.state === "permanent") &&
      !r.flags.includes("self"),
  );
}

/** Removes the strangers of an exclusive entry (and permanent neighbours with its MAC it does not list). */
async function removeStrangers(
  ctx: KindContext,
  p: FdbEntryProps,
): Promise<void> {
  for (const r of await strangers(ctx, p)) {
    const tokens = [
      "fdb",
      "del",
      r.mac,
      "dev",
      r.dev,
      "master",
      ...(r.vlan === undefined ? [] : ["vlan", String(r.vlan)]),
    ];
    await ctx.host.run({
      kind: "batch",
      tool: "bridge",
      netns: p.netns,
      lines: [batchLine(tokens)],
      what: `remove stranger fdb entry ${r.mac} from managed port ${p.port}`,
    });
  }
  const extra = (await liveNeighbours(ctx, p)).filter(
    (ip) => !p.neighbours.includes(ip),
  );
  await setNeighbours(ctx, p, [], extra);
}

async function staticEntry(
  ctx: KindContext,
  p: FdbEntryProps,
): Promise<FdbRow | undefined> {
  return fdbRows(ctx, await ctx.host.snapshot(scopeOf(p.netns)), p)?.find((r) =>
    isManagedRow(r, p),
  );
}

/** `fdb add ... master` names only the port, so the port must already hang off the right bridge. */
async function checkPort(ctx: KindContext, p: FdbEntryProps): Promise<void> {
  const ns = (await ctx.host.snapshot(scopeOf(p.netns))).namespaces[
    p.netns ?? ""
  ];
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

function explain(ctx: KindContext, p: FdbEntryProps, err: unknown): Error {
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

async function fdbOp(
  ctx: KindContext,
  p: FdbEntryProps,
  verb: "add" | "replace" | "del",
  port: string,
  what: string,
): Promise<void> {
  const tokens = [
    "fdb",
    verb,
    p.mac,
    "dev",
    port,
    "master",
    ...(verb === "del" ? [] : ["static"]),
    ...vlanTokens(p),
  ];
  await ctx.host.run({
    kind: "batch",
    tool: "bridge",
    netns: p.netns,
    lines: [batchLine(tokens)],
    what,
  });
}

/** Permanent neighbours on the bridge that carry this entry's MAC. */
async function liveNeighbours(
  ctx: KindContext,
  p: FdbEntryProps,
): Promise<string[]> {
  const ns = (await ctx.host.snapshot(scopeOf(p.netns))).namespaces[
    p.netns ?? ""
  ];
  return (ns?.neigh ?? [])
    .filter((n) => n.dev === p.bridge && n.lladdr === p.mac)
    .map((n) => n.dst)
    .sort();
}

async function setNeighbours(
  ctx: KindContext,
  p: FdbEntryProps,
  add: string[],
  del: string[],
): Promise<void> {
  const lines = [
    ...add.map((ip) =>
      batchLine([
        "neigh",
        "replace",
        ip,
        "lladdr",
        p.mac,
        "dev",
        p.bridge,
        "nud",
        "permanent",
      ]),
    ),
    ...del.map((ip) => batchLine(["neigh", "del", ip, "dev", p.bridge])),
  ];
  if (lines.length === 0) return;
  await ctx.host.run({
    kind: "batch",
    tool: "ip",
    netns: p.netns,
    lines,
    what: `publish ARP-suppression neighbours for ${where(p)}`,
  });
}

async function create(
  ctx: KindContext,
  p: FdbEntryProps,
): Promise<Record<string, unknown>> {
  await checkPort(ctx, p);
  try {
    await fdbOp(ctx, p, "add", p.port, `add ${where(p)} on port ${p.port}`);
  } catch (err) {
    if (!/File exists/.test(String(err))) throw explain(ctx, p, err);
    await takeOverLearned(ctx, p);
  }
  try {
    if (p.remote) await remoteOp(ctx, p, p.port, "replace");
    await setNeighbours(ctx, p, p.neighbours, []);
  } catch (err) {
    if (p.remote) await remoteOp(ctx, p, p.port, "del").catch(() => undefined);
    await fdbOp(ctx, p, "del", p.port, `remove half-made ${where(p)}`).catch(
      () => undefined,
    );
    throw err;
  }
  return {};
}

/** The vxlan device's own ("self") entry: where on the underlay the MAC is sent. */
async function remoteOp(
  ctx: KindContext,
  p: FdbEntryProps,
  port: string,
  verb: "replace" | "del",
): Promise<void> {
  const r = p.remote!;
  const tokens =
    verb === "del"
      ? ["fdb", "del", p.mac, "dev", port, "self"]
      : [
          "fdb",
          "replace",
          p.mac,
          "dev",
          port,
          "self",
          "dst",
          r.dst,
          ...(r.vni === undefined ? [] : ["vni", String(r.vni)]),
          "static",
        ];
  const what =
    verb === "del"
      ? `remove the underlay destination of ${where(p)} from ${port}`
      : `send ${p.mac} through ${port} to ${r.dst}`;
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "bridge",
      netns: p.netns,
      lines: [batchLine(tokens)],
      what,
    });
  } catch (err) {
    if (verb !== "del" || !isGone(err)) throw err;
  }
}

/** The live underlay destination of a remote entry (same shape as the input), if any. */
async function liveRemote(
  ctx: KindContext,
  p: FdbEntryProps,
  port: string,
): Promise<RemoteDst | undefined> {
  const ns = (await ctx.host.snapshot(scopeOf(p.netns))).namespaces[
    p.netns ?? ""
  ];
  const self = ns?.fdb.find(
    (r) =>
      r.mac === p.mac &&
      r.dev === port &&
      r.flags.includes("self") &&
      r.dst !== undefined,
  );
  if (!self?.dst) return undefined;
  const deviceVni = ns?.links.find((l) => l.name === port)?.vxlan?.vni;
  return {
    dst: self.dst,
    vni: p.remote?.vni === undefined ? undefined : (self.vni ?? deviceVni),
  };
}

/** A learned (dynamic) entry is the bridge's cache, not anyone's configuration: take it over. */
async function takeOverLearned(
  ctx: KindContext,
  p: FdbEntryProps,
): Promise<void> {
  if (await staticEntry(ctx, p)) {
    throw new Error(
      `${ctx.host.label}: ${where(p)} already exists as a static entry. To manage it with hostnet, set adopt: true on this FdbEntry.`,
    );
  }
  await fdbOp(
    ctx,
    p,
    "replace",
    p.port,
    `turn the learned ${where(p)} into a static entry on port ${p.port}`,
  );
}

/**
 * A VM moving between hosts turns a local entry into a remote one and back; a vxlan device that was
 * recreated lost both of its entries: the bridge's entry is (re)written too, `replace` being idempotent.
 */
async function updateRemote(
  ctx: KindContext,
  olds: FdbEntryProps,
  news: FdbEntryProps,
): Promise<void> {
  if (olds.remote && (!news.remote || olds.port !== news.port))
    await remoteOp(ctx, olds, olds.port, "del");
  if (
    !news.remote ||
    (JSON.stringify(olds.remote) === JSON.stringify(news.remote) &&
      olds.port === news.port)
  )
    return;
  if (olds.port === news.port) {
    await checkPort(ctx, news);
    await fdbOp(
      ctx,
      news,
      "replace",
      news.port,
      `point ${where(news)} at ${news.port}`,
    );
  }
  await remoteOp(ctx, news, news.port, "replace");
}

/**
 * An entry cannot carry a mark: it is ours when it is static, on the declared port, and that port
 * carries a mark of this stack (ownership.ts). Learned entries count as absent (create takes them over).
 */
async function find(ctx: KindContext, p: FdbEntryProps): Promise<Finding> {
  const snap = await ctx.host.snapshot(scopeOf(p.netns));
  const row = fdbRows(ctx, snap, p)?.find((r) => isManagedRow(r, p));
  if (!row || row.state !== "static") return ABSENT;
  const port = snap.namespaces[p.netns ?? ""]?.links.find(
    (l) => l.name === row.dev,
  );
  const verdict =
    row.dev === p.port ? judgeMark(port?.alias, ctx.owner) : "none";
  return { present: true, verdict: verdict === "stack" ? "mine" : verdict };
}

export const fdbEntryKind: ResourceKind<typeof FdbEntryProps> = {
  type: "FdbEntry",
  schema: FdbEntryProps,
  replaceOn: ["bridge", "mac", "netns", "vlan"],
  addressUses: (p) =>
    p.neighbours.map((value, i) => ({
      path: `neighbours[${i}]`,
      value,
      kind: "address" as const,
      rootNs: !p.netns,
    })),
  id: (p) =>
    `fdb/${p.netns ?? "-"}/${p.bridge}/${p.mac}${p.vlan === undefined ? "" : `/vlan${p.vlan}`}`,

  create,
  find,

  async read(ctx, p) {
    const row = await staticEntry(ctx, p);
    if (!row) return null;
    const live = await liveNeighbours(ctx, p);
    // Exclusive: extra neighbours with this MAC show in the list, stranger fdb entries flip `exclusive`.
    const extra = p.exclusive
      ? live.filter((ip) => !p.neighbours.includes(ip))
      : [];
    const exclusive = p.exclusive
      ? (await strangers(ctx, p)).length === 0
      : p.exclusive;
    const remote = p.remote ? await liveRemote(ctx, p, row.dev) : undefined;
    const neighbours = [
      ...p.neighbours.filter((ip) => live.includes(ip)),
      ...extra,
    ];
    return {
      bridge: p.bridge,
      port: row.dev,
      mac: p.mac,
      netns: p.netns,
      vlan: p.vlan,
      neighbours,
      exclusive,
      remote,
    };
  },

  async update(ctx, olds, news) {
    if (olds.port !== news.port) {
      await checkPort(ctx, news);
      await fdbOp(
        ctx,
        news,
        "replace",
        news.port,
        `move ${where(news)} from port ${olds.port} to ${news.port}`,
      );
    }
    await updateRemote(ctx, olds, news);
    const live = await liveNeighbours(ctx, news);
    const add = news.neighbours.filter((ip) => !live.includes(ip));
    const del = olds.neighbours.filter(
      (ip) => !news.neighbours.includes(ip) && live.includes(ip),
    );
    await setNeighbours(ctx, news, add, del);
    if (news.exclusive) await removeStrangers(ctx, news);
    return {};
  },

  async delete(ctx, p) {
    if (p.remote) await remoteOp(ctx, p, p.port, "del");
    const row = await staticEntry(ctx, p);
    // Only the static entry is ours: a learned or local (permanent) one for this MAC is left alone.
    if (!row || row.state !== "static") return;
    const live = await liveNeighbours(ctx, p);
    await setNeighbours(
      ctx,
      p,
      [],
      p.neighbours.filter((ip) => live.includes(ip)),
    ).catch((err) => {
      if (!isGone(err)) throw err;
    });
    try {
      await fdbOp(
        ctx,
        p,
        "del",
        row.dev,
        `delete ${where(p)} (port ${row.dev})`,
      );
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};

export interface FdbEntryArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof FdbEntryProps>>> {
  bridge: pulumi.Input<string>;
  port: pulumi.Input<string>;
  mac: pulumi.Input<string>;
}

/** A static fdb entry: `mac` lives behind `port` of `bridge`. */
export class FdbEntry extends HostnetResource {
  declare readonly bridge: pulumi.Output<string>;
  declare readonly port: pulumi.Output<string>;
  declare readonly mac: pulumi.Output<string>;
  declare readonly netns: pulumi.Output<string | undefined>;
  declare readonly vlan: pulumi.Output<number | undefined>;
  constructor(
    name: string,
    args: FdbEntryArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("FdbEntry", name, args, opts);
  }
}
