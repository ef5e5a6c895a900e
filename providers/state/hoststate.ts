/**
 * Live kernel network state: zod models of what iproute2 / nft print as JSON, the one
 * shell script that dumps every namespace of a host in a single round trip, and the
 * parser that turns its output into a normalized HostSnapshot.
 *
 * Models are loose (unknown fields pass) and kernel-version-dependent fields are optional:
 * a newer kernel adding or an older one lacking a field must not make a whole host unreadable.
 */
import { z } from "zod";
import { heredoc, shellQuote } from "../transport";
import { NetnsName, formatIssues } from "../schema";

/** Key of the root (init) network namespace in HostSnapshot.namespaces. */
export const ROOT_NS = "";

// ---------------------------------------------------------------------------------------
// Raw models: `ip -j -d link|addr`, `ip -j route`, `bridge -j -d link`, `bridge -j fdb`
// ---------------------------------------------------------------------------------------

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
const Owner = z.union([z.string(), z.number().int()]);

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

// ---------------------------------------------------------------------------------------
// nft -j list ruleset
// ---------------------------------------------------------------------------------------

const nftNamed = {
  family: z.string(),
  table: z.string(),
  name: z.string(),
  handle: z.number().int().optional(),
};
const NftType = z.union([z.string(), z.array(z.string())]);

export const NftTable = z.looseObject({
  family: z.string(),
  name: z.string(),
  handle: z.number().int().optional(),
});
export const NftChain = z.looseObject({
  ...nftNamed,
  type: z.string().optional(),
  hook: z.string().optional(),
  prio: z.number().optional(),
  policy: z.string().optional(),
});
export const NftRule = z.looseObject({
  family: z.string(),
  table: z.string(),
  chain: z.string(),
  handle: z.number().int().optional(),
  expr: z.array(z.unknown()),
  comment: z.string().optional(),
});
export const NftSet = z.looseObject({
  ...nftNamed,
  type: NftType,
  map: NftType.optional(),
  flags: z.array(z.string()).optional(),
  elem: z.array(z.unknown()).optional(),
});
export const NftElement = z.looseObject({
  family: z.string(),
  table: z.string(),
  name: z.string(),
  elem: z.array(z.unknown()),
});
export const NftMetainfo = z.looseObject({
  version: z.string().optional(),
  json_schema_version: z.number().optional(),
});

/** One item of the `nftables` array: an object with exactly one of these keys (or another). */
export const NftItem = z.looseObject({
  metainfo: NftMetainfo.optional(),
  table: NftTable.optional(),
  chain: NftChain.optional(),
  rule: NftRule.optional(),
  set: NftSet.optional(),
  map: NftSet.optional(),
  element: NftElement.optional(),
});
export type NftItem = z.infer<typeof NftItem>;

export const NftRuleset = z.looseObject({ nftables: z.array(NftItem) });
export type NftRuleset = z.infer<typeof NftRuleset>;

// ---------------------------------------------------------------------------------------
// Normalized state
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------

/** Raw, validated sections of one namespace; addrs is only needed when links lack addr_info. */
export type RawNamespace = {
  links: IpLink[];
  addrs?: IpAddr[];
  routes: Route[];
  routes6: Route[];
  bports: BridgePort[];
  fdb: FdbEntry[];
  neigh?: NeighEntry[];
  sysctl: Record<string, string>;
  nft: NftRuleset | null;
};

