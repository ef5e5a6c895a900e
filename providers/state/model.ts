// The normalized state of a host, as every kind reads it: one HostSnapshot per read, one
// NamespaceState per namespace, links merged from ip + bridge, fdb rows, routes, sysctls, nft.
import { z } from "zod";
import { Owner } from "./rawIp";
import { NftRuleset } from "./rawNft";

/** Key of the root (init) network namespace in HostSnapshot.namespaces. */
export const ROOT_NS = "";

export const LinkKind = z.enum([
  "loopback",
  "bridge",
  "veth",
  "macvlan",
  "macvtap",
  "tun",
  "tap",
  "vxlan",
  "vlan",
  "dummy",
  "device",
  "other",
]);
export type LinkKind = z.infer<typeof LinkKind>;

/** forwardDelay/ageingTime in centiseconds, the unit `ip link ... type bridge` takes. */
export const BridgeOptions = z.object({
  stp: z.boolean(),
  forwardDelay: z.number(),
  ageingTime: z.number(),
  mcastSnooping: z.boolean().optional(),
  vlanFiltering: z.boolean().optional(),
});
export type BridgeOptions = z.infer<typeof BridgeOptions>;

/** Optional flags are absent when this kernel does not report them. */
export const PortFlags = z.object({
  state: z.string().optional(),
  learning: z.boolean(),
  flood: z.boolean(),
  hairpin: z.boolean(),
  mcastFlood: z.boolean().optional(),
  bcastFlood: z.boolean().optional(),
  neighSuppress: z.boolean().optional(),
  isolated: z.boolean().optional(),
});
export type PortFlags = z.infer<typeof PortFlags>;

/** lower: name if the lower device is in the same netns, else its ifindex in peerNetns. */
export const MacvlanOptions = z.object({
  mode: z.string(),
  lower: z.union([z.string(), z.number().int()]).optional(),
  macs: z.array(z.string()).optional(),
});
export type MacvlanOptions = z.infer<typeof MacvlanOptions>;

export const TunOptions = z.object({
  type: z.enum(["tun", "tap"]),
  owner: Owner.optional(),
  group: Owner.optional(),
  multiQueue: z.boolean(),
  vnetHdr: z.boolean(),
  persist: z.boolean(),
  pi: z.boolean().optional(),
});
export type TunOptions = z.infer<typeof TunOptions>;

/** A vxlan device's identity (VNI, UDP port), underlay source address and MAC learning. */
export const VxlanOptions = z.object({
  vni: z.number().int(),
  local: z.string().optional(),
  port: z.number().int().optional(),
  learning: z.boolean().optional(),
});
export type VxlanOptions = z.infer<typeof VxlanOptions>;

/**
 * One device, merged from ip link + bridge port flags + addresses. peer* describe IFLA_LINK
 * (veth peer, macvlan lower): peerNetnsId is relative to this namespace; peerNetns and
 * peerName are filled in when the snapshot can tell which namespace that id refers to.
 */
export const Link = z.object({
  name: z.string(),
  index: z.number().int(),
  kind: LinkKind,
  infoKind: z.string().optional(),
  mtu: z.number().int(),
  mac: z.string().optional(),
  operUp: z.boolean(),
  adminUp: z.boolean(),
  master: z.string().optional(),
  alias: z.string().optional(),
  peerIndex: z.number().int().optional(),
  peerNetnsId: z.number().int().optional(),
  peerNetns: z.string().optional(),
  peerName: z.string().optional(),
  bridge: BridgeOptions.optional(),
  port: PortFlags.optional(),
  macvlan: MacvlanOptions.optional(),
  tun: TunOptions.optional(),
  vxlan: VxlanOptions.optional(),
  addresses: z.array(z.string()),
});
export type Link = z.infer<typeof Link>;

/** state: "static" | "permanent" | "stale" | "reachable" | a hex NUD value. */
export const FdbRow = z.object({
  mac: z.string(),
  dev: z.string(),
  master: z.string().optional(),
  vlan: z.number().int().optional(),
  state: z.string(),
  flags: z.array(z.string()),
  dst: z.string().optional(),
  vni: z.number().int().optional(),
});
export type FdbRow = z.infer<typeof FdbRow>;

/** dst is always a CIDR ("default" becomes 0.0.0.0/0 or ::/0). type defaults to unicast. */
export const RouteRow = z.object({
  family: z.union([z.literal(4), z.literal(6)]),
  dst: z.string(),
  type: z.string(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  scope: z.string().optional(),
  prefsrc: z.string().optional(),
  metric: z.number().optional(),
  table: z.string().optional(),
  nexthops: z
    .array(
      z.object({
        gateway: z.string().optional(),
        dev: z.string().optional(),
        weight: z.number().optional(),
      }),
    )
    .optional(),
});
export type RouteRow = z.infer<typeof RouteRow>;

/**
 * failedSections lists sections whose command failed or that never arrived, so that a
 * consumer can tell "no such link" from "could not read links".
 */
export const NamespaceState = z.object({
  links: z.array(Link),
  fdb: z.array(FdbRow),
  /** Permanent neighbours on bridges: what ARP suppression answers from. */
  neigh: z
    .array(z.object({ dst: z.string(), dev: z.string(), lladdr: z.string() }))
    .default([]),
  routes: z.array(RouteRow),
  sysctls: z.record(z.string(), z.string()),
  nft: NftRuleset.nullable(),
  /**
   * The devices each netdev table's chains are hooked on, by table name, in listing order (nft's
   * JSON leaves them out). Absent: not read (an older snapshot, or the listing failed).
   */
  netdevHooks: z.record(z.string(), z.array(z.string())).optional(),
  failedSections: z.array(z.string()),
});
export type NamespaceState = z.infer<typeof NamespaceState>;

/** absent: requested namespaces that did not exist when the script ran. */
export const HostSnapshot = z.object({
  machineId: z.string(),
  hostname: z.string(),
  namespaces: z.record(z.string(), NamespaceState),
  absent: z.array(z.string()),
});
export type HostSnapshot = z.infer<typeof HostSnapshot>;

export function findLink(
  snapshot: HostSnapshot,
  netns: string,
  name: string,
): Link | undefined {
  return snapshot.namespaces[netns]?.links.find((l) => l.name === name);
}

/** Prefers the bridge's own entry (master) over a device-level "self" entry for the same MAC. */
export function findFdb(
  snapshot: HostSnapshot,
  netns: string,
  mac: string,
  port: string,
): FdbRow | undefined {
  const want = mac.toLowerCase();
  const rows =
    snapshot.namespaces[netns]?.fdb.filter(
      (r) => r.mac === want && r.dev === port,
    ) ?? [];
  return rows.find((r) => r.master !== undefined) ?? rows[0];
}

/**
 * Whether `row` is the managed fdb entry `want` describes: a static entry of the bridge's own
 * table (iproute2 prints a static add as "static", older versions as "permanent") for this MAC
 * and VLAN. "self" rows are the port device's own table, not the bridge's.
 */
export function isManagedFdbRow(
  row: FdbRow,
  want: { mac: string; bridge: string; vlan?: number },
): boolean {
  return (
    row.mac === want.mac.toLowerCase() &&
    row.master === want.bridge &&
    row.vlan === want.vlan &&
    (row.state === "static" || row.state === "permanent") &&
    !row.flags.includes("self")
  );
}
