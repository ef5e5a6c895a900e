// The HostBridge planner (kinds/plan.ts): pure, from the desired props and what the snapshot holds
// of the bridge's namespace. One planner serves create, update, converge, commit-confirm and the
// boot restore script: every step carries its undo, and when the uplink (or the bridge) carries
// the SSH management address the step that enslaves (or releases) it also moves the IPv4 addresses
// and routes across, with the bridge taking the uplink's MAC so the neighbours' ARP caches stay
// right. Whether such a plan runs under commit-confirm is the kind's decision (kind.ts).
import { scopeOf } from "../../host";
import type { HostOp } from "../../host";
import type { HostSnapshot, Link } from "../../state";
import { ownerMark } from "../../state";
import { batchLine } from "../../transport";
import type { PlanContext, Planner, Step } from "../plan";
import {
  bridgeTokens,
  carries,
  createTokens,
  HostBridgeObserved,
  intoBridge,
  linkTokens,
  moveTokens,
  ontoUplink,
  pathOn,
  routeTokens,
  Tokens,
} from "./path";
import { HostBridgeProps, nsOf } from "./schema";

export type { HostBridgeObserved } from "./path";

type P = HostBridgeProps;

export interface HostBridgePlanContext extends PlanContext {
  /** Addresses the SSH session reaches the host by; unset: no change touches the management path. */
  management?: readonly string[];
  /** The uplink the recorded state names: released when the desired props drop or change it. */
  formerUplink?: string;
}

/** Within ±1 centisecond the kernel's read-back is what the user asked for. */
function closeTo(live: number, want: number | undefined): number {
  return want !== undefined && Math.abs(live - want) <= 1 ? want : live;
}

