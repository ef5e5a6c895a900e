// VxlanDevice: a VXLAN tunnel endpoint that joins a host bridge to one L2 segment spread over many
// hosts (issue 15). hostnet is the control plane: the device learns nothing (nolearning, learning
// off on its bridge port) and knows no flood list; remote VMs are programmed as FdbEntry with a
// remote destination plus permanent neighbours, and neigh_suppress on this port makes the bridge
// answer ARP for them locally, so a broadcast ARP never crosses the underlay.
// The kernel cannot change a VXLAN's VNI or UDP port in place ("Cannot change VNI"): those
// replace the device; the local address and learning are changed in place.
import { scopeOf } from "../../host";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { findLink, Link } from "../../state";
import { KindContext, OptionalNetns, ResourceKind } from "../kind";
import { isGone, OWNER_ALIAS } from "../../state";
import {
  changedPortFlags,
  livePortFlags,
  setPortFlags,
  PortFlagsInput,
} from "../portFlags";
import { batchLine } from "../../transport";
import { IfName, Ipv4Address } from "../../schema";

const VNI_RANGE = "vni must be an integer 1–16777215 (24 bits)";
const PORT_RANGE = "port must be a UDP port 1–65535";
const MTU_RANGE = "mtu must be an integer 68–65535";

/** The segment default: nothing learned, unknown unicast not sent, ARP answered from neighbours. */
export const SEGMENT_PORT_FLAGS: PortFlagsInput = {
  learning: false,
  flood: false,
  neighSuppress: true,
};

export const VxlanDeviceProps = z.object({
  name: IfName,
  netns: OptionalNetns,
  /** VXLAN network identifier: the segment on the wire. */
  vni: z.number().int(VNI_RANGE).min(1, VNI_RANGE).max(16777215, VNI_RANGE),
  /** Underlay source address (this host's management or underlay address). */
  local: Ipv4Address,
  /** UDP destination port of the underlay (IANA: 4789). */
  port: z
    .number()
    .int(PORT_RANGE)
    .min(1, PORT_RANGE)
    .max(65535, PORT_RANGE)
    .default(4789),
  /** MAC learning from received packets; off: hostnet programs every remote MAC. */
  learning: z.boolean().default(false),
  /** The bridge (same namespace) the device is a port of. */
  bridge: IfName,
  /** Flags of the device's bridge port. */
  portFlags: PortFlagsInput.default(SEGMENT_PORT_FLAGS),
  /** VXLAN adds 50 bytes: keep this ≤ underlay MTU − 50 to avoid fragmenting the underlay. */
  mtu: z
    .number()
    .int(MTU_RANGE)
    .min(68, MTU_RANGE)
    .max(65535, MTU_RANGE)
    .optional(),
  up: z.boolean().default(true),
});
export type VxlanDeviceProps = z.infer<typeof VxlanDeviceProps>;
type P = VxlanDeviceProps;

function where(p: P): string {
  return `vxlan ${p.name} (vni ${p.vni})${p.netns ? ` in netns ${p.netns}` : ""}`;
}

const learningToken = (on: boolean): string => (on ? "learning" : "nolearning");

function createLines(p: P): string[] {
  const set = ["link", "set", p.name, "alias", OWNER_ALIAS, "master", p.bridge];
  if (p.mtu !== undefined) set.push("mtu", String(p.mtu));
  set.push(p.up ? "up" : "down");
  return [
    batchLine([
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
    ]),
    batchLine(set),
  ];
}

async function linkOf(ctx: KindContext, p: P): Promise<Link | undefined> {
  return findLink(
    await ctx.host.snapshot(scopeOf(p.netns)),
    p.netns ?? "",
    p.name,
  );
}

function setFlags(
  ctx: KindContext,
  p: P,
  flags: PortFlagsInput | undefined,
): Promise<void> {
  return setPortFlags(
    ctx.host,
    p,
    flags,
    `set port flags of ${where(p)} on ${p.bridge}`,
  );
}

async function removeLink(ctx: KindContext, p: P, what: string): Promise<void> {
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: p.netns,
      lines: [batchLine(["link", "del", p.name])],
      what,
    });
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

async function preflight(ctx: KindContext, p: P): Promise<void> {
  const snap = await ctx.host.snapshot(scopeOf(p.netns));
  const ns = snap.namespaces[p.netns ?? ""];
  if (!ns)
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: netns ${p.netns} does not exist. Create it first (VmNetns) or fix netns. Nothing was changed.`,
    );
  const existing = ns.links.find((l) => l.name === p.name);
  if (existing?.kind === "vxlan")
    throw new Error(
      `${ctx.host.label}: ${where(p)}: interface ${p.name} already exists. To manage it with hostnet, set adopt: true on this VxlanDevice; otherwise delete it (ip link del ${p.name}). Nothing was changed.`,
    );
  if (existing)
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: the name is taken by a ${existing.kind} device. Pick another name or remove that device. Nothing was changed.`,
    );
  const bridge = ns.links.find((l) => l.name === p.bridge);
  if (bridge?.kind !== "bridge") {
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: ${p.bridge} ${bridge ? `is a ${bridge.kind} device, not a bridge` : "does not exist"}. Create the bridge first (HostBridge) or fix bridge. Nothing was changed.`,
    );
  }
  const clash = ns.links.find(
    (l) =>
      l.kind === "vxlan" &&
      l.vxlan?.vni === p.vni &&
      (l.vxlan?.port ?? 4789) === p.port &&
      l.vxlan?.local === p.local,
  );
  if (clash)
    throw new Error(
      `${ctx.host.label}: cannot create ${where(p)}: ${clash.name} already carries vni ${p.vni} from ${p.local} on UDP port ${p.port}, and the kernel allows one device per (vni, local, port). Remove ${clash.name} or adopt it under this name. Nothing was changed.`,
    );
}

function explain(ctx: KindContext, p: P, err: unknown): Error {
  const msg = String(err instanceof Error ? err.message : err);
  if (/Address already in use|File exists/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: the kernel refused ${where(p)}: another vxlan device already uses vni ${p.vni} with local ${p.local} and port ${p.port}, or the name appeared meanwhile. What hostnet had made was removed; check ip -d link show type vxlan.`,
    );
  }
  if (/Cannot assign requested address/.test(msg)) {
    return new Error(
      `${msg}\n${ctx.host.label}: ${p.local} is not an address of this host, so ${where(p)} cannot send from it. Fix local (the host's underlay address). What hostnet had made was removed.`,
    );
  }
  return new Error(
    `${msg}\n${ctx.host.label}: creating ${where(p)} failed; what hostnet had made was removed.`,
  );
}

