// VethLink's pure planner: what the host holds of a pair (observe) and the steps that take it to
// the desired props (plan). create, update, converge, read and the boot restore script all go
// through it; nothing here touches a host.
//   plan(p, undefined)  the whole creation: the pair made and marked in one batch (the end in the
//                       batch's own namespace), then each end configured and marked.
//   plan(p, observed)   only what differs from the live kernel, end by end.
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import type { HostSnapshot, Link, RouteRow } from "../../state";
import { findLink, ownerMark, ROOT_NS } from "../../state";
import { batchLine } from "../../transport";
import type { PlanContext, Planner, Step } from "../plan";
import { changedPortFlags, livePortFlags, portFlagLines } from "../portFlags";
import {
  canonCidr,
  canonIp,
  END_SYSCTLS,
  EndSysctl,
  ENDS,
  pairLabel,
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

const hasRoute = (o: ObservedEnd | undefined, r: VethRoute): boolean =>
  (o?.routes ?? []).some((row) => routeMatches(row, r));

/**
 * Routes through the end that nobody listed: the routes hostnet installs through its veth ends are a
 * set, so a stranger (say, one capturing someone else's traffic) is drift, and `up` removes it. The
 * kernel's own routes (an address's prefix route, IPv6 fe80::/64) are not anyone's configuration.
 */
function strangerRoutes(end: VethEnd, o: ObservedEnd | undefined): VethRoute[] {
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

const hasAddress = (list: string[], a: string): boolean =>
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
function pointsAt(o: ObservedEnd, other: VethEnd): boolean {
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

// ---------------------------------------------------------------------------------------
// Planning one end: from `o` (undefined: just created) to `end`
// ---------------------------------------------------------------------------------------

/** `mark`: stamp the end with it (a new end, or one of this resource's leftovers); undefined: leave the alias. */
function linkLines(
  end: VethEnd,
  o: ObservedEnd | undefined,
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
  return lines;
}

function addressLines(end: VethEnd, o: ObservedEnd | undefined): string[][] {
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
function routeLines(end: VethEnd, o: ObservedEnd | undefined): string[][] {
  return [
    ...strangerRoutes(end, o).map((r) => [
      "route",
      "del",
      ...routeArgs(end, r),
    ]),
    ...end.routes
      .filter((r) => !hasRoute(o, r))
      .map((r) => ["route", "replace", ...routeArgs(end, r)]),
  ];
}

function ipLines(
  end: VethEnd,
  o: ObservedEnd | undefined,
  mtu: number | undefined,
  mark: string | undefined,
): string[] {
  const upDown =
    end.up !== (o?.link.adminUp ?? false)
      ? [["link", "set", "dev", end.name, end.up ? "up" : "down"]]
      : [];
  const lines = [
    ...linkLines(end, o, mtu, mark),
    ...addressLines(end, o),
    ...upDown,
    ...(end.up ? routeLines(end, o) : []),
  ];
  return lines.map(batchLine);
}

/** A new master resets a port's flags to the bridge defaults, so all of them are set again. */
function flagLines(end: VethEnd, o: ObservedEnd | undefined): string[] {
  if (end.master === undefined || end.portFlags === undefined) return [];
  const fresh = o?.link.master !== end.master;
  return portFlagLines(
    end.name,
    fresh
      ? end.portFlags
      : changedPortFlags(livePortFlags(o?.link, end.portFlags), end.portFlags),
  );
}

function sysctlCommands(end: VethEnd, o: ObservedEnd | undefined): string[][] {
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

/** The steps for one end: its ip batch, then its bridge port flags, then its sysctls. */
function endSteps(
  end: VethEnd,
  o: ObservedEnd | undefined,
  mtu: number | undefined,
  mark: string | undefined,
): Step[] {
  const steps: Step[] = [];
  const lines = ipLines(end, o, mtu, mark);
  if (lines.length > 0)
    steps.push({
      op: {
        kind: "batch",
        tool: "ip",
        netns: end.netns,
        lines,
        what: `configure veth end ${end.name}`,
      },
    });
  const flags = flagLines(end, o);
  if (flags.length > 0)
    steps.push({
      op: {
        kind: "batch",
        tool: "bridge",
        netns: end.netns,
        lines: flags,
        what: `set bridge port flags of ${end.name}`,
      },
    });
  const sysctls = sysctlCommands(end, o);
  if (sysctls.length > 0)
    steps.push({
      op: {
        kind: "sh",
        netns: end.netns,
        commands: sysctls,
        what: `set sysctls of ${end.name}`,
      },
    });
  return steps;
}

/** Delete the pair through one of its ends: deleting one end deletes its peer with it. */
export function deleteOp(end: VethEnd, what: string): HostOp {
  return {
    kind: "batch",
    tool: "ip",
    netns: end.netns,
    lines: [batchLine(["link", "del", "dev", end.name])],
    what,
  };
}

/** Make the pair and mark its anchor in one batch (iproute2 6.1 places the peer with `netns`). */
function createStep(p: VethLinkProps, mark: string): Step {
  const [anchor, other] = anchorOf(p);
  const peerNs =
    other.netns !== undefined && other.netns !== anchor.netns
      ? ["netns", other.netns]
      : [];
  const add = ["link", "add", anchor.name, "type", "veth", "peer"];
  return {
    op: {
      kind: "batch",
      tool: "ip",
      netns: anchor.netns,
      lines: [
        batchLine([...add, "name", other.name, ...peerNs]),
        batchLine(["link", "set", "dev", anchor.name, "alias", mark]),
      ],
      what: `create ${pairLabel(p)}`,
    },
    makes: true,
    undo: deleteOp(anchor, `remove half-made ${pairLabel(p)}`),
  };
}

function plan(
  p: VethLinkProps,
  o: ObservedPair | undefined,
  ctx: PlanContext,
): Step[] {
  const mark = ownerMark(ctx.owner);
  if (o === undefined)
    return [
      createStep(p, mark),
      ...ENDS.flatMap((k) => endSteps(p[k], undefined, p.mtu, mark)),
    ];
  // A pair whose anchor carries this resource's mark is its own (a leftover of a run that died
  // before the state was written): its peer may have died before its mark was set, so both are
  // stamped. Any other pair (adopted, or made by an older release) keeps its aliases.
  const [anchor] = anchorOf(p);
  const own =
    ctx.owner !== undefined &&
    o[anchor === p.a ? "a" : "b"].link.alias === mark;
  return ENDS.flatMap((k) =>
    endSteps(p[k], o[k], p.mtu, own ? mark : undefined),
  );
}

export const vethLinkPlanner: Planner<VethLinkProps, ObservedPair> = {
  scope: (p) => scopeOf(p.a.netns, p.b.netns),
  observe(snap, p) {
    const [a, b] = [observeEnd(snap, p.a), observeEnd(snap, p.b)];
    if (!a || !b || !pointsAt(a, p.b) || !pointsAt(b, p.a)) return undefined;
    return { a, b };
  },
  plan,
};
