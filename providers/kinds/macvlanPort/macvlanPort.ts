// MacvlanPort: a macvlan or macvtap on a lower device (seed 004), the guest attachment without a
// bridge: bridge mode switches port-to-port inside the lower, vepa sends it out to a hairpin switch,
// private forbids it, passthru hands the whole lower to one guest, source admits listed senders.
// The port is made where its lower lives and then moved into its target namespace, because a
// macvlan can only be created next to its lower device.
import { scopeOf } from "../../host";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { HostSnapshot, Link, ROOT_NS, findLink } from "../../state";
import { KindContext, ResourceKind } from "../kind";
import { ABSENT, found, isGone, ownerMark } from "../../state";
import { batchLine } from "../../transport";
import {
  IfName,
  isLinkLocal,
  MacAddress,
  NetnsName,
  OwnableCidr,
} from "../../schema";

export const MACVLAN_MODES = [
  "bridge",
  "vepa",
  "private",
  "passthru",
  "source",
] as const;

export const MacvlanPortProps = z.object({
  name: IfName,
  type: z.enum(["macvlan", "macvtap"]).default("macvlan"),
  /** The device the port sits on; it must not be a bridge port (the kernel answers "busy"). */
  lower: IfName,
  /** Where the lower device lives, and so where the port is created (unset: root namespace). */
  lowerNetns: NetnsName.optional(),
  /** Where the port ends up (moved there after creation); unset: it stays beside its lower. */
  netns: NetnsName.optional(),
  mode: z.enum(MACVLAN_MODES).default("bridge"),
  /** Senders admitted in source mode (and only there). */
  sourceMacs: z.array(MacAddress).optional(),
  mac: MacAddress.optional(),
  mtu: z.number().int().min(68).max(65535).optional(),
  /** Assigned in the target namespace; hostnet owns exactly this set. */
  addresses: z.array(OwnableCidr).default([]),
  /** Admit link-local addresses (169.254.0.0/16, fe80::/10) in addresses; refused unless set. */
  linkLocal: z.boolean().optional(),
  up: z.boolean().default(true),
});
export type MacvlanPortProps = z.infer<typeof MacvlanPortProps>;
type P = MacvlanPortProps;

const targetOf = (p: P): string | undefined => p.netns ?? p.lowerNetns;
const moves = (p: P): boolean => targetOf(p) !== p.lowerNetns;
const nsKey = (ns: string | undefined): string => ns ?? ROOT_NS;
const nsLabel = (ns: string | undefined): string =>
  ns ? `netns ${ns}` : "the root namespace";
const sorted = (xs: readonly string[]): string[] => [...xs].sort();
const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

function validate(p: P): Array<[string, string]> {
  const issues: Array<[string, string]> = [];
  if (
    p.mode === "source" &&
    (p.sourceMacs === undefined || p.sourceMacs.length === 0)
  ) {
    issues.push([
      "sourceMacs",
      'mode "source" needs sourceMacs: the MAC addresses whose frames this port receives',
    ]);
  }
  if (p.mode !== "source" && p.sourceMacs !== undefined) {
    issues.push([
      "sourceMacs",
      `sourceMacs only apply in mode "source" (mode is "${p.mode}"); remove them or set mode: "source"`,
    ]);
  }
  const dup = p.sourceMacs?.find((m, i) => p.sourceMacs!.indexOf(m) !== i);
  if (dup !== undefined) issues.push(["sourceMacs", `${dup} is listed twice`]);
  const dupAddr = p.addresses.find((a, i) => p.addresses.indexOf(a) !== i);
  if (dupAddr !== undefined)
    issues.push(["addresses", `${dupAddr} is listed twice`]);
  p.addresses.forEach((a, i) => {
    if (!p.linkLocal && isLinkLocal(a))
      issues.push([
        `addresses[${i}]`,
        `${a} is link-local; set linkLocal: true if you mean it`,
      ]);
  });
  return issues;
}

/**
 * The kernel cannot switch a port into or out of passthru in place (EINVAL, measured on 6.x).
 * Gets raw props; a mode still unknown in preview counts as "not passthru" until it is known.
 */
function replaces(
  olds: Record<string, any>,
  news: Record<string, any>,
): string[] {
  const [was, now] = [olds.mode ?? "bridge", news.mode ?? "bridge"];
  return was !== now && (was === "passthru") !== (now === "passthru")
    ? ["mode"]
    : [];
}

