// VethLink: a veth pair whose two ends may live in different namespaces. Seed 000 joins a per-VM
// namespace to the host bridge with one (host end enslaved, port flags of seed 002); seed 003
// routes to a namespace through one instead: a /32 device route and proxy ARP on the host end.
// Identity is each end's (name, namespace); everything else is changed in place, end by end.
import { scopeOf } from "../../host";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import type { HostSnapshot, Link, RouteRow } from "../../state";
import { findLink, ROOT_NS } from "../../state";
import { KindContext, ResourceKind } from "../kind";
import { ABSENT, Finding, found, isGone, ownerMark } from "../../state";
import {
  changedPortFlags,
  livePortFlags,
  portFlagLines,
  PortFlagsInput,
} from "../portFlags";
import { batchLine } from "../../transport";
import {
  GatewayAddress,
  IfName,
  ipBits,
  isLinkLocal,
  MacAddress,
  NetnsName,
  OwnableCidr,
  RouteDestination,
} from "../../schema";

/** A route through this end; without `via` it is a device route (scope link), as seed 003 needs. */
export const VethRoute = z
  .object({ to: RouteDestination, via: GatewayAddress.optional() })
  .strict();
export type VethRoute = z.infer<typeof VethRoute>;

export const VethEnd = z
  .object({
    name: IfName,
    /** Namespace of this end; absent means the host's root namespace. */
    netns: NetnsName.optional(),
    mac: MacAddress.optional(),
    /** The complete list: addresses found on the end but not listed here are removed. */
    addresses: z.array(OwnableCidr).default([]),
    /** Admit link-local addresses (169.254.0.0/16, fe80::/10) in addresses; refused unless set. */
    linkLocal: z.boolean().optional(),
    /** The complete list too: other routes through this end (but the kernel's own) are drift and removed. */
    routes: z.array(VethRoute).default([]),
    /** Bridge in this end's namespace to enslave the end to. */
    master: IfName.optional(),
    /** Only with master. */
    portFlags: PortFlagsInput.optional(),
    up: z.boolean().default(true),
    /** net.ipv4.conf.<end>.proxy_arp: the host end of a routed namespace answers ARP for the rest. */
    proxyArp: z.boolean().optional(),
    /** net.ipv4.conf.<end>.forwarding */
    forwarding: z.boolean().optional(),
  })
  .strict();
export type VethEnd = z.infer<typeof VethEnd>;

export const VethLinkProps = z.object({
  a: VethEnd,
  b: VethEnd,
  /** MTU of both ends. */
  mtu: z.number().int().min(68).max(65535).optional(),
});
export type VethLinkProps = z.infer<typeof VethLinkProps>;

type EndKey = "a" | "b";

/** Per-interface IPv4 sysctls an end manages, by prop. */
const END_SYSCTLS = {
  proxyArp: "proxy_arp",
  forwarding: "forwarding",
} as const;
type EndSysctl = keyof typeof END_SYSCTLS;
const SYSCTL_PROPS = Object.keys(END_SYSCTLS) as EndSysctl[];
const ENDS: readonly EndKey[] = ["a", "b"];

// ---------------------------------------------------------------------------------------
// Addresses: the kernel prints IPv6 in canonical form, users may not.
// ---------------------------------------------------------------------------------------

function canonIp(ip: string): string {
  return ip.includes(":")
    ? new URL(`http://[${ip}]/`).hostname.slice(1, -1)
    : ip;
}

function canonCidr(cidr: string): string {
  const [ip, len] = cidr.split("/");
  return `${canonIp(ip)}/${len}`;
}

const isV6 = (ip: string): boolean => ip.includes(":");
const isLinkLocal6 = (cidr: string): boolean =>
  /^fe[89ab][0-9a-f]:/i.test(cidr);

function formatIp(value: bigint, width: number): string {
  if (width === 32)
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) =>
    ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
  );
  return canonIp(groups.join(":"));
}

