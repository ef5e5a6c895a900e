// VxlanDevice's pure planner (kinds/plan.ts): the device as the snapshot shows it, and the steps
// that make it match the props. Create, update, converging an own leftover and the boot restore
// script (plan(props, undefined)) all come from here.
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import type { HostSnapshot, Link } from "../../state";
import { findLink, ownerMark } from "../../state";
import { batchLine } from "../../transport";
import type { Planner, Step } from "../plan";
import {
  changedPortFlags,
  livePortFlags,
  portFlagLines,
  PortFlagsInput,
} from "../portFlags";
import { VxlanDeviceProps, where } from "./schema";

type P = VxlanDeviceProps;

/** The vxlan device with the desired name, as the snapshot shows it. */
export type VxlanObserved = Link & { vxlan: NonNullable<Link["vxlan"]> };

const DEFAULT_PORT = 4789;

const learningToken = (on: boolean): string => (on ? "learning" : "nolearning");

function ipBatch(p: P, lines: string[], what: string): HostOp {
  return { kind: "batch", tool: "ip", netns: p.netns, lines, what };
}

function flagsStep(p: P, flags: PortFlagsInput | undefined): Step[] {
  const lines = portFlagLines(p.name, flags);
  if (lines.length === 0) return [];
  return [
    {
      op: {
        kind: "batch",
        tool: "bridge",
        netns: p.netns,
        lines,
        what: `set port flags of ${where(p)} on ${p.bridge}`,
      },
    },
  ];
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
  return [...steps, ...flagsStep(p, flags)];
}

export const vxlanDevicePlanner: Planner<P, VxlanObserved> = {
  scope: (p) => scopeOf(p.netns),

  observe(snap: HostSnapshot, p: P): VxlanObserved | undefined {
    const link = findLink(snap, p.netns ?? "", p.name);
    return link?.kind === "vxlan" && link.vxlan
      ? (link as VxlanObserved)
      : undefined;
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
  };
}
