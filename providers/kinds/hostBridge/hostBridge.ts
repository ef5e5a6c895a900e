// HostBridge: a Linux bridge in the root namespace or in a named one, optionally with an existing
// interface (the uplink) enslaved to it. Enslaving (or releasing) the interface that carries the SSH
// session would cut hostnet off from the host mid-change: that is refused unless safeApply is set,
// and then done with commit-confirm (safeApply.ts), moving the uplink's IPv4 addresses and routes
// onto the bridge (and back) in the same step, with the bridge taking the uplink's MAC so the
// neighbours' ARP caches stay right.
import { scopeOf } from "../../host";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { findLink, HostSnapshot, Link, ROOT_NS, RouteRow } from "../../state";
import { KindContext, ResourceKind } from "../kind";
import {
  ABSENT,
  found,
  isGone,
  isHostnetMark,
  OWNER_ALIAS,
  ownerMark,
} from "../../state";
import { commitConfirm, ipBatchLine } from "../../host";
import { batchLine } from "../../transport";
import { IfName, MacAddress, NetnsName } from "../../schema";

/** Kernel limit of forward_delay while STP runs (BR_MIN/MAX_FORWARD_DELAY, 2–30 s). */
const STP_FORWARD_DELAY = { min: 200, max: 3000 };

export const HostBridgeProps = z.object({
  name: IfName,
  /** Namespace the bridge lives in; absent = the root namespace. */
  netns: NetnsName.optional(),
  stp: z.boolean().default(false),
  /** Centiseconds, as ip-link takes them (1500 = 15 s). */
  forwardDelay: z
    .number()
    .int()
    .min(0)
    .max(
      STP_FORWARD_DELAY.max,
      "forwardDelay is in centiseconds and the kernel caps it at 3000 (30 s)",
    )
    .optional(),
  /** Centiseconds; the kernel reads it back up to 1 off (jiffies rounding), so ±1 is not drift. */
  ageingTime: z
    .number()
    .int()
    .min(0)
    .max(
      100_000_000,
      "ageingTime is in centiseconds; at most 100000000 (about 11 days)",
    )
    .optional(),
  mcastSnooping: z.boolean().optional(),
  /** Passed to the kernel only when set: some kernels refuse the attribute even as 0. */
  vlanFiltering: z.boolean().optional(),
  mtu: z
    .number()
    .int()
    .min(68, "mtu must be at least 68 bytes (the IPv4 minimum)")
    .max(65535, "mtu must be at most 65535 bytes")
    .optional(),
  mac: MacAddress.optional(),
  up: z.boolean().default(true),
  /** An existing interface in the same namespace to enslave; released (never deleted) when dropped. */
  uplink: IfName.optional(),
  /** Output only: the uplink hostnet itself enslaved (so releasing an adopted bridge undoes only that). */
  managedUplink: IfName.optional(),
  /**
   * Enslave or release an uplink that carries the SSH management address with commit-confirm: its
   * IPv4 addresses and routes move with it, and the host reverts by itself unless hostnet can
   * confirm over a new SSH session within confirmTimeoutSeconds. Also guards any other change to a
   * bridge that carries the management address (mtu, mac, up, ...). Without it such uplinks are refused.
   */
  safeApply: z.boolean().default(false),
  confirmTimeoutSeconds: z
    .number()
    .int()
    .min(
      5,
      "confirmTimeoutSeconds must be at least 5 (hostnet needs time to reconnect and confirm)",
    )
    .max(
      3600,
      "confirmTimeoutSeconds must be at most 3600 (an hour without management access is long enough)",
    )
    .default(60),
});
export type HostBridgeProps = z.infer<typeof HostBridgeProps>;

type P = HostBridgeProps;

const nsOf = (p: P): string => p.netns ?? ROOT_NS;
const where = (p: P): string =>
  p.netns ? `netns ${p.netns}` : "the root namespace";
const flag = (b: boolean): string => (b ? "1" : "0");