/** The network of a CIDR, or undefined when it has no host bits set. */
function networkIfHostBits(cidr: string): string | undefined {
  const [ip, len] = cidr.split("/");
  const { value, width } = ipBits(ip);
  const hostMask = (1n << BigInt(width - Number(len))) - 1n;
  return (value & hostMask) === 0n
    ? undefined
    : `${formatIp(value & ~hostMask, width)}/${len}`;
}

// ---------------------------------------------------------------------------------------
// Validation across fields
// ---------------------------------------------------------------------------------------

function where(end: VethEnd): string {
  return end.netns ? `netns ${end.netns}` : "the root namespace";
}

function duplicates(values: string[]): Set<number> {
  const seen = new Set<string>();
  const dup = new Set<number>();
  values.forEach((v, i) => (seen.has(v) ? dup.add(i) : seen.add(v)));
  return dup;
}

function routeIssues(key: EndKey, end: VethEnd): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const dup = duplicates(end.routes.map((r) => canonCidr(r.to)));
  end.routes.forEach((r, i) => {
    const at = `${key}.routes[${i}]`;
    const net = networkIfHostBits(r.to);
    if (net !== undefined)
      out.push([
        `${at}.to`,
        `${r.to} has host bits set; a route destination is a network, here ${net}`,
      ]);
    if (r.via !== undefined && isV6(r.via) !== isV6(r.to)) {
      out.push([
        `${at}.via`,
        `gateway ${r.via} and destination ${r.to} are of different IP families`,
      ]);
    }
    if (dup.has(i))
      out.push([
        `${at}.to`,
        `${r.to} is listed twice; one route per destination`,
      ]);
  });
  if (end.routes.length > 0 && !end.up) {
    out.push([
      `${key}.routes`,
      "the kernel refuses routes through a down interface: set up: true or drop the routes",
    ]);
  }
  return out;
}

function endIssues(
  key: EndKey,
  end: VethEnd,
  mtu: number | undefined,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (end.portFlags !== undefined && end.master === undefined) {
    out.push([
      `${key}.portFlags`,
      "port flags belong to a bridge port: set master (a bridge in this end's namespace) or drop portFlags",
    ]);
  }
  if (end.master === end.name)
    out.push([
      `${key}.master`,
      `${end.name} cannot be its own master; name a bridge`,
    ]);
  for (const i of duplicates(end.addresses.map(canonCidr)))
    out.push([`${key}.addresses[${i}]`, `${end.addresses[i]} is listed twice`]);
  end.addresses.forEach((a, i) => {
    if (!end.linkLocal && isLinkLocal(a))
      out.push([
        `${key}.addresses[${i}]`,
        `${a} is link-local; set linkLocal: true on ${key} if you mean it`,
      ]);
  });
  const v6 = end.addresses.find(isV6);
  if (mtu !== undefined && mtu < 1280 && v6 !== undefined) {
    out.push([
      "mtu",
      `IPv6 needs an MTU of at least 1280, but ${key} carries ${v6}`,
    ]);
  }
  return [...out, ...routeIssues(key, end)];
}

function validate(p: VethLinkProps): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (p.a.name === p.b.name && (p.a.netns ?? "") === (p.b.netns ?? "")) {
    out.push([
      "b.name",
      `both ends are ${p.b.name} in ${where(p.b)}; give b another name or put it in another namespace`,
    ]);
  }
  return [...out, ...endIssues("a", p.a, p.mtu), ...endIssues("b", p.b, p.mtu)];
}

// ---------------------------------------------------------------------------------------
// Live state of one end
// ---------------------------------------------------------------------------------------

interface Observed {
  link: Link;
  /** Without the IPv6 link-local addresses the kernel makes itself (those the user lists stay). */
  addresses: string[];
  /** Routes of the end's namespace (main table) that go out through this end. */
  routes: RouteRow[];
  sysctls: Partial<Record<EndSysctl, boolean>>;
}

function routeMatches(row: RouteRow, r: VethRoute): boolean {
  if (canonCidr(row.dst) !== canonCidr(r.to)) return false;
  if (r.via === undefined) return row.gateway === undefined;
  return row.gateway !== undefined && canonIp(row.gateway) === canonIp(r.via);
}

