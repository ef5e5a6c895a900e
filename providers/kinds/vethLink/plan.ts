// VethLink's pure planner: the steps that take the host from what it holds of a pair (observe.ts)
// to the desired props. create, update, converge, read and the boot restore script all go
// through it; nothing here touches a host.
//   plan(p, undefined)  the whole creation: the pair made and marked in one batch (the end in the
//                       batch's own namespace), then each end configured and marked.
//   plan(p, observed)   only what differs from the live kernel, end by end.
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import { ownerMark } from "../../state";
import { batchLine } from "../../transport";
import type { PlanContext, Planner, Step } from "../plan";
import { changedPortFlags, livePortFlags, portFlagLines } from "../portFlags";
import {
  anchorOf,
  hasAddress,
  hasRoute,
  ObservedEnd,
  ObservedPair,
  observeEnd,
  pointsAt,
  strangerRoutes,
} from "./observe";
import {
  END_SYSCTLS,
  ENDS,
  endSysctlValue,
  pairLabel,
  SYSCTL_PROPS,
  VethEnd,
  VethLinkProps,
  VethRoute,
} from "./schema";

// ---------------------------------------------------------------------------------------
// Planning one end: from `o` (undefined: just created) to `end`
// ---------------------------------------------------------------------------------------

/** One batch line and the line that reverts it, where commit-confirm needs one. */
interface Line {
  do: string[];
  undo?: string[];
}

/** `mark`: stamp the end with it (a new end, or one of this resource's leftovers); undefined: leave the alias. */
function linkLines(
  end: VethEnd,
  o: ObservedEnd | undefined,
  mtu: number | undefined,
  mark: string | undefined,
): Line[] {
  const set = ["link", "set", "dev", end.name];
  const lines: Line[] = [];
  if (mark !== undefined && o?.link.alias !== mark)
    lines.push({ do: [...set, "alias", mark] });
  if (mtu !== undefined && o?.link.mtu !== mtu)
    lines.push({
      do: [...set, "mtu", String(mtu)],
      undo: o && [...set, "mtu", String(o.link.mtu)],
    });
  if (end.mac !== undefined && o?.link.mac !== end.mac)
    lines.push({
      do: [...set, "address", end.mac],
      undo:
        o?.link.mac === undefined ? undefined : [...set, "address", o.link.mac],
    });
  if (end.master !== undefined && o?.link.master !== end.master)
    lines.push({
      do: [...set, "master", end.master],
      undo:
        o?.link.master === undefined
          ? [...set, "nomaster"]
          : [...set, "master", o.link.master],
    });
  return lines;
}

function addressLines(end: VethEnd, o: ObservedEnd | undefined): Line[] {
  const have = o?.addresses ?? [];
  const addr = (verb: string, a: string) => ["addr", verb, a, "dev", end.name];
  return [
    ...have
      .filter((a) => !hasAddress(end.addresses, a))
      .map((a) => ({ do: addr("del", a), undo: addr("add", a) })),
    ...end.addresses
      .filter((a) => !hasAddress(have, a))
      // From nothing (create, boot restore): `replace`, so a replay finds the address and goes on.
      .map((a) => ({
        do: [
          ...addr(o ? "add" : "replace", a),
          // nodad: an IPv6 address usable at once, without duplicate address detection.
          ...(end.nodad && a.includes(":") ? ["nodad"] : []),
        ],
        undo: addr("del", a),
      })),
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
function routeLines(end: VethEnd, o: ObservedEnd | undefined): Line[] {
  const route = (verb: string, r: VethRoute) => [
    "route",
    verb,
    ...routeArgs(end, r),
  ];
  return [
    ...strangerRoutes(end, o).map((r) => ({
      do: route("del", r),
      undo: route("add", r),
    })),
    ...end.routes
      .filter((r) => !hasRoute(o, r))
      .map((r) => ({ do: route("replace", r), undo: route("del", r) })),
  ];
}

/** The end's `ip -batch`, and its inverse (in reverse order) for commit-confirm. */
function ipLines(
  end: VethEnd,
  o: ObservedEnd | undefined,
  mtu: number | undefined,
  mark: string | undefined,
): { lines: string[]; undo: string[] } {
  const updown = (up: boolean) => [
    "link",
    "set",
    "dev",
    end.name,
    up ? "up" : "down",
  ];
  const upDown: Line[] =
    end.up !== (o?.link.adminUp ?? false)
      ? [{ do: updown(end.up), undo: updown(!end.up) }]
      : [];
  const lines = [
    ...linkLines(end, o, mtu, mark),
    ...addressLines(end, o),
    ...upDown,
    ...(end.up ? routeLines(end, o) : []),
  ];
  return {
    lines: lines.map((l) => batchLine(l.do)),
    undo: lines.flatMap((l) => (l.undo ? [batchLine(l.undo)] : [])).reverse(),
  };
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

/** `early`: only the sysctl that must precede the end's addresses (IPv6 on), else all the others. */
function sysctlCommands(
  end: VethEnd,
  o: ObservedEnd | undefined,
  early: boolean,
): string[][] {
  const wanted = SYSCTL_PROPS.filter(
    (prop) =>
      (prop === "ipv6") === early &&
      end[prop] !== undefined &&
      o?.sysctls[prop] !== end[prop],
  );
  // The '/' form keeps interface names that contain '.' intact.
  return wanted.map((prop) => [
    "sysctl",
    "-q",
    "-w",
    `net/${END_SYSCTLS[prop].family}/conf/${end.name}/${END_SYSCTLS[prop].key}=${endSysctlValue(prop, end[prop] as boolean)}`,
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
  const sysctlStep = (commands: string[][], what: string): void => {
    if (commands.length > 0)
      steps.push({ op: { kind: "sh", netns: end.netns, commands, what } });
  };
  // The kernel refuses IPv6 addresses (and routes) on an interface with IPv6 disabled.
  sysctlStep(
    sysctlCommands(end, o, true),
    `set IPv6 on ${end.name} before its addresses`,
  );
  const { lines, undo } = ipLines(end, o, mtu, mark);
  const what = `configure veth end ${end.name}`;
  if (lines.length > 0)
    steps.push({
      op: { kind: "batch", tool: "ip", netns: end.netns, lines, what },
      undo:
        undo.length === 0
          ? undefined
          : {
              kind: "batch",
              tool: "ip",
              netns: end.netns,
              lines: undo,
              what: `revert: ${what}`,
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
  sysctlStep(sysctlCommands(end, o, false), `set sysctls of ${end.name}`);
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