/** Drops undefined-valued keys so that normalized objects compare equal structurally. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined),
  ) as T;
}

const SIMPLE_KINDS: ReadonlySet<string> = new Set([
  "bridge",
  "veth",
  "macvlan",
  "macvtap",
  "vxlan",
  "vlan",
  "dummy",
]);

function linkKind(raw: IpLink): LinkKind {
  const kind = raw.linkinfo?.info_kind;
  if (kind === "tun")
    return raw.linkinfo?.info_data?.type === "tun" ? "tun" : "tap";
  if (kind !== undefined)
    return SIMPLE_KINDS.has(kind) ? (kind as LinkKind) : "other";
  if (raw.link_type === "loopback" || raw.flags.includes("LOOPBACK"))
    return "loopback";
  return "device";
}

function bridgeOptions(data: unknown): BridgeOptions {
  const d = BridgeInfoData.parse(data);
  return defined({
    stp: d.stp_state !== 0,
    forwardDelay: d.forward_delay,
    ageingTime: d.ageing_time,
    mcastSnooping:
      d.mcast_snooping === undefined ? undefined : d.mcast_snooping !== 0,
    vlanFiltering:
      d.vlan_filtering === undefined ? undefined : d.vlan_filtering !== 0,
  });
}

/** `bridge -d link` values win over ip's info_slave_data: both come from the kernel. */
function portFlags(
  slave: unknown,
  bport: BridgePort | undefined,
): PortFlags | undefined {
  if (slave === undefined && bport === undefined) return undefined;
  const f: BridgeSlaveData = {
    ...BridgeSlaveData.parse(slave ?? {}),
    ...(bport ?? {}),
  };
  return defined({
    state: f.state,
    learning: f.learning ?? false,
    flood: f.flood ?? false,
    hairpin: f.hairpin ?? f.hairpin_mode ?? false,
    mcastFlood: f.mcast_flood,
    bcastFlood: f.bcast_flood,
    neighSuppress: f.neigh_suppress,
    isolated: f.isolated,
  });
}

function macvlanOptions(raw: IpLink): MacvlanOptions {
  const d = MacvlanInfoData.parse(raw.linkinfo?.info_data);
  const lower = peerRef(raw);
  const macs = d.macaddr_data?.map((m) => m.toLowerCase()).sort();
  return defined({ mode: d.mode, lower: lower.name ?? lower.index, macs });
}

function tunOptions(data: unknown): TunOptions {
  const d = TunInfoData.parse(data);
  return defined({
    type: d.type,
    owner: d.user,
    group: d.group,
    multiQueue: d.multi_queue,
    vnetHdr: d.vnet_hdr,
    persist: d.persist,
    pi: d.pi,
  });
}

const UNRESOLVED_IFINDEX = /^if(\d+)$/;

/** Peer as ip printed it: a same-netns name, or an index (plus netnsid when cross-netns). */
function peerRef(raw: IpLink): {
  name?: string;
  index?: number;
  netnsid?: number;
} {
  if (raw.link_index !== undefined)
    return { index: raw.link_index, netnsid: raw.link_netnsid };
  if (raw.link === undefined || raw.link === null) return {};
  const m = UNRESOLVED_IFINDEX.exec(raw.link);
  return m ? { index: Number(m[1]) } : { name: raw.link };
}

function addressesOf(
  raw: IpLink,
  addrs: ReadonlyMap<string, AddrInfo[]>,
): string[] {
  const info = raw.addr_info ?? addrs.get(raw.ifname) ?? [];
  return info
    .filter((a) => a.local !== undefined && a.prefixlen !== undefined)
    .map((a) => `${a.local}/${a.prefixlen}`);
}

function kindSpecific(raw: IpLink, kind: LinkKind): Partial<Link> {
  const data = raw.linkinfo?.info_data;
  if (data === undefined) return {};
  if (kind === "bridge") return { bridge: bridgeOptions(data) };
  if (kind === "macvlan" || kind === "macvtap")
    return { macvlan: macvlanOptions(raw) };
  if (kind === "tun" || kind === "tap") return { tun: tunOptions(data) };
  if (kind === "vxlan") {
    const d = VxlanInfoData.parse(data);
    return {
      vxlan: defined({
        vni: d.id,
        local: d.local,
        port: d.port,
        learning: d.learning,
      }),
    };
  }
  return {};
}

function toLink(
  raw: IpLink,
  ports: ReadonlyMap<string, BridgePort>,
  addrs: ReadonlyMap<string, AddrInfo[]>,
): Link {
  const kind = linkKind(raw);
  const peer = peerRef(raw);
  const isBridgePort =
    raw.linkinfo?.info_slave_kind === "bridge" || ports.has(raw.ifname);
  return defined({
    name: raw.ifname,
    index: raw.ifindex,
    kind,
    infoKind: raw.linkinfo?.info_kind,
    mtu: raw.mtu,
    mac: raw.address?.toLowerCase(),
    operUp:
      raw.operstate === "UP" ||
      (raw.operstate === "UNKNOWN" && raw.flags.includes("LOWER_UP")),
    adminUp: raw.flags.includes("UP"),
    master: raw.master,
    alias: raw.ifalias,
    peerIndex: peer.index,
    peerNetnsId: peer.netnsid,
    peerName: peer.name,
    ...kindSpecific(raw, kind),
    port: isBridgePort
      ? portFlags(raw.linkinfo?.info_slave_data, ports.get(raw.ifname))
      : undefined,
    addresses: addressesOf(raw, addrs),
  });
}

