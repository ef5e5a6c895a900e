// Raw zod models of what iproute2 prints as JSON: `ip -j -d link|addr`, `ip -j route`,
// `ip -j neigh`, `ip -j netns list-id`, `bridge -j -d link`, `bridge -j fdb`.
// Models are loose (unknown fields pass) and kernel-version-dependent fields are optional:
// a newer kernel adding or an older one lacking a field must not make a whole host unreadable.
import { z } from "zod";

/** Bridge `info_data`; ip prints the kernel's 0/1 integers, times in centiseconds. */
export const BridgeInfoData = z.looseObject({
  stp_state: z.number().int(),
  forward_delay: z.number(),
  ageing_time: z.number(),
  mcast_snooping: z.number().int().optional(),
  vlan_filtering: z.number().int().optional(),
});
export type BridgeInfoData = z.infer<typeof BridgeInfoData>;

/** macvlan/macvtap `info_data`; macaddr_data lists source-mode MACs (newest first). */
export const MacvlanInfoData = z.looseObject({
  mode: z.string(),
  macaddr_count: z.number().int().optional(),
  macaddr_data: z.array(z.string()).optional(),
});
export type MacvlanInfoData = z.infer<typeof MacvlanInfoData>;

/** vxlan `info_data`: id is the VNI, port the UDP destination port; local is absent when unset. */
export const VxlanInfoData = z.looseObject({
  id: z.number().int(),
  local: z.string().optional(),
  port: z.number().int().optional(),
  learning: z.boolean().optional(),
});
export type VxlanInfoData = z.infer<typeof VxlanInfoData>;

/** ip prints a user/group name when the host can resolve the id, else the number. */
export const Owner = z.union([z.string(), z.number().int()]);

/** tun/tap `info_data`; user/group are absent when the device has no owner. */
export const TunInfoData = z.looseObject({
  type: z.enum(["tun", "tap"]),
  pi: z.boolean().optional(),
  vnet_hdr: z.boolean(),
  multi_queue: z.boolean(),
  persist: z.boolean(),
  user: Owner.optional(),
  group: Owner.optional(),
});
export type TunInfoData = z.infer<typeof TunInfoData>;

/**
 * Bridge port flags, as `info_slave_data` of `ip -d link` and as fields of `bridge -d link`.
 * Everything past learning/flood arrived in later kernels (mcast_flood 4.9, neigh_suppress
 * 4.15, isolated 4.18, bcast_flood 5.0), and old iproute2 spelled hairpin "hairpin_mode".
 */
const portFlagFields = {
  state: z.string().optional(),
  learning: z.boolean().optional(),
  flood: z.boolean().optional(),
  mcast_flood: z.boolean().optional(),
  bcast_flood: z.boolean().optional(),
  neigh_suppress: z.boolean().optional(),
  isolated: z.boolean().optional(),
  hairpin: z.boolean().optional(),
  hairpin_mode: z.boolean().optional(),
  proxy_arp: z.boolean().optional(),
  locked: z.boolean().optional(),
};
export const BridgeSlaveData = z.looseObject(portFlagFields);
export type BridgeSlaveData = z.infer<typeof BridgeSlaveData>;

/** Kind-specific schemas, applied only to their own kind so that odd devices stay readable. */
const KIND_DATA: Readonly<Record<string, z.ZodType>> = {
  bridge: BridgeInfoData,
  macvlan: MacvlanInfoData,
  macvtap: MacvlanInfoData,
  tun: TunInfoData,
  vxlan: VxlanInfoData,
};
const SLAVE_DATA: Readonly<Record<string, z.ZodType>> = {
  bridge: BridgeSlaveData,
};

const JsonObject = z.record(z.string(), z.unknown());

function checkNested(
  schema: z.ZodType | undefined,
  value: unknown,
  key: string,
  ctx: z.RefinementCtx,
): void {
  if (schema === undefined || value === undefined) return;
  const result = schema.safeParse(value);
  if (result.success) return;
  for (const issue of result.error.issues)
    ctx.addIssue({
      code: "custom",
      message: issue.message,
      path: [key, ...issue.path],
    });
}