const hasRoute = (o: Observed | undefined, r: VethRoute): boolean =>
  (o?.routes ?? []).some((row) => routeMatches(row, r));

/**
 * Routes through the end that nobody listed: the routes hostnet installs through its veth ends are a
 * set, so a stranger (say, one capturing someone else's traffic) is drift, and `up` removes it. The
 * kernel's own routes (an address's prefix route, IPv6 fe80::/64) are not anyone's configuration.
 */
function strangerRoutes(end: VethEnd, o: Observed | undefined): VethRoute[] {
  return (o?.routes ?? [])
    .filter(
      (row) =>
        row.protocol !== "kernel" &&
        row.type === "unicast" &&
        !end.routes.some((r) => routeMatches(row, r)),
    )
    .map((row) =>
      row.gateway === undefined
        ? { to: row.dst }
        : { to: row.dst, via: row.gateway },
    );
}
const sameRoute = (x: VethRoute, y: VethRoute): boolean =>
  canonCidr(x.to) === canonCidr(y.to) &&
  (x.via === undefined
    ? y.via === undefined
    : y.via !== undefined && canonIp(x.via) === canonIp(y.via));
const hasAddress = (list: string[], a: string): boolean =>
  list.some((x) => canonCidr(x) === canonCidr(a));

function observe(snap: HostSnapshot, end: VethEnd): Observed | undefined {
  const ns = snap.namespaces[end.netns ?? ROOT_NS];
  const link = findLink(snap, end.netns ?? ROOT_NS, end.name);
  if (!ns || !link || link.kind !== "veth") return undefined;
  const sysctls: Observed["sysctls"] = {};
  for (const prop of SYSCTL_PROPS) {
    const v = ns.sysctls[`net.ipv4.conf.${end.name}.${END_SYSCTLS[prop]}`];
    if (v !== undefined) sysctls[prop] = v !== "0";
  }
  return {
    link,
    addresses: link.addresses.filter(
      (a) => !isLinkLocal6(a) || hasAddress(end.addresses, a),
    ),
    routes: ns.routes.filter((r) => r.dev === end.name),
    sysctls,
  };
}

/** When the snapshot could name the peer, it must be the other end; otherwise presence is enough. */
function pointsAt(o: Observed, other: VethEnd): boolean {
  const { peerName, peerNetns } = o.link;
  if (peerName === undefined || peerNetns === undefined) return true;
  return peerName === other.name && peerNetns === (other.netns ?? ROOT_NS);
}

/** The live list in the user's spelling and order when it holds the same addresses. */
function liveAddresses(wanted: string[], live: string[]): string[] {
  return [
    ...wanted.filter((w) => hasAddress(live, w)),
    ...live.filter((l) => !hasAddress(wanted, l)),
  ];
}

/** Live values of exactly what the user set on this end, in the shape of the input. */
function liveEnd(end: VethEnd, o: Observed): Record<string, unknown> {
  const live: Record<string, unknown> = {
    name: end.name,
    netns: end.netns,
    linkLocal: end.linkLocal,
    addresses: liveAddresses(end.addresses, o.addresses),
    routes: [
      ...end.routes.filter((r) => hasRoute(o, r)),
      ...strangerRoutes(end, o),
    ],
    up: o.link.adminUp,
  };
  if (end.mac !== undefined) live.mac = o.link.mac;
  if (end.master !== undefined) live.master = o.link.master;
  if (end.portFlags !== undefined)
    live.portFlags = livePortFlags(o.link, end.portFlags);
  for (const prop of SYSCTL_PROPS)
    if (end[prop] !== undefined) live[prop] = o.sysctls[prop];
  return live;
}

// ---------------------------------------------------------------------------------------
// Planning: what to run on one end to get from `o` (undefined: just created) to `end`
// ---------------------------------------------------------------------------------------