/** Within ±1 centisecond the kernel's read-back is what the user asked for. */
function closeTo(live: number, want: number | undefined): number {
  return want !== undefined && Math.abs(live - want) <= 1 ? want : live;
}

/** `type bridge` attributes for the given options; unset ones are left as the kernel has them. */
function bridgeTokens(o: Partial<P>): string[] {
  const t: string[] = [];
  if (o.stp !== undefined) t.push("stp_state", flag(o.stp));
  if (o.forwardDelay !== undefined)
    t.push("forward_delay", String(o.forwardDelay));
  if (o.ageingTime !== undefined) t.push("ageing_time", String(o.ageingTime));
  if (o.mcastSnooping !== undefined)
    t.push("mcast_snooping", flag(o.mcastSnooping));
  if (o.vlanFiltering !== undefined)
    t.push("vlan_filtering", flag(o.vlanFiltering));
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
  const uplink =
    p.uplink !== undefined &&
    ns.find((l) => l.name === p.uplink)?.master === p.name
      ? p.uplink
      : undefined;
  return {
    name: p.name,
    netns: p.netns,
    stp: b?.stp ?? false,
    forwardDelay:
      p.forwardDelay === undefined || !b
        ? undefined
        : closeTo(b.forwardDelay, p.forwardDelay),
    ageingTime:
      p.ageingTime === undefined || !b
        ? undefined
        : closeTo(b.ageingTime, p.ageingTime),
    mcastSnooping: p.mcastSnooping === undefined ? undefined : b?.mcastSnooping,
    vlanFiltering:
      p.vlanFiltering === undefined ? undefined : (b?.vlanFiltering ?? false),
    mtu: p.mtu === undefined ? undefined : link.mtu,
    mac: p.mac === undefined ? undefined : link.mac,
    up: link.adminUp,
    uplink,
    // How hostnet applies changes, not kernel state: echoed so that refresh never sees drift.
    safeApply: p.safeApply,
    confirmTimeoutSeconds: p.confirmTimeoutSeconds,
  };
}

function linksOf(snap: HostSnapshot, p: P): Link[] {
  return snap.namespaces[nsOf(p)]?.links ?? [];
}

function bridgeLink(
  ctx: KindContext,
  snap: HostSnapshot,
  p: P,
): Link | undefined {
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
  return link?.addresses
    .map((c) => c.split("/")[0])
    .find((a) => addrs.includes(a));
}

/** Why detaching or re-attaching `ifname` would cut the SSH session, or undefined when it would not. */
function managementUse(
  links: Link[],
  ifname: string,
  addrs: string[],
): string | undefined {
  const link = links.find((l) => l.name === ifname);
  const own = carries(link, addrs);
  if (own)
    return `${ifname} carries ${own}, the address this SSH connection uses`;
  const master = link?.master
    ? links.find((l) => l.name === link.master)
    : undefined;
  const via = carries(master, addrs);
  return via
    ? `${ifname} is a port of ${master!.name}, which carries ${via}, the address this SSH connection uses`
    : undefined;
}

function refuseManagement(
  ctx: KindContext,
  p: P,
  action: string,
  reason: string,
  extra = "",
): never {
  throw new Error(
    `${ctx.host.label} (${where(p)}): refusing to ${action}: ${reason}, so doing it would cut SSH to the host ` +
      `half-way through the change. Nothing was changed. This needs the safe-apply (commit-confirm) path: set ` +
      `safeApply: true to do this with commit-confirm (the addresses and routes move with it, and the host reverts by ` +
      `itself unless hostnet reconnects and confirms within confirmTimeoutSeconds), or do it from a console, or choose ` +
      `an uplink that does not carry the management path.${extra}`,
  );
}

/**
 * The uplink must exist here and be free (or already ours). Returns why enslaving it touches the
 * management path (allowed only with safeApply), or undefined when it does not.
 */