/** ip names a same-netns peer instead of giving its index; fill the index in too. */
function withLocalPeerIndexes(links: Link[]): Link[] {
  const byName = new Map(links.map((l) => [l.name, l.index] as const));
  for (const l of links) {
    if (l.peerName !== undefined && l.peerIndex === undefined)
      l.peerIndex = byName.get(l.peerName);
    if (l.peerIndex === undefined) delete l.peerIndex;
  }
  return links;
}

function toFdbRow(e: FdbEntry): FdbRow | undefined {
  if (e.ifname === undefined) return undefined;
  // iproute2 prints an empty state for NUD_REACHABLE (a live learned entry).
  const state = e.state === undefined || e.state === "" ? "reachable" : e.state;
  return defined({
    mac: e.mac.toLowerCase(),
    dev: e.ifname,
    master: e.master,
    vlan: e.vlan,
    state,
    flags: e.flags ?? [],
    dst: e.dst,
    vni: e.vni,
  });
}

function routeDst(dst: string, family: 4 | 6): string {
  if (dst === "default") return family === 4 ? "0.0.0.0/0" : "::/0";
  return dst.includes("/") ? dst : `${dst}/${family === 4 ? 32 : 128}`;
}

function toRouteRow(r: Route, family: 4 | 6): RouteRow {
  const nexthops = r.nexthops?.map((h) =>
    defined({ gateway: h.gateway, dev: h.dev, weight: h.weight }),
  );
  return defined({
    family,
    dst: routeDst(r.dst, family),
    type: r.type ?? "unicast",
    gateway: r.gateway,
    dev: r.dev,
    protocol: r.protocol,
    scope: r.scope,
    prefsrc: r.prefsrc,
    metric: r.metric,
    table: r.table,
    nexthops,
  });
}

/** Turns one namespace's validated raw sections into NamespaceState (pure). */
export function buildNamespaceState(
  raw: RawNamespace,
  failedSections: string[] = [],
): NamespaceState {
  // Entries without a master would be the bridge device itself, not a port.
  const ports = new Map(
    raw.bports
      .filter((p) => p.master !== undefined)
      .map((p) => [p.ifname, p] as const),
  );
  const addrs = new Map(
    (raw.addrs ?? []).map((a) => [a.ifname, a.addr_info] as const),
  );
  const fdb = raw.fdb.map(toFdbRow).filter((r): r is FdbRow => r !== undefined);
  const neigh = (raw.neigh ?? []).flatMap((n) =>
    n.dev && n.lladdr
      ? [{ dst: n.dst, dev: n.dev, lladdr: n.lladdr.toLowerCase() }]
      : [],
  );
  return {
    links: withLocalPeerIndexes(raw.links.map((l) => toLink(l, ports, addrs))),
    fdb,
    neigh,
    routes: [
      ...raw.routes.map((r) => toRouteRow(r, 4)),
      ...raw.routes6.map((r) => toRouteRow(r, 6)),
    ],
    sysctls: { ...raw.sysctl },
    nft: raw.nft,
    failedSections,
  };
}

// ---------------------------------------------------------------------------------------
// Cross-namespace peer resolution
// ---------------------------------------------------------------------------------------

type NsidMaps = ReadonlyMap<string, ReadonlyMap<number, string>>;

/** The other end must point back at us: ifindexes repeat across namespaces, pairs rarely do. */
function mutualPeer(
  namespaces: Record<string, NamespaceState>,
  ns: string,
  link: Link,
): [string, Link] | undefined {
  const hits: [string, Link][] = [];
  for (const [other, state] of Object.entries(namespaces)) {
    if (other === ns) continue;
    for (const l of state.links) {
      if (
        l.index === link.peerIndex &&
        l.peerIndex === link.index &&
        l.peerNetnsId !== undefined
      )
        hits.push([other, l]);
    }
  }
  return hits.length === 1 ? hits[0] : undefined;
}