async function create(
  ctx: KindContext,
  p: P,
): Promise<Record<string, unknown>> {
  await preflight(ctx, p);
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: p.netns,
      lines: createLines(p),
      what: `create ${where(p)} on bridge ${p.bridge}`,
    });
    await setFlags(ctx, p, p.portFlags);
  } catch (err) {
    const link = await linkOf(ctx, p).catch(() => undefined);
    if (
      link?.alias === OWNER_ALIAS ||
      (link?.kind === "vxlan" && link.alias === undefined)
    )
      await removeLink(ctx, p, `remove half-made ${where(p)}`).catch(
        () => undefined,
      );
    throw explain(ctx, p, err);
  }
  return {};
}

async function read(
  ctx: KindContext,
  p: P,
): Promise<Record<string, unknown> | null> {
  const link = await linkOf(ctx, p);
  if (!link || link.kind !== "vxlan" || !link.vxlan) return null;
  return {
    name: p.name,
    netns: p.netns,
    vni: link.vxlan.vni,
    local: link.vxlan.local ?? "(none)",
    port: link.vxlan.port ?? 4789,
    learning: link.vxlan.learning ?? false,
    bridge: link.master ?? "(none)",
    portFlags: livePortFlags(link, p.portFlags),
    mtu: p.mtu === undefined ? undefined : link.mtu,
    up: link.adminUp,
  };
}

async function update(
  ctx: KindContext,
  o: P,
  n: P,
): Promise<Record<string, unknown>> {
  const lines: string[] = [];
  const vx: string[] = [];
  if (n.local !== o.local) vx.push("local", n.local);
  if (n.learning !== o.learning) vx.push(learningToken(n.learning));
  if (vx.length > 0)
    lines.push(batchLine(["link", "set", n.name, "type", "vxlan", ...vx]));
  const set: string[] = [];
  const masterChanged = n.bridge !== o.bridge;
  if (masterChanged) set.push("master", n.bridge);
  if (n.mtu !== undefined && n.mtu !== o.mtu) set.push("mtu", String(n.mtu));
  if (n.up !== o.up) set.push(n.up ? "up" : "down");
  if (set.length > 0) lines.push(batchLine(["link", "set", n.name, ...set]));
  if (lines.length > 0)
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: n.netns,
      lines,
      what: `reconfigure ${where(n)}`,
    });
  // A device joining a bridge starts with the kernel's default port flags: set all of ours again.
  await setFlags(
    ctx,
    n,
    masterChanged ? n.portFlags : changedPortFlags(o.portFlags, n.portFlags),
  );
  return {};
}

export const vxlanDeviceKind: ResourceKind<typeof VxlanDeviceProps> = {
  type: "VxlanDevice",
  schema: VxlanDeviceProps,
  replaceOn: ["name", "netns", "vni", "port"],
  id: (p) => `vxlan/${p.netns ?? "-"}/${p.name}`,
  create,
  read,
  update,

  async delete(ctx, p) {
    const link = await linkOf(ctx, p);
    if (!link) return;
    if (link.kind !== "vxlan" || link.alias !== OWNER_ALIAS) {
      throw new Error(
        `${ctx.host.label}: ${p.name} is now a ${link.kind} device without hostnet's alias; not deleting it. ` +
          `Remove it by hand if it is stale, or drop it from the state (pulumi state delete).`,
      );
    }
    await removeLink(
      ctx,
      p,
      `delete ${where(p)} (its remote fdb entries go with it)`,
    );
  },
};

export interface VxlanDeviceArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof VxlanDeviceProps>>> {
  name: pulumi.Input<string>;
  vni: pulumi.Input<number>;
  local: pulumi.Input<string>;
  bridge: pulumi.Input<string>;
}

/** A VXLAN device on a host bridge: one host's end of a multi-host L2 segment. */
export class VxlanDevice extends HostnetResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly netns: pulumi.Output<string | undefined>;
  declare readonly vni: pulumi.Output<number>;
  declare readonly local: pulumi.Output<string>;
  declare readonly port: pulumi.Output<number>;
  declare readonly learning: pulumi.Output<boolean>;
  declare readonly bridge: pulumi.Output<string>;
  declare readonly portFlags: pulumi.Output<PortFlagsInput>;
  declare readonly mtu: pulumi.Output<number | undefined>;
  declare readonly up: pulumi.Output<boolean>;
  constructor(
    name: string,
    args: VxlanDeviceArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("VxlanDevice", name, args, opts);
  }
}