function checkUplink(
  ctx: KindContext,
  p: P,
  links: Link[],
  addrs: string[],
): string | undefined {
  const up = p.uplink!;
  const link = links.find((l) => l.name === up);
  if (!link) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): uplink ${up} of bridge ${p.name} does not exist there. Create it first, or fix uplink.`,
    );
  }
  if (link.master === p.name) return undefined;
  if (link.master) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): uplink ${up} is already a port of ${link.master}; hostnet will not take it away. ` +
        `Release it (ip link set ${up} nomaster) or choose another uplink.`,
    );
  }
  const reason = managementUse(links, up, addrs);
  if (reason && !p.safeApply)
    refuseManagement(ctx, p, `enslave ${up} to bridge ${p.name}`, reason);
  return reason;
}

// ------------------------------------------------------------------ host operations

function ipBatch(
  ctx: KindContext,
  p: P,
  lines: string[],
  what: string,
): Promise<string> {
  return ctx.host.run({
    kind: "batch",
    tool: "ip",
    netns: p.netns,
    lines,
    what,
  });
}

/** The kernel's bare "Operation not supported" for vlan_filtering, said so an operator can act on it. */
function explainVlanFiltering(ctx: KindContext, p: P, err: unknown): unknown {
  if (
    p.vlanFiltering === undefined ||
    !/Operation not supported/.test(String(err))
  )
    return err;
  return new Error(
    `${ctx.host.label} (${where(p)}): the kernel refuses vlan_filtering on bridge ${p.name} ("Operation not supported"): ` +
      `it was built without CONFIG_BRIDGE_VLAN_FILTERING. Remove vlanFiltering from this HostBridge or use a kernel that has it.\n${String(err)}`,
  );
}