/** `mark`: stamp the end with it (a new end, or one of this resource's leftovers); undefined: leave the alias. */
function linkLines(
  end: VethEnd,
  old: VethEnd | undefined,
  o: Observed | undefined,
  mtu: number | undefined,
  mark: string | undefined,
): string[][] {
  const set = ["link", "set", "dev", end.name];
  const lines: string[][] = [];
  if (mark !== undefined && o?.link.alias !== mark)
    lines.push([...set, "alias", mark]);
  if (mtu !== undefined && o?.link.mtu !== mtu)
    lines.push([...set, "mtu", String(mtu)]);
  if (end.mac !== undefined && o?.link.mac !== end.mac)
    lines.push([...set, "address", end.mac]);
  if (end.master !== undefined && o?.link.master !== end.master)
    lines.push([...set, "master", end.master]);
  if (
    end.master === undefined &&
    old?.master !== undefined &&
    o?.link.master !== undefined
  )
    lines.push([...set, "nomaster"]);
  return lines;
}

function addressLines(end: VethEnd, o: Observed | undefined): string[][] {
  const have = o?.addresses ?? [];
  return [
    ...have
      .filter((a) => !hasAddress(end.addresses, a))
      .map((a) => ["addr", "del", a, "dev", end.name]),
    ...end.addresses
      .filter((a) => !hasAddress(have, a))
      .map((a) => ["addr", "add", a, "dev", end.name]),
  ];
}

function routeArgs(end: VethEnd, r: VethRoute): string[] {
  return [
    r.to,
    ...(r.via === undefined ? [] : ["via", r.via]),
    "dev",
    end.name,
  ];
}

/** Routes come after `up`: the kernel refuses a route through a down device. */
function routeLines(
  end: VethEnd,
  old: VethEnd | undefined,
  o: Observed | undefined,
): string[][] {
  const dropped = [
    ...(old?.routes ?? []).filter(
      (r) => !end.routes.some((n) => sameRoute(n, r)) && hasRoute(o, r),
    ),
    ...strangerRoutes(end, o).filter(
      (r) => !(old?.routes ?? []).some((n) => sameRoute(n, r)),
    ),
  ];
  return [
    ...dropped.map((r) => ["route", "del", ...routeArgs(end, r)]),
    ...end.routes
      .filter((r) => !hasRoute(o, r))
      .map((r) => ["route", "replace", ...routeArgs(end, r)]),
  ];
}

function ipLines(
  end: VethEnd,
  old: VethEnd | undefined,
  o: Observed | undefined,
  mtu: number | undefined,
  mark: string | undefined,
): string[] {
  const upDown =
    end.up !== (o?.link.adminUp ?? false)
      ? [["link", "set", "dev", end.name, end.up ? "up" : "down"]]
      : [];
  const lines = [
    ...linkLines(end, old, o, mtu, mark),
    ...addressLines(end, o),
    ...upDown,
    ...(end.up ? routeLines(end, old, o) : []),
  ];
  return lines.map(batchLine);
}

/** A new master resets a port's flags to the bridge defaults, so all of them are set again. */
function flagLines(end: VethEnd, o: Observed | undefined): string[] {
  if (end.master === undefined || end.portFlags === undefined) return [];
  const fresh = o?.link.master !== end.master;
  return portFlagLines(
    end.name,
    fresh
      ? end.portFlags
      : changedPortFlags(livePortFlags(o?.link, end.portFlags), end.portFlags),
  );
}

function sysctlCommands(end: VethEnd, o: Observed | undefined): string[][] {
  const wanted = SYSCTL_PROPS.filter(
    (prop) => end[prop] !== undefined && o?.sysctls[prop] !== end[prop],
  );
  // The '/' form keeps interface names that contain '.' intact.
  return wanted.map((prop) => [
    "sysctl",
    "-q",
    "-w",
    `net/ipv4/conf/${end.name}/${END_SYSCTLS[prop]}=${end[prop] ? 1 : 0}`,
  ]);
}

async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find(
    (r): r is PromiseRejectedResult => r.status === "rejected",
  );
  if (failed) throw failed.reason;
}

