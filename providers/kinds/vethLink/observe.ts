// What the host holds of a VethLink (pure): each end as the snapshot shows it, and the managed
// properties in the shape of the props, which is what read() returns.
import type { HostSnapshot, Link, RouteRow } from "../../state";
import { findLink, ROOT_NS } from "../../state";
import { livePortFlags } from "../portFlags";
import {
  canonCidr,
  canonIp,
  EndSysctl,
  endSysctlKey,
  endSysctlValue,
  SYSCTL_PROPS,
  VethEnd,
  VethLinkProps,
  VethRoute,
} from "./schema";

/** What the host holds of one end. */
export interface ObservedEnd {
  link: Link;
  /** Without the IPv6 link-local addresses the kernel makes itself (those the user lists stay). */
  addresses: string[];
  /** Routes of the end's namespace (main table) that go out through this end. */
  routes: RouteRow[];
  sysctls: Partial<Record<EndSysctl, boolean>>;
}

/** A pair whose two ends are there and (where the snapshot can tell) peers of each other. */
export interface ObservedPair {
  a: ObservedEnd;
  b: ObservedEnd;
}

const isLinkLocal6 = (cidr: string): boolean =>
  /^fe[89ab][0-9a-f]:/i.test(cidr);

function routeMatches(row: RouteRow, r: VethRoute): boolean {
  if (canonCidr(row.dst) !== canonCidr(r.to)) return false;
  if (r.via === undefined) return row.gateway === undefined;
  return row.gateway !== undefined && canonIp(row.gateway) === canonIp(r.via);
}

export const hasRoute = (o: ObservedEnd | undefined, r: VethRoute): boolean =>
  (o?.routes ?? []).some((row) => routeMatches(row, r));

/**
 * Routes through the end that nobody listed: the routes hostnet installs through its veth ends are a
 * set, so a stranger (say, one capturing someone else's traffic) is drift, and `up` removes it. The
 * kernel's own routes (an address's prefix route, IPv6 fe80::/64) are not anyone's configuration.
 */
export function strangerRoutes(
  end: VethEnd,
  o: ObservedEnd | undefined,
): VethRoute[] {
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

export const hasAddress = (list: string[], a: string): boolean =>
  list.some((x) => canonCidr(x) === canonCidr(a));

/** One end as the snapshot shows it; undefined when no veth of that name is in its namespace. */
export function observeEnd(
  snap: HostSnapshot,
  end: VethEnd,
): ObservedEnd | undefined {
  const ns = snap.namespaces[end.netns ?? ROOT_NS];
  const link = findLink(snap, end.netns ?? ROOT_NS, end.name);
  if (!ns || !link || link.kind !== "veth") return undefined;
  const sysctls: ObservedEnd["sysctls"] = {};
  for (const prop of SYSCTL_PROPS) {
    const v = ns.sysctls[endSysctlKey(end, prop)];
    if (v !== undefined) sysctls[prop] = v === endSysctlValue(prop, true);
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

/**
 * Whether the kernel has net.ipv6.conf.<if>.force_forwarding (Linux 6.17+), judged by the other
 * interfaces of the namespace (the snapshot reads it for each); undefined when there is none.
 */
export function forceForwardingKnown(
  snap: HostSnapshot,
  netns: string | undefined,
): boolean | undefined {
  const keys = Object.keys(snap.namespaces[netns ?? ROOT_NS]?.sysctls ?? {});
  const perIf = (suffix: string) =>
    keys.some(
      (k) => k.endsWith(suffix) && !/^net\.ipv6\.conf\.(all|default)\./.test(k),
    );
  return perIf(".disable_ipv6") ? perIf(".force_forwarding") : undefined;
}

/** When the snapshot could name the peer, it must be the other end; otherwise presence is enough. */
export function pointsAt(o: ObservedEnd, other: VethEnd): boolean {
  const { peerName, peerNetns } = o.link;
  if (peerName === undefined || peerNetns === undefined) return true;
  return peerName === other.name && peerNetns === (other.netns ?? ROOT_NS);
}

/**
 * The end the pair is made from: the batch runs in its namespace, so the same batch can mark it
 * (the other end is owned through it). The root end when there is one: a peer can be placed in a
 * named namespace from anywhere, but the root cannot be named from inside another namespace.
 */
export function anchorOf(p: VethLinkProps): [VethEnd, VethEnd] {
  return p.a.netns !== undefined && p.b.netns === undefined
    ? [p.b, p.a]
    : [p.a, p.b];
}

// ---------------------------------------------------------------------------------------
// Live values (read is derived from observe)
// ---------------------------------------------------------------------------------------

/** The live list in the user's spelling and order when it holds the same addresses. */
function liveAddresses(wanted: string[], live: string[]): string[] {
  return [
    ...wanted.filter((w) => hasAddress(live, w)),
    ...live.filter((l) => !hasAddress(wanted, l)),
  ];
}

/** Live values of exactly what the user set on this end, in the shape of the input. */
function liveEnd(end: VethEnd, o: ObservedEnd): Record<string, unknown> {
  const live: Record<string, unknown> = {
    name: end.name,
    netns: end.netns,
    linkLocal: end.linkLocal,
    nodad: end.nodad, // an add-time flag: not observable once the address is there
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

/** The managed properties as the host holds them, in the shape of the props. */
export function liveOf(
  p: VethLinkProps,
  o: ObservedPair,
): Record<string, unknown> {
  const live: Record<string, unknown> = {
    a: liveEnd(p.a, o.a),
    b: liveEnd(p.b, o.b),
  };
  if (p.mtu !== undefined)
    live.mtu = o.a.link.mtu !== p.mtu ? o.a.link.mtu : o.b.link.mtu;
  return live;
}