/** The live values of the compared props (only those the user set), as read() reports them. */
export function liveProps(
  p: P,
  link: Link,
  ns: Link[],
): Record<string, unknown> {
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

// ------------------------------------------------------------------ steps

/** One step as token lines, with its inverse, before it becomes a typed host operation. */
interface Part {
  fwd: Tokens;
  back: Tokens;
  what: string;
  makes?: boolean;
}

function ipOp(p: P, tokens: Tokens, what: string): HostOp {
  return {
    kind: "batch",
    tool: "ip",
    netns: p.netns,
    lines: tokens.map((t) => batchLine(t)),
    what,
  };
}

function toSteps(p: P, parts: Part[]): Step[] {
  return parts
    .filter((s) => s.fwd.length > 0)
    .map((s) => ({
      op: ipOp(p, s.fwd, s.what),
      ...(s.makes ? { makes: true } : {}),
      ...(s.back.length > 0
        ? { undo: ipOp(p, s.back, `undo: ${s.what}`) }
        : {}),
    }));
}

/** The bridge made from nothing, then its uplink enslaved (moving the management path with it). */
function creation(
  p: P,
  o: HostBridgeObserved | undefined,
  ctx: HostBridgePlanContext,
): Part[] {
  const uplink = p.uplink
    ? o?.links.find((l) => l.name === p.uplink)
    : undefined;
  const path =
    o && uplink && carries(uplink, ctx.management ?? [])
      ? pathOn(o, uplink.name)
      : undefined;
  const mac = p.mac ?? (path ? uplink?.mac : undefined);
  const make: Part = {
    fwd: createTokens({ ...p, mac }, ownerMark(ctx.owner)),
    back: [["link", "del", p.name]],
    what: `create bridge ${p.name}`,
    makes: true,
  };
  if (!p.uplink) return [make];
  return [
    make,
    {
      fwd: [
        ["link", "set", p.uplink, "master", p.name],
        ...(path ? moveTokens(path, p.uplink, p.name, false) : []),
      ],
      back: path
        ? ontoUplink(p, p.uplink, path, false)
        : [["link", "set", p.uplink, "nomaster"]],
      what: `enslave uplink ${p.uplink} to bridge ${p.name}`,
    },
  ];
}

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

function propTokens(
  name: string,
  bridge: Partial<P>,
  link: Partial<P>,
): Tokens {
  const t: Tokens = [];
  if (bridgeTokens(bridge).length > 0)
    t.push(["link", "set", name, "type", "bridge", ...bridgeTokens(bridge)]);
  if (linkTokens(link).length > 0)
    t.push(["link", "set", name, ...linkTokens(link)]);
  return t;
}

function propPart(p: P, live: Record<string, unknown>): Part {
  const bridge = differing(BRIDGE_KEYS, p, live);
  const link = differing(LINK_KEYS, p, live);
  const was = (o: Partial<P>) =>
    Object.fromEntries(
      Object.keys(o).flatMap((k) =>
        live[k] === undefined ? [] : [[k, live[k]]],
      ),
    ) as Partial<P>;
  return {
    fwd: propTokens(p.name, bridge, link),
    back: propTokens(p.name, was(bridge), was(link)),
    what: `set properties of bridge ${p.name}`,
  };
}

type Present = HostBridgeObserved & { bridge: Link };

function releasePart(
  p: P,
  o: Present,
  old: string,
  mgmt: readonly string[],
): Part {
  const what = `release uplink ${old} from bridge ${p.name}`;
  const oldLink = o.links.find((l) => l.name === old);
  if (!oldLink || !carries(o.bridge, mgmt))
    return {
      fwd: [["link", "set", old, "nomaster"]],
      back: [["link", "set", old, "master", p.name]],
      what,
    };
  const path = pathOn(o, p.name);
  return {
    fwd: ontoUplink(p, old, path, false),
    back: intoBridge({ ...p, mac: o.bridge.mac }, oldLink, path),
    what,
  };
}

function enslavePart(
  p: P,
  o: Present,
  name: string,
  mgmt: readonly string[],
): Part {
  const what = `enslave uplink ${name} to bridge ${p.name}`;
  const uplink = o.links.find((l) => l.name === name);
  if (!uplink || !carries(uplink, mgmt))
    return {
      fwd: [["link", "set", name, "master", p.name]],
      back: [["link", "set", name, "nomaster"]],
      what,
    };
  const path = pathOn(o, name);
  const macBack = o.bridge.mac
    ? [["link", "set", p.name, "address", o.bridge.mac]]
    : [];
  return {
    fwd: intoBridge(p, uplink, path),
    back: [...ontoUplink(p, name, path, false), ...macBack],
    what,
  };
}

/** An existing bridge brought to the desired props: properties, uplink release, enslave, up/down. */
function change(p: P, o: Present, ctx: HostBridgePlanContext): Part[] {
  const mgmt = ctx.management ?? [];
  const masterOf = (n: string) => o.links.find((l) => l.name === n)?.master;
  const live = liveProps(p, o.bridge, o.links);
  const old = ctx.formerUplink;
  const set = (up: boolean) => [["link", "set", p.name, up ? "up" : "down"]];
  const parts = [propPart(p, live)];
  if (old && old !== p.uplink && masterOf(old) === p.name)
    parts.push(releasePart(p, o, old, mgmt));
  if (p.uplink && masterOf(p.uplink) !== p.name)
    parts.push(enslavePart(p, o, p.uplink, mgmt));
  if (p.up !== live.up)
    parts.push({
      fwd: set(p.up),
      back: set(!p.up),
      what: `set bridge ${p.name} ${p.up ? "up" : "down"}`,
    });
  const todo = parts.filter((s) => s.fwd.length > 0);
  // Setting a device down flushes the routes through it: a revert must bring them back, last.
  if (todo.length > 0)
    todo[0] = {
      ...todo[0],
      back: [
        ...todo[0].back,
        ...pathOn(o, p.name).routes.map((r) => routeTokens(r, p.name)),
      ],
    };
  return todo;
}

/** A batch line is its validated tokens joined by single spaces (transport batchLine). */
const tokensOf = (op: HostOp | undefined): Tokens =>
  op?.kind === "batch" ? op.lines.map((l) => l.split(" ")) : [];

/** A plan as one commit-confirmed change: the steps in order, their undos in reverse. */
export function confirmable(steps: readonly Step[]): {
  apply: Tokens;
  revert: Tokens;
} {
  return {
    apply: steps.flatMap((s) => tokensOf(s.op)),
    revert: [...steps].reverse().flatMap((s) => tokensOf(s.undo)),
  };
}

export const hostBridgePlanner: Planner<P, HostBridgeObserved> & {
  plan(
    desired: P,
    observed: HostBridgeObserved | undefined,
    ctx: HostBridgePlanContext,
  ): Step[];
} = {
  scope: (p) => scopeOf(p.netns),

  /** undefined when the bridge's namespace does not exist; else the bridge (if any) and its neighbours. */
  observe(snap: HostSnapshot, p) {
    const ns = snap.namespaces[nsOf(p)];
    if (!ns) return undefined;
    return {
      bridge: ns.links.find((l) => l.name === p.name),
      links: ns.links,
      routes: ns.routes,
    };
  },

  plan(p, o, ctx) {
    return toSteps(
      p,
      o?.bridge
        ? change(p, { ...o, bridge: o.bridge }, ctx)
        : creation(p, o, ctx),
    );
  },
};