async function configureEnd(
  ctx: KindContext,
  end: VethEnd,
  old: VethEnd | undefined,
  o: Observed | undefined,
  mtu: number | undefined,
  stamp: boolean,
) {
  const lines = ipLines(
    end,
    old,
    o,
    mtu,
    stamp ? ownerMark(ctx.owner) : undefined,
  );
  if (lines.length > 0) {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: end.netns,
      lines,
      what: `configure veth end ${end.name}`,
    });
  }
  const follow: Array<Promise<unknown>> = [];
  const flags = flagLines(end, o);
  if (flags.length > 0) {
    follow.push(
      ctx.host.run({
        kind: "batch",
        tool: "bridge",
        netns: end.netns,
        lines: flags,
        what: `set bridge port flags of ${end.name}`,
      }),
    );
  }
  const sysctls = sysctlCommands(end, o);
  if (sysctls.length > 0) {
    follow.push(
      ctx.host.run({
        kind: "sh",
        netns: end.netns,
        commands: sysctls,
        what: `set sysctls of ${end.name}`,
      }),
    );
  }
  await settleAll(follow);
}

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

function pairLabel(p: VethLinkProps): string {
  return `veth pair ${p.a.name} (${where(p.a)}) <-> ${p.b.name} (${where(p.b)})`;
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
  const snap = await ctx.host
    .snapshot(scopeOf(p.a.netns, p.b.netns))
    .catch(() => undefined);
  const taken = ENDS.map((k) => p[k]).filter(
    (e) => snap && findLink(snap, e.netns ?? ROOT_NS, e.name),
  );
  const names =
    taken.length > 0
      ? taken.map((e) => `${e.name} in ${where(e)}`).join(" and ")
      : "one of the names";
  return new Error(
    `${ctx.host.label}: cannot create ${pairLabel(p)}: ${names} already ${taken.length > 1 ? "exist" : "exists"}. To manage an existing pair with hostnet, ` +
      `set adopt: true on this VethLink; otherwise choose other names or delete the old interface.`,
  );
}

/**
 * Deletes of gone pairs are skipped before they reach the host: a re-run destroy (after a killed
 * one) would otherwise merge dozens of failing `link del` lines into one batch, which stops at the
 * first and leaves the rest to retries.
 */
async function deleteIfThere(
  ctx: KindContext,
  p: VethLinkProps,
  what: string,
): Promise<void> {
  const snap = await ctx.host.snapshot(scopeOf(p.a.netns, p.b.netns));
  const end = ENDS.map((k) => p[k]).find(
    (e) => findLink(snap, e.netns ?? ROOT_NS, e.name)?.kind === "veth",
  );
  if (end) await deleteEnd(ctx, end, what);
}

async function deletePair(
  ctx: KindContext,
  p: VethLinkProps,
  what: string,
): Promise<void> {
  await deleteEnd(ctx, p.a, what);
}

async function deleteEnd(
  ctx: KindContext,
  end: VethEnd,
  what: string,
): Promise<void> {
  try {
    // Deleting one end deletes its peer with it.
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: end.netns,
      lines: [batchLine(["link", "del", "dev", end.name])],
      what,
    });
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

/**
 * The end the pair is made from: the batch runs in its namespace, so the same batch can mark it
 * (the other end is owned through it). The root end when there is one: a peer can be placed in a
 * named namespace from anywhere, but the root cannot be named from inside another namespace.
 */
function anchorOf(p: VethLinkProps): [VethEnd, VethEnd] {
  return p.a.netns !== undefined && p.b.netns === undefined
    ? [p.b, p.a]
    : [p.a, p.b];
}

async function find(ctx: KindContext, p: VethLinkProps): Promise<Finding> {
  const snap = await ctx.host.snapshot(scopeOf(p.a.netns, p.b.netns));
  const [anchor, other] = anchorOf(p);
  const [oa, ob] = [observe(snap, anchor), observe(snap, other)];
  if (oa && ob && pointsAt(oa, other) && pointsAt(ob, anchor))
    return found(oa.link.alias, ctx.owner);
  const any = ENDS.some((k) =>
    findLink(snap, p[k].netns ?? ROOT_NS, p[k].name),
  );
  return any ? found(undefined, ctx.owner) : ABSENT;
}

