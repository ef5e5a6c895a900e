// VxlanDevice's pure planner (kinds/plan.ts): the device as the snapshot shows it, and the steps
// that make it match the props. Create, update, converging an own leftover and the boot restore
// script (plan(props, undefined)) all come from here.
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import type { HostSnapshot, Link } from "../../state";
import { findLink, ownerMark } from "../../state";
import { batchLine } from "../../transport";
import { asDeclared } from "../lists";
import type { Planner, Step } from "../plan";
import {
  changedPortFlags,
  livePortFlags,
  portFlagLines,
  PortFlagsInput,
} from "../portFlags";
import { VxlanDeviceProps, where } from "./schema";

type P = VxlanDeviceProps;

/** The vxlan device with the desired name, as the snapshot shows it, with its flood list. */
export type VxlanObserved = Link & {
  vxlan: NonNullable<Link["vxlan"]>;
  /** Destinations of its all-zeros (head-end replication) entries, sorted. */
  floodTo: string[];
};

/** The MAC of a VXLAN device's default (flood) entries. */
const FLOOD_MAC = "00:00:00:00:00:00";

const DEFAULT_PORT = 4789;

const learningToken = (on: boolean): string => (on ? "learning" : "nolearning");

function ipBatch(p: P, lines: string[], what: string): HostOp {
  return { kind: "batch", tool: "ip", netns: p.netns, lines, what };
}

/** One `bridge -batch` step of `lines`, none when there is nothing to do. */
function bridgeStep(p: P, lines: string[], what: string): Step[] {
  if (lines.length === 0) return [];
  return [
    { op: { kind: "batch", tool: "bridge", netns: p.netns, lines, what } },
  ];
}

function flagsStep(p: P, flags: PortFlagsInput | undefined): Step[] {
  return bridgeStep(
    p,
    portFlagLines(p.name, flags),
    `set port flags of ${where(p)} on ${p.bridge}`,
  );
}

/** Adds the missing flood destinations and removes the ones not wanted (bridge fdb ... self). */
function floodStep(p: P, live: readonly string[]): Step[] {
  const want = p.floodTo ?? [];
  const entry = (verb: string, dst: string) =>
    batchLine(["fdb", verb, FLOOD_MAC, "dev", p.name, "dst", dst, "self"]);
  const lines = [
    ...live.filter((d) => !want.includes(d)).map((d) => entry("del", d)),
    ...want
      .filter((d) => !live.includes(d))
      .map((d) => `${entry("append", d)} permanent`),
  ];
  return bridgeStep(
    p,
    lines,
    `set the flood list of ${where(p)} (${want.join(", ") || "none"})`,
  );
}

/** The step that removes the device (its remote fdb entries go with it). */
export function removal(p: P, what: string): Step {
  return { op: ipBatch(p, [batchLine(["link", "del", p.name])], what) };
}

/**
 * Make the device: add it and, in the same batch, mark it as this resource's (alias), put it on
 * its bridge and set mtu and state; then the bridge port flags (joining a bridge resets them).
 */
function creation(p: P, owner: string | undefined): Step[] {
  const set = [
    "link",
    "set",
    p.name,
    "alias",
    ownerMark(owner),
    "master",
    p.bridge,
  ];
  if (p.mtu !== undefined) set.push("mtu", String(p.mtu));
  set.push(p.up ? "up" : "down");
  const add = [
    "link",
    "add",
    p.name,
    "type",
    "vxlan",
    "id",
    String(p.vni),
    "local",
    p.local,
    "dstport",
    String(p.port),
    learningToken(p.learning),
  ];
  return [
    {
      op: ipBatch(
        p,
        [batchLine(add), batchLine(set)],
        `create ${where(p)} on bridge ${p.bridge}`,
      ),
      makes: true,
      undo: removal(p, `remove ${where(p)}`).op,
    },
    ...flagsStep(p, p.portFlags),
    ...floodStep(p, []),
  ];
}

/** In-place changes: local address and learning, bridge, mtu, state, port flags. */
function changes(p: P, live: VxlanObserved): Step[] {
  const lines: string[] = [];
  const vx: string[] = [];
  if (live.vxlan.local !== p.local) vx.push("local", p.local);
  if ((live.vxlan.learning ?? false) !== p.learning)
    vx.push(learningToken(p.learning));
  if (vx.length > 0)
    lines.push(batchLine(["link", "set", p.name, "type", "vxlan", ...vx]));
  const set: string[] = [];
  const joins = live.master !== p.bridge;
  if (joins) set.push("master", p.bridge);
  if (p.mtu !== undefined && live.mtu !== p.mtu) set.push("mtu", String(p.mtu));
  if (live.adminUp !== p.up) set.push(p.up ? "up" : "down");
  if (set.length > 0) lines.push(batchLine(["link", "set", p.name, ...set]));
  const steps: Step[] =
    lines.length > 0
      ? [{ op: ipBatch(p, lines, `reconfigure ${where(p)}`) }]
      : [];
  // A device joining a bridge starts with the kernel's default port flags: set all of ours again.
  const flags = joins
    ? p.portFlags
    : changedPortFlags(livePortFlags(live, p.portFlags), p.portFlags);
  return [...steps, ...flagsStep(p, flags), ...floodStep(p, live.floodTo)];
}

export const vxlanDevicePlanner: Planner<P, VxlanObserved> = {
  scope: (p) => scopeOf(p.netns),

  observe(snap: HostSnapshot, p: P): VxlanObserved | undefined {
    const link = findLink(snap, p.netns ?? "", p.name);
    if (link?.kind !== "vxlan" || !link.vxlan) return undefined;
    const floodTo = (snap.namespaces[p.netns ?? ""]?.fdb ?? [])
      .filter((r) => r.dev === p.name && r.mac === FLOOD_MAC && r.dst)
      .map((r) => r.dst!)
      .sort();
    return { ...link, vxlan: link.vxlan, floodTo };
  },

  plan(p, live, ctx): Step[] {
    if (!live) return creation(p, ctx.owner);
    // The kernel cannot change the VNI or the UDP port of a device: make it again.
    if (
      live.vxlan.vni !== p.vni ||
      (live.vxlan.port ?? DEFAULT_PORT) !== p.port
    )
      return [
        removal(
          p,
          `remove ${live.name} (vni ${live.vxlan.vni}) to make it again`,
        ),
        ...creation(p, ctx.owner),
      ];
    return changes(p, live);
  },
};

/** The live values of the compared props (read()), from what observe() found. */
export function liveProps(live: VxlanObserved, p: P): Record<string, unknown> {
  return {
    name: p.name,
    netns: p.netns,
    vni: live.vxlan.vni,
    local: live.vxlan.local ?? "(none)",
    port: live.vxlan.port ?? DEFAULT_PORT,
    learning: live.vxlan.learning ?? false,
    bridge: live.master ?? "(none)",
    portFlags: livePortFlags(live, p.portFlags),
    mtu: p.mtu === undefined ? undefined : live.mtu,
    up: live.adminUp,
    // Absent stays absent while the host has no flood entry (devices recorded before floodTo).
    floodTo:
      p.floodTo === undefined && live.floodTo.length === 0
        ? undefined
        : asDeclared(p.floodTo ?? [], live.floodTo),
  };
}
