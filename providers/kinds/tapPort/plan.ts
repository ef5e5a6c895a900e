// The TapPort planner (kinds/plan.ts): pure, from the desired props and what the snapshot holds.
// Owner, group and the queue/header flags are fixed when the tap is created (TUNSETIFF), so they
// are never planned as changes: changing any of them replaces the tap.
import { scopeOf } from "../../host";
import type { HostOp } from "../../host";
import { findLink, HostSnapshot, Link, ownerMark } from "../../state";
import { batchLine } from "../../transport";
import type { Planner, Step } from "../plan";
import { changedPortFlags, livePortFlags, portFlagLines } from "../portFlags";
import type { PortFlagsInput } from "../portFlags";
import { TapPortProps, where } from "./schema";

/** What is at the tap's name: the device (of whatever kind) as the snapshot shows it. */
export type TapPortObserved = Link;

function tuntapAdd(p: TapPortProps): string {
  const tokens = ["tuntap", "add", "dev", p.name, "mode", "tap"];
  if (p.owner !== undefined) tokens.push("user", String(p.owner));
  if (p.group !== undefined) tokens.push("group", String(p.group));
  if (p.multiQueue) tokens.push("multi_queue");
  if (p.vnetHdr) tokens.push("vnet_hdr");
  return batchLine(tokens);
}

function linkSetup(p: TapPortProps, mark: string): string {
  const tokens = ["link", "set", p.name, "alias", mark];
  if (p.mtu !== undefined) tokens.push("mtu", String(p.mtu));
  if (p.mac !== undefined) tokens.push("address", p.mac);
  if (p.master !== undefined) tokens.push("master", p.master);
  tokens.push(p.up ? "up" : "down");
  return batchLine(tokens);
}

/** Delete the tap (the undo of a half-made create, and delete itself). */
export function deleteTapOp(p: TapPortProps, what: string): HostOp {
  return {
    kind: "batch",
    tool: "ip",
    netns: p.netns,
    lines: [batchLine(["link", "del", p.name])],
    what,
  };
}

function flagSteps(p: TapPortProps, flags: PortFlagsInput | undefined): Step[] {
  const lines = portFlagLines(p.name, flags);
  return lines.length === 0
    ? []
    : [
        {
          op: {
            kind: "batch",
            tool: "bridge",
            netns: p.netns,
            lines,
            what: `set port flags of ${where(p)}`,
          },
        },
      ];
}

const sameMac = (a: string | undefined, b: string | undefined) =>
  a?.toLowerCase() === b?.toLowerCase();

export const tapPortPlanner: Planner<TapPortProps, TapPortObserved> = {
  scope: (p) => scopeOf(p.netns),

  observe: (snap: HostSnapshot, p) => findLink(snap, p.netns ?? "", p.name),

  plan(p, observed, ctx) {
    if (!observed) {
      return [
        {
          // The mark goes on in the same step that makes the tap.
          op: {
            kind: "batch",
            tool: "ip",
            netns: p.netns,
            lines: [tuntapAdd(p), linkSetup(p, ownerMark(ctx.owner))],
            what: `create ${where(p)}`,
          },
          makes: true,
          undo: deleteTapOp(p, `remove half-made ${where(p)}`),
        },
        ...flagSteps(p, p.portFlags),
      ];
    }
    const tokens: string[] = [];
    if (p.mtu !== undefined && p.mtu !== observed.mtu)
      tokens.push("mtu", String(p.mtu));
    if (p.mac !== undefined && !sameMac(p.mac, observed.mac))
      tokens.push("address", p.mac);
    const masterChanged = p.master !== observed.master;
    if (masterChanged)
      tokens.push(...(p.master ? ["master", p.master] : ["nomaster"]));
    if (p.up !== observed.adminUp) tokens.push(p.up ? "up" : "down");
    const link: Step[] =
      tokens.length === 0
        ? []
        : [
            {
              op: {
                kind: "batch",
                tool: "ip",
                netns: p.netns,
                lines: [batchLine(["link", "set", p.name, ...tokens])],
                what: `reconfigure ${where(p)}`,
              },
            },
          ];
    // A port joining a bridge starts with the kernel's default flags: set all of ours again.
    const flags = masterChanged
      ? p.portFlags
      : changedPortFlags(livePortFlags(observed, p.portFlags), p.portFlags);
    return [...link, ...flagSteps(p, flags)];
  },
};