async function create(
  ctx: KindContext,
  p: VethLinkProps,
): Promise<Record<string, unknown>> {
  // `netns` places the peer directly in its namespace (iproute2 6.1 checked); make and mark are one batch.
  const [anchor, other] = anchorOf(p);
  const peerNs =
    other.netns !== undefined && other.netns !== anchor.netns
      ? ["netns", other.netns]
      : [];
  const add = [
    "link",
    "add",
    anchor.name,
    "type",
    "veth",
    "peer",
    "name",
    other.name,
    ...peerNs,
  ];
  const mark = [
    "link",
    "set",
    "dev",
    anchor.name,
    "alias",
    ownerMark(ctx.owner),
  ];
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: anchor.netns,
      lines: [batchLine(add), batchLine(mark)],
      what: `create ${pairLabel(p)}`,
    });
  } catch (err) {
    throw await explainCreateFailure(ctx, p, err);
  }
  try {
    await settleAll(
      ENDS.map((k) =>
        configureEnd(ctx, p[k], undefined, undefined, p.mtu, true),
      ),
    );
  } catch (err) {
    await deletePair(ctx, p, `remove half-made ${pairLabel(p)}`).catch(
      (undo: Error) => {
        throw new Error(
          `${(err as Error).message}\n  and removing the half-made pair failed too; delete ${p.a.name} in ${where(p.a)} by hand: ${undo.message}`,
        );
      },
    );
    throw err;
  }
  return {};
}

async function read(
  ctx: KindContext,
  p: VethLinkProps,
): Promise<Record<string, unknown> | null> {
  const snap = await ctx.host.snapshot(scopeOf(p.a.netns, p.b.netns));
  const [oa, ob] = [observe(snap, p.a), observe(snap, p.b)];
  if (!oa || !ob || !pointsAt(oa, p.b) || !pointsAt(ob, p.a)) return null;
  const live: Record<string, unknown> = {
    a: liveEnd(p.a, oa),
    b: liveEnd(p.b, ob),
  };
  if (p.mtu !== undefined)
    live.mtu = oa.link.mtu !== p.mtu ? oa.link.mtu : ob.link.mtu;
  return live;
}

/** Plans against the live kernel, not the old inputs, so a repair after drift changes exactly what drifted. */
async function update(
  ctx: KindContext,
  olds: VethLinkProps,
  news: VethLinkProps,
  stamp = false,
): Promise<Record<string, unknown>> {
  const snap = await ctx.host.snapshot(scopeOf(news.a.netns, news.b.netns));
  const observed = ENDS.map((k) => observe(snap, news[k]));
  if (observed.some((o) => o === undefined)) {
    throw new Error(
      `${ctx.host.label}: ${pairLabel(news)} is gone from the host. Run pulumi up --refresh to recreate it.`,
    );
  }
  await settleAll(
    ENDS.map((k, i) =>
      configureEnd(ctx, news[k], olds[k], observed[i], news.mtu, stamp),
    ),
  );
  return {};
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
  addressUses: (p) =>
    ENDS.flatMap((k) => [
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
  id: (p) => `veth/${p.a.netns ?? "-"}/${p.a.name}`,
  create,
  find,
  // A leftover's non-anchor end may have died before its mark was set: stamp both.
  converge: (ctx, live, p) => update(ctx, live, p, true),
  read,
  update: (ctx, olds, news) => update(ctx, olds, news),
  delete: (ctx, p) => deleteIfThere(ctx, p, `delete ${pairLabel(p)}`),
};

export interface VethLinkArgs extends CommonArgs {
  a: pulumi.Input<Inputs<z.input<typeof VethEnd>>>;
  b: pulumi.Input<Inputs<z.input<typeof VethEnd>>>;
  mtu?: pulumi.Input<number>;
}

/** A veth pair; each end in its own namespace (or the root), optionally a bridge port. */
export class VethLink extends HostnetResource {
  declare readonly a: pulumi.Output<VethEnd>;
  declare readonly b: pulumi.Output<VethEnd>;
  declare readonly mtu: pulumi.Output<number | undefined>;
  constructor(
    name: string,
    args: VethLinkArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("VethLink", name, args, opts);
  }
}