function resolvePeer(
  namespaces: Record<string, NamespaceState>,
  nsids: NsidMaps,
  ns: string,
  link: Link,
): void {
  if (link.peerNetnsId === undefined && link.peerName !== undefined)
    link.peerNetns = ns;
  if (link.peerNetnsId === undefined || link.peerIndex === undefined) return;
  const named = nsids.get(ns)?.get(link.peerNetnsId);
  if (named !== undefined && namespaces[named] !== undefined) {
    link.peerNetns = named;
    const peer = namespaces[named].links.find(
      (l) => l.index === link.peerIndex,
    );
    if (peer !== undefined) link.peerName = peer.name;
    return;
  }
  const hit = mutualPeer(namespaces, ns, link);
  if (hit !== undefined)
    [link.peerNetns, link.peerName] = [hit[0], hit[1].name];
}

function resolvePeers(
  namespaces: Record<string, NamespaceState>,
  nsids: NsidMaps,
): void {
  for (const [ns, state] of Object.entries(namespaces)) {
    for (const link of state.links) resolvePeer(namespaces, nsids, ns, link);
  }
}

// ---------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Snapshot script
// ---------------------------------------------------------------------------------------

/** Marker lines; nothing iproute2 or nft print can start with this. */
const MARK = "@@hostnet";

/** Section order inside a namespace; bports/fdb/nsids print [] when links show they are moot. */
export const SECTIONS = [
  "links",
  "routes",
  "routes6",
  "bports",
  "fdb",
  "neigh",
  "nsids",
  "sysctl",
  "nft",
] as const;

/**
 * Runs inside one namespace ($1 = its name, "" for root), via `ip netns exec NS sh -c`, so
 * the ip/bridge/nft calls below need no per-call netns switch. Each JSON section is
 * captured before it is printed, so a command that dies half-way leaves `[]` and an rc,
 * never truncated JSON. `ip -d addr show` is `ip -d link show` plus addresses: one process.
 */
const PER_NS_SCRIPT = `ns=$1
mark() { printf '${MARK} ns=%s section=%s%s\\n' "$ns" "$1" "\${2:+ rc=$2}"; }
sec() {
  s=$1; shift
  out=$("$@"); rc=$?
  if [ "$rc" -eq 0 ]; then mark "$s"; [ -z "$out" ] || printf '%s\\n' "$out"
  else mark "$s" "$rc"; printf '[]\\n'; fi
}
moot() { mark "$1"; printf '%s\\n' "\${2:-[]}"; }
show() { { read -r v || [ -n "$v" ]; } 2>/dev/null <"$1" && printf '%s=%s\\n' "\${1#/proc/sys/}" "$v"; }
sysctls() {
  for k in ipv4/ip_forward ipv4/conf/all/proxy_arp ipv4/conf/all/forwarding ipv6/conf/all/disable_ipv6 ipv6/conf/all/forwarding \\
    ipv4/conf/all/rp_filter ipv4/conf/default/rp_filter ipv6/conf/default/disable_ipv6; do
    show "/proc/sys/net/$k"
  done
  for d in /proc/sys/net/ipv4/conf/*; do
    i=\${d##*/}
    case $i in all|default|lo) continue ;; esac
    show "$d/proxy_arp"; show "$d/forwarding"; show "/proc/sys/net/ipv6/conf/$i/forwarding"
  done
}
sec links ip -j -d addr show
links=$out
sec routes ip -j route show
sec routes6 ip -j -6 route show
case $links in
  *'"info_slave_kind"'*) sec bports bridge -j -d link show ;;
  *) moot bports ;;
esac
case $links in
  *bridge*|*vxlan*|*macv*) sec fdb bridge -j fdb show ;;
  *) moot fdb ;;
esac
case $links in
  *'"info_kind":"bridge"'*) sec neigh ip -j neigh show nud permanent ;;
  *) moot neigh ;;
esac
case $links in
  *link_netnsid*) sec nsids ip -j netns list-id ;;
  *) moot nsids ;;
esac
mark sysctl
sysctls
if command -v nft >/dev/null 2>&1; then sec nft nft -j list ruleset; else moot nft null; fi
exit 0`;