function modeTokens(p: P): string[] {
  const macs =
    p.mode === "source" ? ["macaddr", "set", ...(p.sourceMacs ?? [])] : [];
  return ["type", p.type, "mode", p.mode, ...macs];
}

function attrTokens(p: P, olds?: P): string[] {
  const t: string[] = [];
  if (p.mac !== undefined && p.mac !== olds?.mac) t.push("address", p.mac);
  if (p.mtu !== undefined && p.mtu !== olds?.mtu) t.push("mtu", String(p.mtu));
  return t;
}

/** Run where the lower lives: make, mark as ours, then move to the target. */
function createLines(p: P, mark: string): string[] {
  const lines = [
    batchLine([
      "link",
      "add",
      "link",
      p.lower,
      "name",
      p.name,
      ...modeTokens(p),
    ]),
    batchLine(["link", "set", p.name, "alias", mark]),
  ];
  const attrs = attrTokens(p);
  if (attrs.length > 0)
    lines.push(batchLine(["link", "set", p.name, ...attrs]));
  if (moves(p))
    lines.push(batchLine(["link", "set", p.name, "netns", targetOf(p)!]));
  return lines;
}

/** Run in the target namespace: what only makes sense once the port is there. */
function configureLines(p: P): string[] {
  const lines = p.addresses.map((a) =>
    batchLine(["addr", "add", a, "dev", p.name]),
  );
  if (p.up) lines.push(batchLine(["link", "set", p.name, "up"]));
  return lines;
}

async function preflight(ctx: KindContext, p: P): Promise<void> {
  const snap = await ctx.host.snapshot(scopeOf(p.lowerNetns, targetOf(p)));
  for (const ns of new Set([p.lowerNetns, targetOf(p)])) {
    if (!snap.namespaces[nsKey(ns)]) {
      throw new Error(
        `${ctx.host.label}: ${nsLabel(ns)} does not exist, so ${p.type} ${p.name} cannot be made there. Create the namespace first (VmNetns) or fix netns/lowerNetns.`,
      );
    }
    if (findLink(snap, nsKey(ns), p.name)) {
      throw new Error(
        `${ctx.host.label} (${nsLabel(ns)}): interface ${p.name} already exists. To manage it with hostnet, set adopt: true on this MacvlanPort; otherwise pick another name or delete it (ip link del ${p.name}).`,
      );
    }
  }
  if (!findLink(snap, nsKey(p.lowerNetns), p.lower)) {
    throw new Error(
      `${ctx.host.label} (${nsLabel(p.lowerNetns)}): lower device ${p.lower} of ${p.type} ${p.name} does not exist. Create it first, or fix lower/lowerNetns (the lower must live in lowerNetns).`,
    );
  }
}

/** Remove a half-made port wherever it got to; only this resource's (its mark), so a racing namesake survives. */
async function undoCreate(ctx: KindContext, p: P): Promise<string> {
  const snap = await ctx.host.snapshot(scopeOf(p.lowerNetns, targetOf(p)));
  const problems: string[] = [];
  for (const ns of new Set([p.lowerNetns, targetOf(p)])) {
    if (findLink(snap, nsKey(ns), p.name)?.alias !== ownerMark(ctx.owner))
      continue;
    try {
      await ctx.host.run({
        kind: "batch",
        tool: "ip",
        netns: ns,
        lines: [batchLine(["link", "del", p.name])],
        what: `remove half-made ${p.type} ${p.name}`,
      });
    } catch (err) {
      if (!isGone(err)) problems.push(String(err));
    }
  }
  return problems.length === 0
    ? ""
    : `\nCleaning up also failed; remove ${p.name} by hand:\n${problems.join("\n")}`;
}