export const LinkInfo = z
  .looseObject({
    info_kind: z.string().optional(),
    info_data: JsonObject.optional(),
    info_slave_kind: z.string().optional(),
    info_slave_data: JsonObject.optional(),
  })
  .superRefine((li, ctx) => {
    checkNested(KIND_DATA[li.info_kind ?? ""], li.info_data, "info_data", ctx);
    checkNested(
      SLAVE_DATA[li.info_slave_kind ?? ""],
      li.info_slave_data,
      "info_slave_data",
      ctx,
    );
  });
export type LinkInfo = z.infer<typeof LinkInfo>;

/** One `addr_info` entry; local/prefixlen are optional because filtered dumps print `{}`. */
export const AddrInfo = z.looseObject({
  family: z.string().optional(),
  local: z.string().optional(),
  prefixlen: z.number().int().optional(),
  scope: z.string().optional(),
  label: z.string().optional(),
});
export type AddrInfo = z.infer<typeof AddrInfo>;

/**
 * One device of `ip -j -d link show` (or `ip -j -d addr show`, which adds addr_info).
 * `link` is the peer/lower name in the same netns ("ifN" if unresolvable, null for @NONE);
 * across namespaces ip prints link_index + link_netnsid instead.
 */
export const IpLink = z.looseObject({
  ifindex: z.number().int(),
  ifname: z.string(),
  flags: z.array(z.string()),
  mtu: z.number().int(),
  operstate: z.string(),
  address: z.string().optional(),
  link_type: z.string().optional(),
  master: z.string().optional(),
  ifalias: z.string().optional(),
  link: z.string().nullable().optional(),
  link_index: z.number().int().optional(),
  link_netnsid: z.number().int().optional(),
  linkinfo: LinkInfo.optional(),
  addr_info: z.array(AddrInfo).optional(),
});
export type IpLink = z.infer<typeof IpLink>;

/** One device of `ip -j addr show`. */
export const IpAddr = z.looseObject({
  ifindex: z.number().int(),
  ifname: z.string(),
  addr_info: z.array(AddrInfo),
});
export type IpAddr = z.infer<typeof IpAddr>;

/** One entry of `bridge -j -d link show`. */
export const BridgePort = z.looseObject({
  ifindex: z.number().int(),
  ifname: z.string(),
  master: z.string().optional(),
  flags: z.array(z.string()).optional(),
  mtu: z.number().int().optional(),
  ...portFlagFields,
});
export type BridgePort = z.infer<typeof BridgePort>;

/** One permanent neighbour of `ip -j neigh show nud permanent` (ARP suppression on bridges). */
export const NeighEntry = z.looseObject({
  dst: z.string(),
  dev: z.string().optional(),
  lladdr: z.string().optional(),
  state: z.array(z.string()).optional(),
});
export type NeighEntry = z.infer<typeof NeighEntry>;

/** One entry of `bridge -j fdb show`; state "" means NUD_REACHABLE (a live learned entry). */
export const FdbEntry = z.looseObject({
  mac: z.string(),
  ifname: z.string().optional(),
  master: z.string().optional(),
  vlan: z.number().int().optional(),
  state: z.string().optional(),
  flags: z.array(z.string()).optional(),
  dst: z.string().optional(),
  /** vxlan "self" entries: printed only when the entry's VNI differs from the device's. */
  vni: z.number().int().optional(),
});
export type FdbEntry = z.infer<typeof FdbEntry>;

const NextHop = z.looseObject({
  gateway: z.string().optional(),
  dev: z.string().optional(),
  weight: z.number().optional(),
});

/** One entry of `ip -j route show`; host routes print dst without a prefix length. */
export const Route = z.looseObject({
  dst: z.string(),
  type: z.string().optional(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  scope: z.string().optional(),
  prefsrc: z.string().optional(),
  metric: z.number().optional(),
  table: z.string().optional(),
  flags: z.array(z.string()).optional(),
  nexthops: z.array(NextHop).optional(),
});
export type Route = z.infer<typeof Route>;

/** One entry of `ip -j netns list-id`: the names this netns's nsids refer to. */
export const NetnsId = z.looseObject({
  nsid: z.number().int(),
  name: z.string().optional(),
});
export type NetnsId = z.infer<typeof NetnsId>;