/**
 * Namespaces are dealt round-robin to `parallel` background workers, each writing its own
 * temp file (concurrent writers on one pipe would interleave sections); the files are
 * concatenated at the end, in any order, since every marker names its namespace. Without
 * mktemp, or with parallel=1, namespaces are dumped one by one straight to stdout.
 */
const DISPATCH = `hn_shard() {
  hn_i=0
  while IFS= read -r hn_l; do
    [ -n "$hn_l" ] && [ $((hn_i % $2)) -eq "$1" ] && hn_one "\${hn_l% (id: *)}" </dev/null
    hn_i=$((hn_i + 1))
  done
}
hn_all() {
  hn_tmp=
  [ "$1" -le 1 ] || hn_tmp=$(mktemp -d 2>/dev/null) || hn_tmp=
  if [ -z "$hn_tmp" ]; then printf '%s\\n' "$hn_list" | hn_shard 0 1; return; fi
  trap 'rm -rf "$hn_tmp"' EXIT
  trap 'exit 1' HUP INT TERM
  hn_w=0
  while [ "$hn_w" -lt "$1" ]; do
    printf '%s\\n' "$hn_list" | hn_shard "$hn_w" "$1" >"$hn_tmp/$hn_w" &
    hn_w=$((hn_w + 1))
  done
  wait
  cat "$hn_tmp"/*
  rm -rf "$hn_tmp"; trap - EXIT HUP INT TERM
}`;

/**
 * The whole body sits in a function so the shell has read all of it before anything
 * runs (the script may arrive on stdin via `sh -s`), and children get /dev/null as stdin
 * so none of them can swallow the rest of the script.
 */
function outerScript(listNamespaces: string, parallel: number): string {
  return `hn_main() {
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
HN_NS=$(cat ${heredoc(PER_NS_SCRIPT, "HN_PER_NS")}
)
hn_head() {
  printf '${MARK} section=%s\\n' "$1"; shift
  for f in "$@"; do { read -r v || [ -n "$v" ]; } 2>/dev/null <"$f" && { printf '%s\\n' "$v"; return; }; done
}
hn_one() {
  if [ ! -e "/run/netns/$1" ] && [ ! -e "/var/run/netns/$1" ]; then printf '${MARK} ns=%s section=absent\\n' "$1"; return; fi
  ip netns exec "$1" sh -c "$HN_NS" hn "$1" || printf '${MARK} ns=%s section=error rc=%s\\n' "$1" "$?"
}
${DISPATCH}
hn_head machine-id /etc/machine-id /var/lib/dbus/machine-id
hn_head hostname /proc/sys/kernel/hostname
sh -c "$HN_NS" hn ""
hn_list=${listNamespaces}
hn_all ${parallel}
printf '${MARK} end\\n'
}
hn_main </dev/null
`;
}

/** `ip netns list` prints "name (id: N)" once nsids exist; hn_shard strips that suffix. */
function namespaceList(namespaces: readonly string[] | undefined): string {
  if (namespaces === undefined) return "$(ip netns list 2>/dev/null)";
  if (namespaces.length === 0) return "";
  return `$(printf '%s\\n' ${namespaces.map((n) => shellQuote(NetnsName.parse(n))).join(" ")})`;
}

export type SnapshotOptions = {
  /** Only these named namespaces (root is always included); default: all of `ip netns list`. */
  namespaces?: readonly string[];
  /** Namespaces dumped concurrently (1–64, default 4). */
  parallel?: number;
};

/**
 * One POSIX sh script (run as root) printing machine-id, hostname and every section for the
 * root namespace and for each named namespace (an empty `namespaces` list means root only).
 */
export function snapshotScript(opts: SnapshotOptions = {}): string {
  const parallel = opts.parallel ?? 4;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) {
    throw new RangeError(
      `snapshotScript: parallel must be an integer 1–64, got ${String(parallel)}`,
    );
  }
  return outerScript(namespaceList(opts.namespaces), parallel);
}

// ---------------------------------------------------------------------------------------
// Snapshot parser
// ---------------------------------------------------------------------------------------