function explain(ctx: KindContext, p: P, err: unknown, cleanup: string): Error {
  const msg = String(err instanceof Error ? err.message : err);
  if (/File exists/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: interface ${p.name} appeared while hostnet was creating it. Set adopt: true to manage the existing one, or pick another name.${cleanup}`,
    );
  }
  if (/Invalid argument/.test(msg) && p.mode === "passthru") {
    return new Error(
      `${msg}\n${ctx.host.label}: a lower device in passthru mode carries exactly one macvlan/macvtap; ${p.lower} already has another. Remove the others (ip -d link show) or choose another mode.${cleanup}`,
    );
  }
  if (/Invalid argument/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: the kernel refused ${p.type} ${p.name} on ${p.lower}; if ${p.lower} already carries a passthru port, it can carry no other.${cleanup}`,
    );
  }
  if (/busy/i.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: ${p.lower} is busy, typically because it is a bridge port; a macvlan lower must not be enslaved. Use another lower device.${cleanup}`,
    );
  }
  return new Error(`${msg}${cleanup}`);
}

function outputsOf(link: Link | undefined): Record<string, unknown> {
  if (!link) return {};
  return {
    ifindex: link.index,
    devicePath: link.kind === "macvtap" ? `/dev/tap${link.index}` : undefined,
  };
}

async function liveOutputs(
  ctx: KindContext,
  p: P,
): Promise<Record<string, unknown>> {
  return outputsOf(
    findLink(
      await ctx.host.snapshot(scopeOf(p.lowerNetns, targetOf(p))),
      nsKey(targetOf(p)),
      p.name,
    ),
  );
}

/**
 * Where the lower is, as far as the snapshot can tell. Across namespaces the kernel gives only an
 * ifindex and a netns id, and an unnamed namespace (root) cannot be named from inside another one:
 * then the index is looked up in lowerNetns. A lower cannot vanish under its ports (deleting it
 * deletes them), so an unresolvable reference is reported as declared rather than as drift.
 */
function liveLower(
  snap: HostSnapshot,
  p: P,
  link: Link,
): { lower: string; lowerNetns?: string } {
  const declared = { lower: p.lower, lowerNetns: p.lowerNetns };
  if (link.peerNetnsId === undefined)
    return link.peerName !== undefined
      ? { lower: link.peerName, lowerNetns: targetOf(p) }
      : declared;
  if (link.peerNetns !== undefined && link.peerName !== undefined) {
    return {
      lower: link.peerName,
      lowerNetns: link.peerNetns === ROOT_NS ? undefined : link.peerNetns,
    };
  }
  const byIndex = snap.namespaces[nsKey(p.lowerNetns)]?.links.find(
    (l) => l.index === link.peerIndex,
  );
  return byIndex ? { lower: byIndex.name, lowerNetns: p.lowerNetns } : declared;
}

/** Lists read back in the user's order when they hold the same items, so order is never drift. */
function asDeclared(
  declared: readonly string[],
  live: readonly string[],
): string[] {
  return sameSet(declared, live) ? [...declared] : sorted(live);
}

function liveProps(
  snap: HostSnapshot,
  p: P,
  link: Link,
): Record<string, unknown> {
  // The kernel adds an IPv6 link-local address to every port it brings up: not ours to judge.
  const addrs = link.addresses.filter(
    (a) => !/^fe80:/i.test(a) || p.addresses.includes(a),
  );
  return {
    name: p.name,
    type: link.infoKind ?? link.kind,
    ...liveLower(snap, p, link),
    netns: p.netns,
    mode: link.macvlan?.mode ?? "(not a macvlan)",
    sourceMacs:
      p.sourceMacs === undefined
        ? undefined
        : asDeclared(p.sourceMacs, link.macvlan?.macs ?? []),
    mac: p.mac === undefined ? undefined : link.mac,
    mtu: p.mtu === undefined ? undefined : link.mtu,
    addresses: asDeclared(p.addresses, addrs),
    up: link.adminUp,
  };
}

/** Leaving source mode the kernel flushes the source list itself; entering it, `macaddr set` fills it. */
function modeLines(o: P, n: P): string[] {
  const macsChanged =
    n.mode === "source" && !sameSet(o.sourceMacs ?? [], n.sourceMacs ?? []);
  if (o.mode === n.mode && !macsChanged) return [];
  return [batchLine(["link", "set", n.name, ...modeTokens(n)])];
}

function addressLines(o: P, n: P): string[] {
  const gone = o.addresses
    .filter((a) => !n.addresses.includes(a))
    .map((a) => batchLine(["addr", "del", a, "dev", n.name]));
  const added = n.addresses
    .filter((a) => !o.addresses.includes(a))
    .map((a) => batchLine(["addr", "add", a, "dev", n.name]));
  return [...gone, ...added];
}

function updateLines(o: P, n: P): string[] {
  const attrs = attrTokens(n, o);
  return [
    ...modeLines(o, n),
    ...(attrs.length > 0 ? [batchLine(["link", "set", n.name, ...attrs])] : []),
    ...addressLines(o, n),
    ...(o.up !== n.up
      ? [batchLine(["link", "set", n.name, n.up ? "up" : "down"])]
      : []),
  ];
}

export const macvlanPortKind: ResourceKind<typeof MacvlanPortProps> = {
  type: "MacvlanPort",
  schema: MacvlanPortProps,
  replaceOn: ["name", "type", "lower", "lowerNetns", "netns"],
  compared: [
    "name",
    "type",
    "lower",
    "lowerNetns",
    "netns",
    "mode",
    "sourceMacs",
    "mac",
    "mtu",
    "addresses",
    "up",
  ],
  validate,
  addressUses: (p) =>
    p.addresses.map((value, i) => ({
      path: `addresses[${i}]`,
      value,
      kind: "address" as const,
      rootNs: !targetOf(p),
    })),
  replaces,
  id: (p) => `${p.type}/${p.netns ?? p.lowerNetns ?? "-"}/${p.name}`,

  async create(ctx, p) {
    await preflight(ctx, p);
    const what = `create ${p.type} ${p.name} (mode ${p.mode}) on ${p.lower}`;
    try {
      if (moves(p)) {
        await ctx.host.run({
          kind: "batch",
          tool: "ip",
          netns: p.lowerNetns,
          lines: createLines(p, ownerMark(ctx.owner)),
          what,
        });
        const lines = configureLines(p);
        if (lines.length > 0)
          await ctx.host.run({
            kind: "batch",
            tool: "ip",
            netns: targetOf(p),
            lines,
            what: `configure ${p.type} ${p.name}`,
          });
      } else {
        await ctx.host.run({
          kind: "batch",
          tool: "ip",
          netns: p.lowerNetns,
          lines: [
            ...createLines(p, ownerMark(ctx.owner)),
            ...configureLines(p),
          ],
          what,
        });
      }
    } catch (err) {
      throw explain(ctx, p, err, await undoCreate(ctx, p));
    }
    return liveOutputs(ctx, p);
  },

  /** A port moved to its target in the creating batch, so a leftover of ours lives there. */
  async find(ctx, p) {
    const snap = await ctx.host.snapshot(scopeOf(p.lowerNetns, targetOf(p)));
    const there = findLink(snap, nsKey(targetOf(p)), p.name);
    if (there)
      return found(there.kind === p.type ? there.alias : undefined, ctx.owner);
    return findLink(snap, nsKey(p.lowerNetns), p.name)
      ? found(undefined, ctx.owner)
      : ABSENT;
  },

  async read(ctx, p) {
    const snap = await ctx.host.snapshot(scopeOf(p.lowerNetns, targetOf(p)));
    const link = findLink(snap, nsKey(targetOf(p)), p.name);
    if (!link) return null;
    return { ...liveProps(snap, p, link), ...outputsOf(link) };
  },

  async update(ctx, o, n) {
    const lines = updateLines(o, n);
    if (lines.length > 0) {
      await ctx.host.run({
        kind: "batch",
        tool: "ip",
        netns: targetOf(n),
        lines,
        what: `update ${n.type} ${n.name}`,
      });
    }
    return liveOutputs(ctx, n);
  },

  async delete(ctx, p) {
    // A gone port is not sent to the host (see VethLink's delete: merged failing deletes stall).
    if (
      !findLink(
        await ctx.host.snapshot(scopeOf(p.lowerNetns, targetOf(p))),
        nsKey(targetOf(p)),
        p.name,
      )
    )
      return;
    try {
      await ctx.host.run({
        kind: "batch",
        tool: "ip",
        netns: targetOf(p),
        lines: [batchLine(["link", "del", p.name])],
        what: `delete ${p.type} ${p.name}`,
      });
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};

export interface MacvlanPortArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof MacvlanPortProps>>> {
  name: pulumi.Input<string>;
  lower: pulumi.Input<string>;
}

/** A macvlan or macvtap port; `devicePath` is the macvtap's character device (/dev/tapN). */
export class MacvlanPort extends HostnetResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly type: pulumi.Output<"macvlan" | "macvtap">;
  declare readonly mode: pulumi.Output<string>;
  declare readonly sourceMacs: pulumi.Output<string[] | undefined>;
  declare readonly addresses: pulumi.Output<string[]>;
  /** Interface index in the namespace where the port lives. */
  declare readonly ifindex: pulumi.Output<number>;
  /** macvtap only: /dev/tap<ifindex>. */
  declare readonly devicePath: pulumi.Output<string | undefined>;
  constructor(
    name: string,
    args: MacvlanPortArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      "MacvlanPort",
      name,
      { ...args, ifindex: undefined, devicePath: undefined } as CommonArgs,
      opts,
    );
  }
}
