// HostBridge's ip-batch token lines: creating the bridge, its properties, and moving the
// management path (IPv4 addresses and routes) between the uplink and the bridge. Pure.
import { isIP } from "node:net";
import { managementTouch } from "../../host";
import type { Link, RouteRow } from "../../state";
import { OWNER_ALIAS } from "../../state";
import { HostBridgeProps } from "./schema";

type P = HostBridgeProps;
export type Tokens = string[][];

/** What the host holds around a HostBridge: the device at its name, and its namespace. */
export interface HostBridgeObserved {
  /** The device at the bridge's name, if any (the kind refuses one that is not a bridge). */
  bridge?: Link;
  /** Every device of the namespace (the uplink, the bridge's ports). */
  links: Link[];
  /** The namespace's routes: those through the uplink or the bridge follow the management path. */
  routes: RouteRow[];
}

const flag = (b: boolean): string => (b ? "1" : "0");

/** `type bridge` attributes for the given options; unset ones are left as the kernel has them. */
export function bridgeTokens(o: Partial<P>): string[] {
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

export function linkTokens(o: Partial<P>): string[] {
  const t: string[] = [];
  if (o.mtu !== undefined) t.push("mtu", String(o.mtu));
  if (o.mac !== undefined) t.push("address", o.mac);
  return t;
}

// ------------------------------------------------------------------ the management path

/** The management address `link` carries, if any. */
export function carries(
  link: Link | undefined,
  addrs: readonly string[],
): string | undefined {
  return managementTouch(
    { devs: [], addresses: addrs },
    { prefixes: link?.addresses },
    "address",
  );
}

// ------------------------------------------------------------------ the management path

/** What follows the management path between uplink and bridge: IPv4 addresses and main-table routes via the device. */
export interface PathState {
  addrs: string[];
  routes: RouteRow[];
}

export function pathOn(o: HostBridgeObserved, dev: string): PathState {
  const link = o.links.find((l) => l.name === dev);
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
    routes: o.routes.filter(movable),
  };
}

export function routeTokens(r: RouteRow, dev: string): string[] {
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
export function moveTokens(
  path: PathState,
  from: string,
  to: string,
  fromGone: boolean,
): Tokens {
  const dels = fromGone
    ? []
    : [...path.addrs].reverse().map((a) => ["addr", "del", a, "dev", from]);
  const brd = (a: string) =>
    Number(a.split("/")[1]) <= 30 ? ["brd", "+"] : [];
  // replace: a partly-applied change reverts cleanly
  const adds = path.addrs.map((a) => [
    "addr",
    "replace",
    a,
    ...brd(a),
    "dev",
    to,
  ]);
  return [...dels, ...adds, ...path.routes.map((r) => routeTokens(r, to))];
}

/** mtu and address go into `link add` so a bad value fails before anything exists; alias cannot. */
export function createTokens(p: P, mark: string): Tokens {
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

/** Enslave the uplink (creating the bridge first) and move its path onto the bridge, which takes its MAC. */
export function intoBridge(
  p: P,
  uplink: Link,
  path: PathState,
  create?: { mark: string },
): Tokens {
  const mac = p.mac ?? uplink.mac;
  const head = create
    ? createTokens({ ...p, mac }, create.mark)
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
export function ontoUplink(
  p: P,
  uplink: string,
  path: PathState,
  deleteBridge: boolean,
): Tokens {
  const head = [
    ["link", "set", uplink, "nomaster"],
    ...(deleteBridge ? [["link", "del", p.name]] : []),
  ];
  return [...head, ...moveTokens(path, p.name, uplink, deleteBridge)];
}

/**
 * Delete the bridge, or release its uplink, while the bridge carries the management address: the
 * path goes back onto the uplink in the same step; the revert rebuilds what was there.
 */
export function releasePlan(
  p: P,
  o: HostBridgeObserved & { bridge: Link },
  uplink: Link,
  deleteBridge: boolean,
): { apply: Tokens; revert: Tokens; path: PathState } {
  const path = pathOn(o, p.name);
  const asIs: P = {
    ...p,
    mac: o.bridge.mac,
    mtu: p.mtu === undefined ? undefined : o.bridge.mtu,
    up: o.bridge.adminUp,
  };
  const mark = { mark: o.bridge.alias ?? OWNER_ALIAS };
  return {
    apply: ontoUplink(p, uplink.name, path, deleteBridge),
    revert: intoBridge(asIs, uplink, path, deleteBridge ? mark : undefined),
    path,
  };
}
