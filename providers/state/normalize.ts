// Normalization: one namespace's validated raw sections (rawIp.ts, rawNft.ts) become the
// NamespaceState of model.ts. Pure.
import {
  AddrInfo,
  BridgeInfoData,
  BridgePort,
  BridgeSlaveData,
  FdbEntry,
  IpAddr,
  IpLink,
  MacvlanInfoData,
  NeighEntry,
  Route,
  TunInfoData,
  VxlanInfoData,
} from "./rawIp";
import { NftRuleset } from "./rawNft";
import {
  BridgeOptions,
  FdbRow,
  Link,
  LinkKind,
  MacvlanOptions,
  NamespaceState,
  PortFlags,
  RouteRow,
  TunOptions,
} from "./model";

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
  netdevHooks?: Record<string, string[]>;
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
    ...(raw.netdevHooks ? { netdevHooks: raw.netdevHooks } : {}),
    failedSections,
  };
}
