// HostBridge: a Linux bridge in the root namespace or in a named one, optionally with an existing
// interface (the uplink) enslaved to it. Enslaving the interface that carries the SSH session would
// cut hostnet off from the host mid-change, so that is refused until the commit-confirm path exists.
import * as pulumi from "@pulumi/pulumi";
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "./dynamic";
import { findLink, HostSnapshot, Link, ROOT_NS } from "./hoststate";
import { KindContext, ResourceKind } from "./kind";
import { isGone, OWNER_ALIAS } from "./ownership";
import { batchLine } from "./shell";
import { IfName, MacAddress, NetnsName } from "./validate";

/** Kernel limit of forward_delay while STP runs (BR_MIN/MAX_FORWARD_DELAY, 2–30 s). */
const STP_FORWARD_DELAY = { min: 200, max: 3000 };

export const HostBridgeProps = z.object({
  name: IfName,
  /** Namespace the bridge lives in; absent = the root namespace. */
  netns: NetnsName.optional(),
  stp: z.boolean().default(false),
  /** Centiseconds, as ip-link takes them (1500 = 15 s). */
  forwardDelay: z.number().int().min(0).max(STP_FORWARD_DELAY.max, "forwardDelay is in centiseconds and the kernel caps it at 3000 (30 s)").optional(),
  /** Centiseconds; the kernel reads it back up to 1 off (jiffies rounding), so ±1 is not drift. */
  ageingTime: z.number().int().min(0).max(100_000_000, "ageingTime is in centiseconds; at most 100000000 (about 11 days)").optional(),
  mcastSnooping: z.boolean().optional(),
  /** Passed to the kernel only when set: some kernels refuse the attribute even as 0. */
  vlanFiltering: z.boolean().optional(),
  mtu: z.number().int().min(68, "mtu must be at least 68 bytes (the IPv4 minimum)").max(65535, "mtu must be at most 65535 bytes").optional(),
  mac: MacAddress.optional(),
  up: z.boolean().default(true),
  /** An existing interface in the same namespace to enslave; released (never deleted) when dropped. */
  uplink: IfName.optional(),
  /** Output only: the uplink hostnet itself enslaved (so releasing an adopted bridge undoes only that). */
  managedUplink: IfName.optional(),
});
export type HostBridgeProps = z.infer<typeof HostBridgeProps>;

type P = HostBridgeProps;

const nsOf = (p: P): string => p.netns ?? ROOT_NS;
const where = (p: P): string => (p.netns ? `netns ${p.netns}` : "the root namespace");
const flag = (b: boolean): string => (b ? "1" : "0");

/** Within ±1 centisecond the kernel's read-back is what the user asked for. */
function closeTo(live: number, want: number | undefined): number {
  return want !== undefined && Math.abs(live - want) <= 1 ? want : live;
}

/** `type bridge` attributes for the given options; unset ones are left as the kernel has them. */
function bridgeTokens(o: Partial<P>): string[] {
  const t: string[] = [];
  if (o.stp !== undefined) t.push("stp_state", flag(o.stp));
  if (o.forwardDelay !== undefined) t.push("forward_delay", String(o.forwardDelay));
  if (o.ageingTime !== undefined) t.push("ageing_time", String(o.ageingTime));
  if (o.mcastSnooping !== undefined) t.push("mcast_snooping", flag(o.mcastSnooping));
  if (o.vlanFiltering !== undefined) t.push("vlan_filtering", flag(o.vlanFiltering));
  return t;
}

function linkTokens(o: Partial<P>): string[] {
  const t: string[] = [];
  if (o.mtu !== undefined) t.push("mtu", String(o.mtu));
  if (o.mac !== undefined) t.push("address", o.mac);
  return t;
}

/** The live values of the compared props (only those the user set), as read() reports them. */
function liveProps(p: P, link: Link, ns: Link[]): Record<string, unknown> {
  const b = link.bridge;
  const uplink = p.uplink !== undefined && ns.find((l) => l.name === p.uplink)?.master === p.name ? p.uplink : undefined;
  return {
    name: p.name,
    netns: p.netns,
    stp: b?.stp ?? false,
    forwardDelay: p.forwardDelay === undefined || !b ? undefined : closeTo(b.forwardDelay, p.forwardDelay),
    ageingTime: p.ageingTime === undefined || !b ? undefined : closeTo(b.ageingTime, p.ageingTime),
    mcastSnooping: p.mcastSnooping === undefined ? undefined : b?.mcastSnooping,
    vlanFiltering: p.vlanFiltering === undefined ? undefined : (b?.vlanFiltering ?? false),
    mtu: p.mtu === undefined ? undefined : link.mtu,
    mac: p.mac === undefined ? undefined : link.mac,
    up: link.adminUp,
    uplink,
  };
}

