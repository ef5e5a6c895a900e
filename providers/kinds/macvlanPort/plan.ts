// MacvlanPort's pure planner: what the host holds of the port (observe) and the steps that take
// it to the desired props (plan). create, update, converge, read and the boot restore script all
// go through it.
//   plan(p, undefined)  make and mark the port beside its lower (and move it to its namespace) in
//                       one batch, then give it its addresses and bring it up where it lives.
//   plan(p, observed)   only what differs from the live port: mode, source list, MAC, MTU,
//                       addresses (a set: strangers are removed), up/down.
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import type { HostSnapshot, Link } from "../../state";
import { findLink, ownerMark, ROOT_NS } from "../../state";
import { batchLine } from "../../transport";
import type { PlanContext, Planner, Step } from "../plan";
import { asDeclared, sameSet } from "../lists";
import { moves, nsKey, P, targetOf } from "./schema";

/** The port as the snapshot shows it, in its target namespace. */
export interface ObservedPort {
  link: Link;
  /** Where its lower is, as far as the snapshot can tell (see lowerOf). */
  lower: { lower: string; lowerNetns?: string };
  /** Without the IPv6 link-local address the kernel gives every port it brings up (unless listed). */
  addresses: string[];
}

/**
 * Where the lower is, as far as the snapshot can tell. Across namespaces the kernel gives only an
 * ifindex and a netns id, and an unnamed namespace (root) cannot be named from inside another one:
 * then the index is looked up in lowerNetns. A lower cannot vanish under its ports (deleting it
 * deletes them), so an unresolvable reference is reported as declared rather than as drift.
 */
function lowerOf(
  snap: HostSnapshot,
  p: P,
  link: Link,
): { lower: string; lowerNetns?: string } {
  const declared = { lower: p.lower, lowerNetns: p.lowerNetns };
  if (link.peerNetnsId === undefined)
    return link.peerName !== undefined
      ? { lower: link.peerName, lowerNetns: targetOf(p) }
      : declared;
  // The declared lower, at the index the kernel gives, settles it. The snapshot's own peer
  // resolution pairs links by mutual indexes, which fits veths, not a macvlan: an unrelated link
  // elsewhere whose indexes happen to cross this one's would otherwise be taken for the lower.
  const declaredLower = snap.namespaces[nsKey(p.lowerNetns)]?.links.find(
    (l) => l.index === link.peerIndex,
  );
  if (declaredLower?.name === p.lower) return declared;
  if (link.peerNetns !== undefined && link.peerName !== undefined) {
    return {
      lower: link.peerName,
      lowerNetns: link.peerNetns === ROOT_NS ? undefined : link.peerNetns,
    };
  }
  return declaredLower
    ? { lower: declaredLower.name, lowerNetns: p.lowerNetns }
    : declared;
}

function observe(snap: HostSnapshot, p: P): ObservedPort | undefined {
  const link = findLink(snap, nsKey(targetOf(p)), p.name);
  if (!link) return undefined;
  return {
    link,
    lower: lowerOf(snap, p, link),
    addresses: link.addresses.filter(
      (a) => !/^fe80:/i.test(a) || p.addresses.includes(a),
    ),
  };
}

/** The managed properties as the host holds them, in the shape of the props (read). */
export function liveOf(p: P, o: ObservedPort): Record<string, unknown> {
  const { link } = o;
  return {
    name: p.name,
    type: link.infoKind ?? link.kind,
    ...o.lower,
    netns: p.netns,
    mode: link.macvlan?.mode ?? "(not a macvlan)",
    sourceMacs:
      p.sourceMacs === undefined
        ? undefined
        : asDeclared(p.sourceMacs, link.macvlan?.macs ?? []),
    mac: p.mac === undefined ? undefined : link.mac,
    mtu: p.mtu === undefined ? undefined : link.mtu,
    addresses: asDeclared(p.addresses, o.addresses),
    up: link.adminUp,
  };
}

/** Outputs that are not props: the interface index and, for a macvtap, its character device. */
export function outputsOf(link: Link | undefined): Record<string, unknown> {
  if (!link) return {};
  return {
    ifindex: link.index,
    devicePath: link.kind === "macvtap" ? `/dev/tap${link.index}` : undefined,
  };
}

// ---------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------

function modeTokens(p: P): string[] {
  const macs =
    p.mode === "source" ? ["macaddr", "set", ...(p.sourceMacs ?? [])] : [];
  return ["type", p.type, "mode", p.mode, ...macs];
}