/** Names the namespace and section a parse problem came from. */
export class SnapshotParseError extends Error {
  constructor(
    readonly ns: string | undefined,
    readonly section: string | undefined,
    detail: string,
  ) {
    super(`hoststate: ${where(ns, section)}: ${detail}`);
    this.name = "SnapshotParseError";
  }
}

function where(ns: string | undefined, section: string | undefined): string {
  const nsPart =
    ns === undefined
      ? "header"
      : ns === ROOT_NS
        ? 'ns "" (root)'
        : `ns ${JSON.stringify(ns)}`;
  return section === undefined ? nsPart : `${nsPart} section ${section}`;
}

type Section = { lines: string[]; rc?: number };
type Split = {
  header: Map<string, string[]>;
  namespaces: Map<string, Map<string, Section>>;
};

const MARKER_LINE =
  /^@@hostnet(?: ns=(.*))? section=([A-Za-z0-9_-]+)(?: rc=(\d+))?$/;

function splitSections(stdout: string): Split {
  const split: Split = { header: new Map(), namespaces: new Map() };
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    if (line === `${MARK} end`) return split;
    const m = MARKER_LINE.exec(line);
    if (m !== null) current = openSection(split, m);
    else if (line.startsWith(MARK))
      throw new SnapshotParseError(
        undefined,
        undefined,
        `unrecognized marker line ${JSON.stringify(line)}`,
      );
    else if (current !== undefined) current.push(line);
    else if (line.trim() !== "")
      throw new SnapshotParseError(
        undefined,
        undefined,
        "output before the first marker",
      );
  }
  throw new SnapshotParseError(
    undefined,
    undefined,
    `output is truncated (no "${MARK} end" line)`,
  );
}

function openSection(split: Split, m: RegExpExecArray): string[] {
  const [, ns, section, rc] = m;
  const lines: string[] = [];
  if (ns === undefined) {
    split.header.set(section, lines);
    return lines;
  }
  const sections = split.namespaces.get(ns) ?? new Map<string, Section>();
  split.namespaces.set(ns, sections);
  sections.set(
    section,
    rc === undefined ? { lines } : { lines, rc: Number(rc) },
  );
  return lines;
}

function parseJsonSection<T>(
  schema: z.ZodType<T>,
  ns: string,
  name: string,
  section: Section | undefined,
): T | undefined {
  if (section === undefined) return undefined;
  const text = section.lines.join("\n").trim();
  let value: unknown;
  try {
    value = text === "" ? [] : JSON.parse(text);
  } catch (e) {
    throw new SnapshotParseError(
      ns,
      name,
      `invalid JSON: ${(e as Error).message}`,
    );
  }
  const result = schema.safeParse(value);
  if (!result.success)
    throw new SnapshotParseError(
      ns,
      name,
      formatIssues(result.error, name).join("; "),
    );
  return result.data;
}