async function removeHalfMade(ctx: KindContext, p: P): Promise<void> {
  try {
    await ipBatch(
      ctx,
      p,
      [batchLine(["link", "del", p.name])],
      `remove half-made bridge ${p.name}`,
    );
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

/** mtu and address go into `link add` so a bad value fails before anything exists; alias cannot. */
function createTokens(p: P, mark = OWNER_ALIAS): string[][] {
  const lines = [
    [
      "link",
      "add",
      p.name,
      ...linkTokens(p),
      "type",
      "bridge",
      ...bridgeTokens(p),
    ],
    ["link", "set", p.name, "alias", mark],
  ];
  if (p.up) lines.push(["link", "set", p.name, "up"]);
  return lines;
}

function createLines(p: P, mark: string): string[] {
  return createTokens(p, mark).map((t) => batchLine(t));
}

async function addBridge(ctx: KindContext, p: P): Promise<void> {
  try {
    await ipBatch(
      ctx,
      p,
      createLines(p, ownerMark(ctx.owner)),
      `create bridge ${p.name}`,
    );
  } catch (err) {
    if (/File exists/.test(String(err))) throw adoptHint(ctx, p);
    await removeHalfMade(ctx, p);
    throw explainVlanFiltering(ctx, p, err);
  }
}

function adoptHint(ctx: KindContext, p: P): Error {
  return new Error(
    `${ctx.host.label} (${where(p)}): bridge ${p.name} already exists. To manage it with hostnet, set adopt: true on this HostBridge.`,
  );
}

// ------------------------------------------------------------------ update planning

const BRIDGE_KEYS = [
  "stp",
  "forwardDelay",
  "ageingTime",
  "mcastSnooping",
  "vlanFiltering",
] as const;
const LINK_KEYS = ["mtu", "mac"] as const;

/** Only the props that are set and differ from what the kernel has now. */
function differing<K extends keyof P>(
  keys: readonly K[],
  news: P,
  live: Record<string, unknown>,
): Partial<P> {
  const out: Partial<P> = {};
  for (const k of keys)
    if (news[k] !== undefined && news[k] !== live[k]) out[k] = news[k];
  return out;
}

/** Lines for the uplink change; the old one is released only while it is still our port. */
function uplinkLines(olds: P, news: P, links: Link[]): string[] {
  const lines: string[] = [];
  const masterOf = (n: string) => links.find((l) => l.name === n)?.master;
  if (
    olds.uplink &&
    olds.uplink !== news.uplink &&
    masterOf(olds.uplink) === news.name
  ) {
    lines.push(batchLine(["link", "set", olds.uplink, "nomaster"]));
  }
  if (news.uplink && masterOf(news.uplink) !== news.name)
    lines.push(batchLine(["link", "set", news.uplink, "master", news.name]));
  return lines;
}

function updateLines(
  olds: P,
  news: P,
  live: Record<string, unknown>,
  links: Link[],
): string[] {
  const lines: string[] = [];
  const bridge = bridgeTokens(differing(BRIDGE_KEYS, news, live));
  if (bridge.length > 0)
    lines.push(
      batchLine(["link", "set", news.name, "type", "bridge", ...bridge]),
    );
  const link = linkTokens(differing(LINK_KEYS, news, live));
  if (link.length > 0)
    lines.push(batchLine(["link", "set", news.name, ...link]));
  lines.push(...uplinkLines(olds, news, links));
  if (news.up !== live.up)
    lines.push(batchLine(["link", "set", news.name, news.up ? "up" : "down"]));
  return lines;
}

/** Whether the uplink change touches the management path (refused here unless safeApply). */
function checkUplinkChange(
  ctx: KindContext,
  olds: P,
  news: P,
  links: Link[],
  addrs: string[],
): boolean {
  const enslaving = news.uplink
    ? checkUplink(ctx, news, links, addrs) !== undefined
    : false;
  const old = olds.uplink;
  if (
    !old ||
    old === news.uplink ||
    links.find((l) => l.name === old)?.master !== news.name
  )
    return enslaving;
  const reason = managementUse(links, old, addrs);
  if (reason && !news.safeApply)
    refuseManagement(
      ctx,
      news,
      `release ${old} from bridge ${news.name}`,
      reason,
    );
  return enslaving || reason !== undefined;
}

/** Which uplink hostnet has enslaved after an update (an adopted bridge's own port is not ours). */
function managedAfter(olds: P, news: P, links: Link[]): string | undefined {
  if (!news.uplink) return undefined;
  const alreadyOurs =
    links.find((l) => l.name === news.uplink)?.master === news.name;
  return !alreadyOurs || olds.managedUplink === news.uplink
    ? news.uplink
    : undefined;
}

/** Detach our uplink (when still attached here) and optionally the bridge, in one step. */
async function detach(
  ctx: KindContext,
  p: P,
  uplink: string | undefined,
  deleteBridge: boolean,
): Promise<void> {
  const snap = await ctx.host.snapshot(scopeOf(p.netns));
  const links = linksOf(snap, p);
  const lines: string[] = [];
  if (uplink && links.find((l) => l.name === uplink)?.master === p.name) {
    const reason = managementUse(links, uplink, await managementAddresses(ctx));
    if (reason)
      refuseManagement(
        ctx,
        p,
        `release ${uplink} from bridge ${p.name}`,
        reason,
      );
    lines.push(batchLine(["link", "set", uplink, "nomaster"]));
  }
  if (deleteBridge) lines.push(batchLine(["link", "del", p.name]));
  if (lines.length === 0) return;
  try {
    await ipBatch(
      ctx,
      p,
      lines,
      deleteBridge
        ? `delete bridge ${p.name}`
        : `release uplink ${uplink} from bridge ${p.name}`,
    );
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

// ------------------------------------------------------------------ safe apply (commit-confirm)

/** What follows the management path between uplink and bridge: IPv4 addresses and main-table routes via the device. */
interface PathState {
  addrs: string[];
  routes: RouteRow[];
}

function pathOn(snap: HostSnapshot, p: P, dev: string): PathState {
  const ns = snap.namespaces[nsOf(p)];
  const link = ns?.links.find((l) => l.name === dev);
  // Kernel prefix routes come back by themselves with the address; multipath ones are left alone.
  const movable = (r: RouteRow) =>
    r.family === 4 &&
    r.dev === dev &&
    r.protocol !== "kernel" &&
    r.type === "unicast" &&
    !r.nexthops &&
    (r.table ?? "main") === "main";
  return {
    addrs: (link?.addresses ?? []).filter((a) => isIP(a.split("/")[0]) === 4),
    routes: (ns?.routes ?? []).filter(movable),
  };
}

function routeTokens(r: RouteRow, dev: string): string[] {
  const t = ["route", "replace", r.dst];
  if (r.gateway) t.push("via", r.gateway);
  t.push("dev", dev);
  if (r.protocol) t.push("proto", r.protocol);
  if (r.scope) t.push("scope", r.scope);
  if (r.metric !== undefined) t.push("metric", String(r.metric));
  if (r.prefsrc) t.push("src", r.prefsrc);
  return t;
}

/**
 * Addresses, then routes, from one device to another. Deleting a primary address takes its
 * secondaries with it, so deletes go last-listed first; `from` already gone needs no deletes.
 */
function moveTokens(
  path: PathState,
  from: string,
  to: string,
  fromGone: boolean,
): string[][] {
  const dels = fromGone
    ? []
    : [...path.addrs].reverse().map((a) => ["addr", "del", a, "dev", from]);
  const brd = (a: string) =>
    Number(a.split("/")[1]) <= 30 ? ["brd", "+"] : [];
  const adds = path.addrs.map((a) => [
    "addr",
    "replace",
    a,
    ...brd(a),
    "dev",
    to,
  ]); // replace: a partly-applied change reverts cleanly
  return [...dels, ...adds, ...path.routes.map((r) => routeTokens(r, to))];
}

/** Enslave the uplink (creating the bridge first) and move its path onto the bridge, which takes its MAC. */
function intoBridge(
  p: P,
  uplink: Link,
  path: PathState,
  create: boolean,
): string[][] {
  const mac = p.mac ?? uplink.mac;
  const head = create
    ? createTokens({ ...p, mac })
    : mac
      ? [["link", "set", p.name, "address", mac]]
      : [];
  return [
    ...head,
    ["link", "set", uplink.name, "master", p.name],
    ...moveTokens(path, uplink.name, p.name, false),
  ];
}

/** The mirror image: release the uplink (deleting the bridge when it goes) and move the path back onto it. */
function ontoUplink(
  p: P,
  uplink: string,
  path: PathState,
  deleteBridge: boolean,
): string[][] {
  const head = [
    ["link", "set", uplink, "nomaster"],
    ...(deleteBridge ? [["link", "del", p.name]] : []),
  ];
  return [...head, ...moveTokens(path, p.name, uplink, deleteBridge)];
}

interface Plan {
  apply: string[][];
  revert: string[][];
}

function moved(path: PathState): string {
  const routes =
    path.routes.length > 0 ? ` and ${path.routes.length} route(s)` : "";
  return path.addrs.length > 0
    ? `${path.addrs.join(", ")}${routes}`
    : `no addresses${routes}`;
}

/** Same object, same host-side directory; the hash keeps names that differ only in . or @ apart. */
function confirmId(p: P): string {
  const h = createHash("sha256")
    .update(`${nsOf(p)}/${p.name}`)
    .digest("hex")
    .slice(0, 8);
  return `hostbridge-${p.name}-${h}`;
}

async function commitConfirmed(
  ctx: KindContext,
  p: P,
  plan: Plan,
  what: string,
): Promise<void> {
  await commitConfirm(ctx.host, {
    id: confirmId(p),
    what: `${what} (${where(p)})`,
    apply: [ipBatchLine(p.netns, plan.apply)],
    revert: [ipBatchLine(p.netns, plan.revert, { force: true })],
    confirmTimeoutSeconds: p.confirmTimeoutSeconds,
  });
}

async function safeCreate(
  ctx: KindContext,
  p: P,
  snap: HostSnapshot,
): Promise<void> {
  const uplink = linksOf(snap, p).find((l) => l.name === p.uplink)!;
  const path = pathOn(snap, p, uplink.name);
  const plan = {
    apply: intoBridge(p, uplink, path, true),
    revert: ontoUplink(p, uplink.name, path, true),
  };
  await commitConfirmed(
    ctx,
    p,
    plan,
    `create bridge ${p.name}, enslave ${uplink.name} and move ${moved(path)} onto ${p.name}`,
  );
}

/**
 * Delete the bridge, or release its uplink, when the bridge carries the management address: the
 * address and routes go back onto the uplink in the same step; the revert rebuilds what was.
 */
async function safeRelease(
  ctx: KindContext,
  p: P,
  snap: HostSnapshot,
  bridge: Link,
  uplinkName: string | undefined,
  del: boolean,
  reason: string,
): Promise<void> {
  const action = del
    ? `delete bridge ${p.name}`
    : `release ${uplinkName} from bridge ${p.name}`;
  // delete and release see the recorded outputs: the flag must be in the state before.
  const first = ` To ${del ? "delete" : "release"} it that way, set safeApply: true and run pulumi up first (it only records the flag), then ${del ? "delete" : "release"} it.`;
  if (!p.safeApply) refuseManagement(ctx, p, action, reason, first);
  const uplink = linksOf(snap, p).find(
    (l) => l.name === uplinkName && l.master === p.name,
  );
  if (!uplink) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): refusing to ${action}: ${reason}, and the bridge has no uplink of hostnet's to move ` +
        `the address back to. Nothing was changed. Move the management address off ${p.name} from a console first.`,
    );
  }
  const path = pathOn(snap, p, p.name);
  const asIs: P = {
    ...p,
    mac: bridge.mac,
    mtu: p.mtu === undefined ? undefined : bridge.mtu,
    up: bridge.adminUp,
  };
  const plan = {
    apply: ontoUplink(p, uplink.name, path, del),
    revert: intoBridge(asIs, uplink, path, del),
  };
  await commitConfirmed(
    ctx,
    p,
    plan,
    `${action} and move ${moved(path)} back onto ${uplink.name}`,
  );
}

/** One part of an update with its inverse; parts are applied in order and reverted in reverse. */
interface Step {
  fwd: string[][];
  back: string[][];
}

function propTokens(
  name: string,
  bridge: Partial<P>,
  link: Partial<P>,
): string[][] {
  const t: string[][] = [];
  if (bridgeTokens(bridge).length > 0)
    t.push(["link", "set", name, "type", "bridge", ...bridgeTokens(bridge)]);
  if (linkTokens(link).length > 0)
    t.push(["link", "set", name, ...linkTokens(link)]);
  return t;
}

function propStep(news: P, live: Record<string, unknown>): Step {
  const bridge = differing(BRIDGE_KEYS, news, live);
  const link = differing(LINK_KEYS, news, live);
  const was = (o: Partial<P>) =>
    Object.fromEntries(
      Object.keys(o).flatMap((k) =>
        live[k] === undefined ? [] : [[k, live[k]]],
      ),
    ) as Partial<P>;
  return {
    fwd: propTokens(news.name, bridge, link),
    back: propTokens(news.name, was(bridge), was(link)),
  };
}

function upStep(news: P, live: Record<string, unknown>): Step {
  const set = (up: boolean) => [["link", "set", news.name, up ? "up" : "down"]];
  return news.up === live.up
    ? { fwd: [], back: [] }
    : { fwd: set(news.up), back: set(!news.up) };
}

function releaseStep(
  news: P,
  snap: HostSnapshot,
  bridge: Link,
  old: string,
  addrs: string[],
): Step {
  if (!carries(bridge, addrs))
    return {
      fwd: [["link", "set", old, "nomaster"]],
      back: [["link", "set", old, "master", news.name]],
    };
  const path = pathOn(snap, news, news.name);
  const oldLink = linksOf(snap, news).find((l) => l.name === old)!;
  return {
    fwd: ontoUplink(news, old, path, false),
    back: intoBridge({ ...news, mac: bridge.mac }, oldLink, path, false),
  };
}

function enslaveStep(
  news: P,
  snap: HostSnapshot,
  bridge: Link,
  name: string,
  addrs: string[],
): Step {
  const uplink = linksOf(snap, news).find((l) => l.name === name)!;
  if (!carries(uplink, addrs))
    return {
      fwd: [["link", "set", name, "master", news.name]],
      back: [["link", "set", name, "nomaster"]],
    };
  const path = pathOn(snap, news, name);
  const macBack = bridge.mac
    ? [["link", "set", news.name, "address", bridge.mac]]
    : [];
  return {
    fwd: intoBridge(news, uplink, path, false),
    back: [...ontoUplink(news, name, path, false), ...macBack],
  };
}

/** The update as one commit-confirmed step (same order as updateLines), with its exact inverse. */
function safeUpdatePlan(
  olds: P,
  news: P,
  live: Record<string, unknown>,
  snap: HostSnapshot,
  bridge: Link,
  addrs: string[],
): Plan {
  const masterOf = (n: string) =>
    linksOf(snap, news).find((l) => l.name === n)?.master;
  // Setting a device down flushes the routes through it: a revert must bring them back.
  const routes = pathOn(snap, news, news.name).routes.map((r) =>
    routeTokens(r, news.name),
  );
  const steps: Step[] = [{ fwd: [], back: routes }, propStep(news, live)];
  if (
    olds.uplink &&
    olds.uplink !== news.uplink &&
    masterOf(olds.uplink) === news.name
  )
    steps.push(releaseStep(news, snap, bridge, olds.uplink, addrs));
  if (news.uplink && masterOf(news.uplink) !== news.name)
    steps.push(enslaveStep(news, snap, bridge, news.uplink, addrs));
  steps.push(upStep(news, live));
  return {
    apply: steps.flatMap((s) => s.fwd),
    revert: [...steps].reverse().flatMap((s) => s.back),
  };
}

export const hostBridgeKind: ResourceKind<typeof HostBridgeProps> = {
  type: "HostBridge",
  schema: HostBridgeProps,
  replaceOn: ["name", "netns"],
  // safeApply and confirmTimeoutSeconds are compared so that a change to them is recorded (delete sees outputs only).
  compared: [
    "name",
    "netns",
    "stp",
    "forwardDelay",
    "ageingTime",
    "mcastSnooping",
    "vlanFiltering",
    "mtu",
    "mac",
    "up",
    "uplink",
    "safeApply",
    "confirmTimeoutSeconds",
  ],
  id: (p) => `bridge/${p.netns ?? "-"}/${p.name}`,

  validate(p) {
    const issues: Array<[string, string]> = [];
    if (p.managedUplink !== undefined)
      issues.push([
        "managedUplink",
        "is an output that hostnet sets; remove it from the inputs",
      ]);
    if (p.uplink === p.name)
      issues.push(["uplink", `a bridge cannot be its own uplink (${p.name})`]);
    if (
      p.stp &&
      p.forwardDelay !== undefined &&
      p.forwardDelay < STP_FORWARD_DELAY.min
    ) {
      issues.push([
        "forwardDelay",
        `with stp on the kernel needs ${STP_FORWARD_DELAY.min}–${STP_FORWARD_DELAY.max} centiseconds (2–30 s), got ${p.forwardDelay}`,
      ]);
    }
    return issues;
  },

  async create(ctx, p) {
    const snap = await ctx.host.snapshot(scopeOf(p.netns));
    if (bridgeLink(ctx, snap, p)) throw adoptHint(ctx, p);
    if (
      p.uplink &&
      checkUplink(ctx, p, linksOf(snap, p), await managementAddresses(ctx))
    ) {
      await safeCreate(ctx, p, snap);
      return { managedUplink: p.uplink };
    }
    await addBridge(ctx, p);
    if (!p.uplink) return {};
    try {
      await ipBatch(
        ctx,
        p,
        [batchLine(["link", "set", p.uplink, "master", p.name])],
        `enslave uplink ${p.uplink} to bridge ${p.name}`,
      );
    } catch (err) {
      await removeHalfMade(ctx, p);
      throw err;
    }
    return { managedUplink: p.uplink };
  },

  async find(ctx, p) {
    const link = findLink(
      await ctx.host.snapshot(scopeOf(p.netns)),
      nsOf(p),
      p.name,
    );
    return link
      ? found(link.kind === "bridge" ? link.alias : undefined, ctx.owner)
      : ABSENT;
  },

  /** A leftover of this resource: an uplink found enslaved to it was enslaved by hostnet. */
  converge(ctx, live, p) {
    return hostBridgeKind.update(ctx, { ...live, managedUplink: p.uplink }, p);
  },

  async read(ctx, p) {
    const snap = await ctx.host.snapshot(scopeOf(p.netns));
    const link = bridgeLink(ctx, snap, p);
    return link ? liveProps(p, link, linksOf(snap, p)) : null;
  },

  async update(ctx, olds, news) {
    const snap = await ctx.host.snapshot(scopeOf(news.netns));
    const link = bridgeLink(ctx, snap, news);
    if (!link) {
      throw new Error(
        `${ctx.host.label} (${where(news)}): bridge ${news.name} is gone. Run pulumi up --refresh (or pulumi refresh, then up) to recreate it.`,
      );
    }
    const links = linksOf(snap, news);
    const addrs =
      news.uplink || olds.uplink || news.safeApply
        ? await managementAddresses(ctx)
        : [];
    const uplinkRisk =
      news.uplink || olds.uplink
        ? checkUplinkChange(ctx, olds, news, links, addrs)
        : false;
    const live = liveProps(news, link, links);
    if (news.safeApply && (uplinkRisk || carries(link, addrs))) {
      const plan = safeUpdatePlan(olds, news, live, snap, link, addrs);
      if (plan.apply.length > 0)
        await commitConfirmed(
          ctx,
          news,
          plan,
          `update bridge ${news.name} on the management path`,
        );
      return { managedUplink: managedAfter(olds, news, links) };
    }
    const lines = updateLines(olds, news, live, links);
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
    const snap = await ctx.host.snapshot(scopeOf(p.netns));
    const link = bridgeLink(ctx, snap, p);
    if (!link) return;
    if (!isHostnetMark(link.alias)) {
      throw new Error(
        `${ctx.host.label} (${where(p)}): bridge ${p.name} does not carry the hostnet alias, so hostnet did not create it; ` +
          `not deleting it. Delete it by hand if it should go, then drop it from the state (pulumi state delete).`,
      );
    }
    const own = carries(link, await managementAddresses(ctx));
    if (own)
      return safeRelease(
        ctx,
        p,
        snap,
        link,
        p.uplink,
        true,
        `${p.name} carries ${own}, the address this SSH connection uses`,
      );
    await detach(ctx, p, p.uplink, true);
  },

  /** An adopted bridge stays; only an uplink that hostnet itself enslaved is let go. */
  async release(ctx, p) {
    if (!p.managedUplink) return;
    const snap = await ctx.host.snapshot(scopeOf(p.netns));
    const bridge = findLink(snap, nsOf(p), p.name);
    const own = carries(bridge, await managementAddresses(ctx));
    const ours =
      linksOf(snap, p).find((l) => l.name === p.managedUplink)?.master ===
      p.name;
    if (bridge && own && ours) {
      return safeRelease(
        ctx,
        p,
        snap,
        bridge,
        p.managedUplink,
        false,
        `${p.name} carries ${own}, the address this SSH connection uses`,
      );
    }
    await detach(ctx, p, p.managedUplink, false);
  },
};

export interface HostBridgeArgs
  extends
    CommonArgs,
    Partial<Inputs<Omit<z.input<typeof HostBridgeProps>, "managedUplink">>> {
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
  declare readonly safeApply: pulumi.Output<boolean>;
  declare readonly confirmTimeoutSeconds: pulumi.Output<number>;
  constructor(
    name: string,
    args: HostBridgeArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    // Listed so the engine exposes it as an output; the provider fills it in.
    super(
      "HostBridge",
      name,
      { ...args, managedUplink: undefined } as HostBridgeArgs,
      opts,
    );
  }
}