function attrTokens(p: P, o: ObservedPort | undefined): string[] {
  const t: string[] = [];
  if (p.mac !== undefined && p.mac !== o?.link.mac) t.push("address", p.mac);
  if (p.mtu !== undefined && p.mtu !== o?.link.mtu)
    t.push("mtu", String(p.mtu));
  return t;
}

/** Leaving source mode the kernel flushes the source list itself; entering it, `macaddr set` fills it. */
function modeLines(p: P, o: ObservedPort): string[] {
  const live = o.link.macvlan;
  const macsDiffer =
    p.mode === "source" && !sameSet(live?.macs ?? [], p.sourceMacs ?? []);
  if (live?.mode === p.mode && !macsDiffer) return [];
  return [batchLine(["link", "set", p.name, ...modeTokens(p)])];
}

function addressLines(p: P, o: ObservedPort | undefined): string[] {
  const have = o?.addresses ?? [];
  return [
    ...have
      .filter((a) => !p.addresses.includes(a))
      .map((a) => batchLine(["addr", "del", a, "dev", p.name])),
    // From nothing (create, boot restore): `replace`, so a replay finds the address and goes on.
    ...p.addresses
      .filter((a) => !have.includes(a))
      .map((a) =>
        batchLine([
          "addr",
          o ? "add" : "replace",
          a,
          "dev",
          p.name,
          // nodad: an IPv6 address usable at once (the kernel ignores nothing else here).
          ...(p.nodad && a.includes(":") ? ["nodad"] : []),
        ]),
      ),
  ];
}

/** Delete the port where it lives. */
export function deleteOp(p: P, ns: string | undefined, what: string): HostOp {
  return {
    kind: "batch",
    tool: "ip",
    netns: ns,
    lines: [batchLine(["link", "del", p.name])],
    what,
  };
}

/**
 * Run where the lower lives: made straight in its target namespace, so a replay (boot restore) that
 * finds it there fails here ("File exists") instead of making a second port beside the lower.
 */
function createStep(p: P): Step {
  const into = moves(p) ? ["netns", targetOf(p)!] : [];
  const lines = [
    batchLine([
      "link",
      "add",
      "link",
      p.lower,
      "name",
      p.name,
      ...into,
      ...modeTokens(p),
    ]),
  ];
  return {
    op: {
      kind: "batch",
      tool: "ip",
      netns: p.lowerNetns,
      lines,
      what: `create ${p.type} ${p.name} (mode ${p.mode}) on ${p.lower}`,
    },
    makes: true,
    undo: deleteOp(p, targetOf(p), `remove half-made ${p.type} ${p.name}`),
  };
}

/** In place on a live port: mode (and source list), then MAC and MTU. */
function changeLines(p: P, o: ObservedPort): string[] {
  const attrs = attrTokens(p, o);
  return [
    ...modeLines(p, o),
    ...(attrs.length > 0 ? [batchLine(["link", "set", p.name, ...attrs])] : []),
  ];
}

/** A new port, in its namespace: our mark, then MAC and MTU. */
function markLines(p: P, mark: string): string[] {
  const attrs = attrTokens(p, undefined);
  return [
    batchLine(["link", "set", p.name, "alias", mark]),
    ...(attrs.length > 0 ? [batchLine(["link", "set", p.name, ...attrs])] : []),
  ];
}

function plan(p: P, o: ObservedPort | undefined, ctx: PlanContext): Step[] {
  const lines = [
    ...(o === undefined
      ? markLines(p, ownerMark(ctx.owner))
      : changeLines(p, o)),
    ...addressLines(p, o),
    ...(p.up !== (o?.link.adminUp ?? false)
      ? [batchLine(["link", "set", p.name, p.up ? "up" : "down"])]
      : []),
  ];
  const configure: Step[] =
    lines.length === 0
      ? []
      : [
          {
            op: {
              kind: "batch",
              tool: "ip",
              netns: targetOf(p),
              lines,
              what: `${o === undefined ? "configure" : "update"} ${p.type} ${p.name}`,
            },
          },
        ];
  return o === undefined ? [createStep(p), ...configure] : configure;
}

export const macvlanPortPlanner: Planner<P, ObservedPort> = {
  scope: (p) => scopeOf(p.lowerNetns, targetOf(p)),
  observe,
  plan,
};