/** `/proc/sys` relative paths become dotted keys, the same plain swap validate.SysctlKey does. */
function parseSysctl(
  ns: string,
  section: Section | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of section?.lines ?? []) {
    if (line.trim() === "") continue;
    const eq = line.lastIndexOf("=");
    if (eq <= 0)
      throw new SnapshotParseError(
        ns,
        "sysctl",
        `malformed line ${JSON.stringify(line)}`,
      );
    out[line.slice(0, eq).replace(/\//g, ".")] = line.slice(eq + 1);
  }
  return out;
}

/** nft prints {"nftables": [...]}; `null` (no nft binary) and `[]` (nft failed) mean none. */
const NftSection = z.preprocess(
  (v) => (Array.isArray(v) && v.length === 0 ? null : v),
  NftRuleset.nullable(),
);

/** Sections older snapshot scripts did not print: absent means "none", not "failed". */
const OPTIONAL_SECTIONS: ReadonlySet<string> = new Set(["neigh"]);

function failedSectionsOf(sections: ReadonlyMap<string, Section>): string[] {
  return SECTIONS.filter(
    (s) =>
      (sections.get(s) === undefined && !OPTIONAL_SECTIONS.has(s)) ||
      sections.get(s)?.rc !== undefined,
  );
}

function parseNamespace(
  ns: string,
  sections: ReadonlyMap<string, Section>,
): { state: NamespaceState; nsids: NetnsId[] } {
  const json = <T>(schema: z.ZodType<T>, name: string): T | undefined =>
    parseJsonSection(schema, ns, name, sections.get(name));
  const raw: RawNamespace = {
    links: json(z.array(IpLink), "links") ?? [],
    addrs: json(z.array(IpAddr), "addrs"),
    routes: json(z.array(Route), "routes") ?? [],
    routes6: json(z.array(Route), "routes6") ?? [],
    bports: json(z.array(BridgePort), "bports") ?? [],
    fdb: json(z.array(FdbEntry), "fdb") ?? [],
    neigh: json(z.array(NeighEntry), "neigh") ?? [],
    sysctl: parseSysctl(ns, sections.get("sysctl")),
    nft: json(NftSection, "nft") ?? null,
  };
  const nsids = json(z.array(NetnsId), "nsids") ?? [];
  try {
    return {
      state: buildNamespaceState(raw, failedSectionsOf(sections)),
      nsids,
    };
  } catch (e) {
    throw new SnapshotParseError(ns, "links", (e as Error).message);
  }
}

function nsidMap(nsids: readonly NetnsId[]): Map<number, string> {
  return new Map(
    nsids.flatMap((n) =>
      n.name === undefined ? [] : [[n.nsid, n.name] as const],
    ),
  );
}

function headerValue(split: Split, name: string): string {
  const lines = split.header.get(name);
  if (lines === undefined)
    throw new SnapshotParseError(undefined, name, "section missing");
  return lines.join("\n").trim();
}

/** Parses the output of snapshotScript(); throws SnapshotParseError naming ns and section. */
export function parseSnapshot(stdout: string): HostSnapshot {
  const split = splitSections(stdout);
  const snapshot: HostSnapshot = {
    machineId: headerValue(split, "machine-id"),
    hostname: headerValue(split, "hostname"),
    namespaces: {},
    absent: [],
  };
  const nsids = new Map<string, Map<number, string>>();
  for (const [ns, sections] of split.namespaces) {
    if (sections.has("absent")) {
      snapshot.absent.push(ns);
      continue;
    }
    const parsed = parseNamespace(ns, sections);
    snapshot.namespaces[ns] = parsed.state;
    nsids.set(ns, nsidMap(parsed.nsids));
  }
  if (snapshot.namespaces[ROOT_NS] === undefined)
    throw new SnapshotParseError(ROOT_NS, undefined, "root namespace missing");
  resolvePeers(snapshot.namespaces, nsids);
  return snapshot;
}

// ---------------------------------------------------------------------------------------
// nft canonical form (drift detection)
// ---------------------------------------------------------------------------------------

/** Runtime state that changes without anyone changing the ruleset. */
const VOLATILE: Readonly<Record<string, readonly string[]>> = {
  counter: ["packets", "bytes"],
  quota: ["used", "used_unit"],
  last: ["used"],
};

function scrubObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === "handle") continue;
    out[k] =
      VOLATILE[k] !== undefined && isPlainObject(v)
        ? scrubVolatile(v, VOLATILE[k])
        : scrub(v);
    // Anonymous sets ({"set": [...]}) and element lists are unordered.
    if ((k === "set" || k === "elem") && Array.isArray(out[k]))
      out[k] = sortByJson(out[k] as unknown[]);
  }
  return out;
}

function scrubVolatile(
  o: Record<string, unknown>,
  drop: readonly string[],
): unknown {
  const kept = scrubObject(
    Object.fromEntries(Object.entries(o).filter(([k]) => !drop.includes(k))),
  );
  return Object.keys(kept).length === 0 ? null : kept;
}