function linksOf(snap: HostSnapshot, p: P): Link[] {
  return snap.namespaces[nsOf(p)]?.links ?? [];
}

function bridgeLink(ctx: KindContext, snap: HostSnapshot, p: P): Link | undefined {
  const link = findLink(snap, nsOf(p), p.name);
  if (link && link.kind !== "bridge") {
    throw new Error(
      `${ctx.host.label} (${where(p)}): ${p.name} exists but is a ${link.infoKind ?? link.kind}, not a bridge. ` +
        `Rename the HostBridge or remove that interface by hand.`,
    );
  }
  return link;
}

// ------------------------------------------------------------------ management path

/** Addresses the SSH session reaches the host by (connection.host, resolved when it is a name). */
async function managementAddresses(ctx: KindContext): Promise<string[]> {
  const host = ctx.host.session.conn.host;
  if (isIP(host)) return [host];
  const found = await dns.lookup(host, { all: true }).catch(() => []);
  return found.map((a) => a.address);
}

function carries(link: Link | undefined, addrs: string[]): string | undefined {
  return link?.addresses.map((c) => c.split("/")[0]).find((a) => addrs.includes(a));
}

/** Why detaching or re-attaching `ifname` would cut the SSH session, or undefined when it would not. */
function managementUse(links: Link[], ifname: string, addrs: string[]): string | undefined {
  const link = links.find((l) => l.name === ifname);
  const own = carries(link, addrs);
  if (own) return `${ifname} carries ${own}, the address this SSH connection uses`;
  const master = link?.master ? links.find((l) => l.name === link.master) : undefined;
  const via = carries(master, addrs);
  return via ? `${ifname} is a port of ${master!.name}, which carries ${via}, the address this SSH connection uses` : undefined;
}

function refuseManagement(ctx: KindContext, p: P, action: string, reason: string): never {
  throw new Error(
    `${ctx.host.label} (${where(p)}): refusing to ${action}: ${reason}, so doing it would cut SSH to the host ` +
      `half-way through the change. Nothing was changed. This needs the safe-apply (commit-confirm) path, which ` +
      `hostnet does not have yet: do it from a console, or choose an uplink that does not carry the management path.`,
  );
}