function scrub(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(scrub);
  return isPlainObject(v) ? scrubObject(v) : v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted at every level. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (!isPlainObject(v)) return JSON.stringify(v) ?? "null";
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(",")}}`;
}

function sortByJson(items: readonly unknown[]): unknown[] {
  return items
    .map((i) => [stableJson(i), i] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, i]) => i);
}

function without(
  o: Record<string, unknown>,
  keys: readonly string[],
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).filter(([k]) => !keys.includes(k)),
  );
}

const IDENTITY = ["family", "table", "name", "handle"];
const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

type TableItems = {
  table: Record<string, unknown>;
  chains: z.infer<typeof NftChain>[];
  rules: Map<string, z.infer<typeof NftRule>[]>;
  sets: { kind: string; set: z.infer<typeof NftSet> }[];
  extraElems: Map<string, unknown[]>;
  others: { kind: string; body: Record<string, unknown> }[];
};

const STRUCTURAL = new Set([
  "table",
  "chain",
  "rule",
  "set",
  "map",
  "element",
  "metainfo",
]);

function collectOther(
  t: TableItems,
  item: NftItem,
  family: string,
  table: string,
): void {
  for (const [kind, body] of Object.entries(item)) {
    if (STRUCTURAL.has(kind) || !isPlainObject(body)) continue;
    if (body.family === family && body.table === table)
      t.others.push({ kind, body });
  }
}

function collect(
  t: TableItems,
  item: NftItem,
  family: string,
  table: string,
): void {
  const mine = (o: { family: string; table: string } | undefined): boolean =>
    o?.family === family && o.table === table;
  if (mine(item.chain)) t.chains.push(item.chain!);
  if (mine(item.rule))
    t.rules.set(item.rule!.chain, [
      ...(t.rules.get(item.rule!.chain) ?? []),
      item.rule!,
    ]);
  if (mine(item.set)) t.sets.push({ kind: "set", set: item.set! });
  if (mine(item.map)) t.sets.push({ kind: "map", set: item.map! });
  if (mine(item.element))
    t.extraElems.set(item.element!.name, [
      ...(t.extraElems.get(item.element!.name) ?? []),
      ...item.element!.elem,
    ]);
  collectOther(t, item, family, table);
}

function chainLines(t: TableItems): string[] {
  return [...t.chains]
    .sort(byName)
    .flatMap((c) => [
      `chain ${c.name} ${stableJson(scrub(without(c, IDENTITY)))}`,
      ...(t.rules.get(c.name) ?? []).map(
        (r) =>
          `  rule ${stableJson(scrub(without(r, ["family", "table", "chain", "handle", "index"])))}`,
      ),
    ]);
}

function setLines(t: TableItems): string[] {
  const sorted = [...t.sets].sort((a, b) =>
    a.kind === b.kind ? byName(a.set, b.set) : a.kind < b.kind ? -1 : 1,
  );
  return sorted.flatMap(({ kind, set }) => {
    const elems = [
      ...(set.elem ?? []),
      ...(t.extraElems.get(set.name) ?? []),
    ].map((e) => stableJson(scrub(e)));
    const props = scrub(without(set, [...IDENTITY, "elem"])) as Record<
      string,
      unknown
    >;
    if (Array.isArray(props.flags))
      props.flags = [...(props.flags as unknown[])].sort();
    return [
      `${kind} ${set.name} ${stableJson(props)}`,
      ...[...new Set(elems)].sort().map((e) => `  elem ${e}`),
    ];
  });
}

function otherLines(t: TableItems): string[] {
  return t.others
    .map(
      (o) =>
        `${o.kind} ${stableJson(scrub(without(o.body, ["family", "table", "handle"])))}`,
    )
    .sort();
}

/**
 * Deterministic text of one table: chains (base-chain type/hook/prio/policy) with their
 * rules in order, sets/maps with sorted elements, other objects; handles and counter
 * values stripped. null when the table does not exist.
 */
export function canonicalNftTable(
  ruleset: NftRuleset,
  family: string,
  table: string,
): string | null {
  const head = ruleset.nftables.find(
    (i) => i.table?.family === family && i.table.name === table,
  )?.table;
  if (head === undefined) return null;
  const t: TableItems = {
    table: head,
    chains: [],
    rules: new Map(),
    sets: [],
    extraElems: new Map(),
    others: [],
  };
  for (const item of ruleset.nftables) collect(t, item, family, table);
  const lines = [
    `table ${family} ${table} ${stableJson(scrub(without(head, IDENTITY)))}`,
    ...setLines(t),
    ...chainLines(t),
    ...otherLines(t),
  ];
  return `${lines.join("\n")}\n`;
}