/** The uplink must exist here, be free (or already ours), and not carry the management path. */
function checkUplink(ctx: KindContext, p: P, links: Link[], addrs: string[]): void {
  const up = p.uplink!;
  const link = links.find((l) => l.name === up);
  if (!link) {
    throw new Error(`${ctx.host.label} (${where(p)}): uplink ${up} of bridge ${p.name} does not exist there. Create it first, or fix uplink.`);
  }
  if (link.master === p.name) return;
  if (link.master) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): uplink ${up} is already a port of ${link.master}; hostnet will not take it away. ` +
        `Release it (ip link set ${up} nomaster) or choose another uplink.`,
    );
  }
  const reason = managementUse(links, up, addrs);
  if (reason) refuseManagement(ctx, p, `enslave ${up} to bridge ${p.name}`, reason);
}

// ------------------------------------------------------------------ host operations

function ipBatch(ctx: KindContext, p: P, lines: string[], what: string): Promise<string> {
  return ctx.host.run({ kind: "batch", tool: "ip", netns: p.netns, lines, what });
}

/** The kernel's bare "Operation not supported" for vlan_filtering, said so an operator can act on it. */
function explainVlanFiltering(ctx: KindContext, p: P, err: unknown): unknown {
  if (p.vlanFiltering === undefined || !/Operation not supported/.test(String(err))) return err;
  return new Error(
    `${ctx.host.label} (${where(p)}): the kernel refuses vlan_filtering on bridge ${p.name} ("Operation not supported"): ` +
      `it was built without CONFIG_BRIDGE_VLAN_FILTERING. Remove vlanFiltering from this HostBridge or use a kernel that has it.\n${String(err)}`,
  );
}

async function removeHalfMade(ctx: KindContext, p: P): Promise<void> {
  try {
    await ipBatch(ctx, p, [batchLine(["link", "del", p.name])], `remove half-made bridge ${p.name}`);
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

/** mtu and address go into `link add` so a bad value fails before anything exists; alias cannot. */
function createLines(p: P): string[] {
  const lines = [
    batchLine(["link", "add", p.name, ...linkTokens(p), "type", "bridge", ...bridgeTokens(p)]),
    batchLine(["link", "set", p.name, "alias", OWNER_ALIAS]),
  ];
  if (p.up) lines.push(batchLine(["link", "set", p.name, "up"]));
  return lines;
}

async function addBridge(ctx: KindContext, p: P): Promise<void> {
  try {
    await ipBatch(ctx, p, createLines(p), `create bridge ${p.name}`);
  } catch (err) {
    if (/File exists/.test(String(err))) throw adoptHint(ctx, p);
    await removeHalfMade(ctx, p);
    throw explainVlanFiltering(ctx, p, err);
  }
}

function adoptHint(ctx: KindContext, p: P): Error {
  return new Error(`${ctx.host.label} (${where(p)}): bridge ${p.name} already exists. To manage it with hostnet, set adopt: true on this HostBridge.`);
}

// ------------------------------------------------------------------ update planning

const BRIDGE_KEYS = ["stp", "forwardDelay", "ageingTime", "mcastSnooping", "vlanFiltering"] as const;
const LINK_KEYS = ["mtu", "mac"] as const;

/** Only the props that are set and differ from what the kernel has now. */
function differing<K extends keyof P>(keys: readonly K[], news: P, live: Record<string, unknown>): Partial<P> {
  const out: Partial<P> = {};
  for (const k of keys) if (news[k] !== undefined && news[k] !== live[k]) out[k] = news[k];
  return out;
}

/** Lines for the uplink change; the old one is released only while it is still our port. */
function uplinkLines(olds: P, news: P, links: Link[]): string[] {
  const lines: string[] = [];
  const masterOf = (n: string) => links.find((l) => l.name === n)?.master;
  if (olds.uplink && olds.uplink !== news.uplink && masterOf(olds.uplink) === news.name) {
    lines.push(batchLine(["link", "set", olds.uplink, "nomaster"]));
  }
  if (news.uplink && masterOf(news.uplink) !== news.name) lines.push(batchLine(["link", "set", news.uplink, "master", news.name]));
  return lines;
}

function updateLines(olds: P, news: P, live: Record<string, unknown>, links: Link[]): string[] {
  const lines: string[] = [];
  const bridge = bridgeTokens(differing(BRIDGE_KEYS, news, live));
  if (bridge.length > 0) lines.push(batchLine(["link", "set", news.name, "type", "bridge", ...bridge]));
  const link = linkTokens(differing(LINK_KEYS, news, live));
  if (link.length > 0) lines.push(batchLine(["link", "set", news.name, ...link]));
  lines.push(...uplinkLines(olds, news, links));
  if (news.up !== live.up) lines.push(batchLine(["link", "set", news.name, news.up ? "up" : "down"]));
  return lines;
}

function checkUplinkChange(ctx: KindContext, olds: P, news: P, links: Link[], addrs: string[]): void {
  if (news.uplink) checkUplink(ctx, news, links, addrs);
  const old = olds.uplink;
  if (!old || old === news.uplink || links.find((l) => l.name === old)?.master !== news.name) return;
  const reason = managementUse(links, old, addrs);
  if (reason) refuseManagement(ctx, news, `release ${old} from bridge ${news.name}`, reason);
}

/** Which uplink hostnet has enslaved after an update (an adopted bridge's own port is not ours). */
function managedAfter(olds: P, news: P, links: Link[]): string | undefined {
  if (!news.uplink) return undefined;
  const alreadyOurs = links.find((l) => l.name === news.uplink)?.master === news.name;
  return !alreadyOurs || olds.managedUplink === news.uplink ? news.uplink : undefined;
}

/** Detach our uplink (when still attached here) and optionally the bridge, in one step. */
async function detach(ctx: KindContext, p: P, uplink: string | undefined, deleteBridge: boolean): Promise<void> {
  const snap = await ctx.host.snapshot();
  const links = linksOf(snap, p);
  const lines: string[] = [];
  if (uplink && links.find((l) => l.name === uplink)?.master === p.name) {
    const reason = managementUse(links, uplink, await managementAddresses(ctx));
    if (reason) refuseManagement(ctx, p, `release ${uplink} from bridge ${p.name}`, reason);
    lines.push(batchLine(["link", "set", uplink, "nomaster"]));
  }
  if (deleteBridge) lines.push(batchLine(["link", "del", p.name]));
  if (lines.length === 0) return;
  try {
    await ipBatch(ctx, p, lines, deleteBridge ? `delete bridge ${p.name}` : `release uplink ${uplink} from bridge ${p.name}`);
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

export const hostBridgeKind: ResourceKind<typeof HostBridgeProps> = {
  type: "HostBridge",
  schema: HostBridgeProps,
  replaceOn: ["name", "netns"],
  compared: ["name", "netns", "stp", "forwardDelay", "ageingTime", "mcastSnooping", "vlanFiltering", "mtu", "mac", "up", "uplink"],
  id: (p) => `bridge/${p.netns ?? "-"}/${p.name}`,

  validate(p) {
    const issues: Array<[string, string]> = [];
    if (p.managedUplink !== undefined) issues.push(["managedUplink", "is an output that hostnet sets; remove it from the inputs"]);
    if (p.uplink === p.name) issues.push(["uplink", `a bridge cannot be its own uplink (${p.name})`]);
    if (p.stp && p.forwardDelay !== undefined && p.forwardDelay < STP_FORWARD_DELAY.min) {
      issues.push(["forwardDelay", `with stp on the kernel needs ${STP_FORWARD_DELAY.min}–${STP_FORWARD_DELAY.max} centiseconds (2–30 s), got ${p.forwardDelay}`]);
    }
    return issues;
  },

  async create(ctx, p) {
    const snap = await ctx.host.snapshot();
    if (bridgeLink(ctx, snap, p)) throw adoptHint(ctx, p);
    if (p.uplink) checkUplink(ctx, p, linksOf(snap, p), await managementAddresses(ctx));
    await addBridge(ctx, p);
    if (!p.uplink) return {};
    try {
      await ipBatch(ctx, p, [batchLine(["link", "set", p.uplink, "master", p.name])], `enslave uplink ${p.uplink} to bridge ${p.name}`);
    } catch (err) {
      await removeHalfMade(ctx, p);
      throw err;
    }
    return { managedUplink: p.uplink };
  },

  async read(ctx, p) {
    const snap = await ctx.host.snapshot();
    const link = bridgeLink(ctx, snap, p);
    return link ? liveProps(p, link, linksOf(snap, p)) : null;
  },

  async update(ctx, olds, news) {
    const snap = await ctx.host.snapshot();
    const link = bridgeLink(ctx, snap, news);
    if (!link) {
      throw new Error(`${ctx.host.label} (${where(news)}): bridge ${news.name} is gone. Run pulumi up --refresh (or pulumi refresh, then up) to recreate it.`);
    }
    const links = linksOf(snap, news);
    if (news.uplink || olds.uplink) checkUplinkChange(ctx, olds, news, links, await managementAddresses(ctx));
    const lines = updateLines(olds, news, liveProps(news, link, links), links);
    if (lines.length > 0) {
      try {
        await ipBatch(ctx, news, lines, `update bridge ${news.name}`);
      } catch (err) {
        throw explainVlanFiltering(ctx, news, err);
      }
    }
    return { managedUplink: managedAfter(olds, news, links) };
  },

  async delete(ctx, p) {
    const link = bridgeLink(ctx, await ctx.host.snapshot(), p);
    if (!link) return;
    if (link.alias !== OWNER_ALIAS) {
      throw new Error(
        `${ctx.host.label} (${where(p)}): bridge ${p.name} does not carry the hostnet alias, so hostnet did not create it; ` +
          `not deleting it. Delete it by hand if it should go, then drop it from the state (pulumi state delete).`,
      );
    }
    const own = carries(link, await managementAddresses(ctx));
    if (own) refuseManagement(ctx, p, `delete bridge ${p.name}`, `${p.name} carries ${own}, the address this SSH connection uses`);
    await detach(ctx, p, p.uplink, true);
  },

  /** An adopted bridge stays; only an uplink that hostnet itself enslaved is let go. */
  async release(ctx, p) {
    if (p.managedUplink) await detach(ctx, p, p.managedUplink, false);
  },
};

export interface HostBridgeArgs extends CommonArgs, Partial<Inputs<Omit<z.input<typeof HostBridgeProps>, "managedUplink">>> {
  name: pulumi.Input<string>;
}

/** A Linux bridge, optionally with an existing interface enslaved as its uplink. */
export class HostBridge extends HostnetResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly netns: pulumi.Output<string | undefined>;
  declare readonly stp: pulumi.Output<boolean>;
  declare readonly forwardDelay: pulumi.Output<number | undefined>;
  declare readonly ageingTime: pulumi.Output<number | undefined>;
  declare readonly mcastSnooping: pulumi.Output<boolean | undefined>;
  declare readonly vlanFiltering: pulumi.Output<boolean | undefined>;
  declare readonly mtu: pulumi.Output<number | undefined>;
  declare readonly mac: pulumi.Output<string | undefined>;
  declare readonly up: pulumi.Output<boolean>;
  declare readonly uplink: pulumi.Output<string | undefined>;
  /** The uplink hostnet enslaved itself (undone on delete or release). */
  declare readonly managedUplink: pulumi.Output<string | undefined>;
  constructor(name: string, args: HostBridgeArgs, opts?: pulumi.CustomResourceOptions) {
    // Listed so the engine exposes it as an output; the provider fills it in.
    super("HostBridge", name, { ...args, managedUplink: undefined } as HostBridgeArgs, opts);
  }
}
