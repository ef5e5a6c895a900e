// The management path (issue 12, class 1): how the machine running hostnet reaches the host. A
// VM address or a route that equals or captures that path (the SSH peer as the host sees it, the
// gateway towards it, the host's own management address) cuts the session that is applying it, and
// the host then needs a console. Such inputs can never be right, so check() refuses them at
// preview, naming the field and the collision, before anything is sent to the host.
import { z } from "zod";
import type { Host } from "./host";
import { ipBits } from "../schema";

/** The path as the host sees it; read once per host and provider process. */
export interface ManagementPath {
  /** The SSH client's address as the host sees it (first field of SSH_CONNECTION). */
  peer: string;
  /** Interface the host's replies to the peer leave through. */
  dev: string;
  /** The route the host uses for the peer now (a more specific route would capture the peer). */
  peerRoute: string;
  /** Gateways: the next hop towards the peer and the default gateways of the main table. */
  gateways: string[];
  /** The host's addresses on the management interface (without prefix). */
  addresses: string[];
  /**
   * When `dev` is a bridge: its port(s) the path crosses, i.e. where the bridge learned the MAC of
   * the next hop (the gateway, or the peer itself). A filter on such a port filters the session.
   */
  crossed?: string[];
}

/** Where an address (or an interface name) enters a resource, for the collision check. */
export interface AddressUse {
  /** Field path in the resource's inputs, e.g. "a.routes[0].to". */
  path: string;
  /**
   * "ip/len" (an interface address), "ip" (an address a VM claims: neighbour, filter), a route
   * destination, or (kind "interface") the name of an interface the resource configures: filters,
   * sysctls. A management interface named in the root namespace is refused.
   */
  value: string;
  kind: "address" | "route" | "interface";
  /** In the host's root namespace, where its management path lives. */
  rootNs: boolean;
}

/**
 * One round trip: the peer from SSH_CONNECTION (found in an ancestor's environment when sudo reset
 * ours), then the route to it, the default routes and the management interface's addresses; when
 * that interface is a bridge, its neighbours and forwarding table (which port the path crosses).
 */
export const MANAGEMENT_PATH_SCRIPT = [
  'c="$SSH_CONNECTION"; p=$$',
  'while [ -z "$c" ] && [ "$p" -gt 1 ] 2>/dev/null; do',
  "  c=$(tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')",
  "  p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null)",
  "done",
  "peer=${c%% *}",
  'echo "@@peer $peer"',
  'echo "@@get"; [ -n "$peer" ] && ip -j route get "$peer"',
  'echo "@@routes"; ip -j route show; ip -j -6 route show',
  'echo "@@addr"; ip -j addr show',
  "dev=$(ip -o route get \"$peer\" 2>/dev/null | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')",
  'if [ -n "$dev" ] && [ -d "/sys/class/net/$dev/bridge" ]; then',
  '  echo "@@neigh"; ip -j neigh show dev "$dev"',
  '  echo "@@fdb"; bridge -j fdb show br "$dev"',
  "fi",
].join("\n");

const RouteJson = z.array(
  z
    .object({
      dst: z.string(),
      gateway: z.string().optional(),
      dev: z.string().optional(),
    })
    .loose(),
);
const AddrJson = z.array(
  z
    .object({
      ifname: z.string(),
      addr_info: z.array(z.object({ local: z.string() }).loose()).default([]),
    })
    .loose(),
);

const NeighJson = z.array(
  z.object({ dst: z.string(), lladdr: z.string().optional() }).loose(),
);
const FdbJson = z.array(
  z.object({ mac: z.string(), ifname: z.string().optional() }).loose(),
);

/** Parses the script's output (pure, for tests). */
export function parseManagementPath(out: string): ManagementPath | undefined {
  const peer = /^@@peer (\S*)/m.exec(out)?.[1] ?? "";
  if (peer === "") return undefined;
  // A section runs from its "@@name" line to the next "@@" line (JSON never starts a line with @@).
  const section = (name: string): string => {
    const start = out.indexOf(`@@${name}\n`);
    if (start < 0) return "";
    const end = out.indexOf("\n@@", start);
    return out.slice(start + name.length + 3, end < 0 ? undefined : end + 1);
  };
  const get = JSON.parse(section("get").trim() || "[]")[0] ?? {};
  // One JSON array per line, one line per family.
  const lines = section("routes")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const table = RouteJson.parse(lines.flatMap((l) => JSON.parse(l)));
  const dev: string = get.dev ?? "";
  const addrs = AddrJson.parse(JSON.parse(section("addr").trim() || "[]"));
  const holder = table
    .filter((r) => r.dst !== "default" && covers(cidrOf(r.dst), peer))
    .sort((a, b) => lenOf(cidrOf(b.dst)) - lenOf(cidrOf(a.dst)))[0];
  const defaultRoute = peer.includes(":") ? "::/0" : "0.0.0.0/0";
  // The bridge port the next hop's MAC was learned on (the session's own traffic keeps it fresh).
  const hop: string = get.gateway ?? peer;
  const mac = NeighJson.parse(JSON.parse(section("neigh").trim() || "[]"))
    .find((n) => n.dst === hop)
    ?.lladdr?.toLowerCase();
  const crossed = FdbJson.parse(JSON.parse(section("fdb").trim() || "[]"))
    .filter((e) => mac !== undefined && e.mac.toLowerCase() === mac)
    .map((e) => e.ifname)
    .filter((n): n is string => !!n && n !== dev);
  return {
    peer,
    dev,
    peerRoute: holder ? cidrOf(holder.dst) : defaultRoute,
    gateways: [
      ...new Set(
        [
          get.gateway,
          ...table.filter((r) => r.dst === "default").map((r) => r.gateway),
        ].filter((g): g is string => !!g),
      ),
    ],
    addresses: (addrs.find((a) => a.ifname === dev)?.addr_info ?? []).map(
      (a) => a.local,
    ),
    ...(crossed.length > 0 ? { crossed: [...new Set(crossed)] } : {}),
  };
}

const cidrOf = (dst: string): string =>
  dst.includes("/") ? dst : `${dst}/${dst.includes(":") ? 128 : 32}`;
const lenOf = (cidr: string): number => Number(cidr.split("/")[1]);

/** Whether CIDR `net` contains address `ip` (different families never do). */
export function covers(net: string, ip: string): boolean {
  const [addr, lenText] = net.split("/");
  if (addr.includes(":") !== ip.includes(":")) return false;
  const a = ipBits(addr);
  const shift = BigInt(a.width - Number(lenText ?? a.width));
  return a.value >> shift === ipBits(ip).value >> shift;
}

const cache = new WeakMap<Host, Promise<ManagementPath | undefined>>();

/** The host's management path, or undefined when the session does not show its peer. */
export function managementPathOf(
  host: Host,
): Promise<ManagementPath | undefined> {
  let p = cache.get(host);
  if (!p) {
    p = host
      .read(
        MANAGEMENT_PATH_SCRIPT,
        "read the management path (SSH peer, its route, the management addresses)",
      )
      .then(parseManagementPath);
    p.catch(() => cache.delete(host));
    cache.set(host, p);
  }
  return p;
}

/**
 * [path, message] for every use of an address that equals or captures the management path:
 * any address equal to the peer, a gateway or a management address; in the root namespace also a
 * route or an address prefix that contains the peer or its gateway at least as specifically as the
 * route the host uses now (so it would win the lookup and take the replies away).
 */
export function managementCollisions(
  mp: ManagementPath,
  uses: readonly AddressUse[],
  host: string,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const named: Array<[string, string]> = [
    [
      mp.peer,
      `the address hostnet connects from (the SSH peer ${mp.peer} as ${host} sees it)`,
    ],
    ...mp.gateways.map((g): [string, string] => [
      g,
      `${host}'s gateway ${g} (towards the SSH peer or its default route)`,
    ]),
    ...mp.addresses.map((a): [string, string] => [
      a,
      `${host}'s own management address ${a} on ${mp.dev}`,
    ]),
  ];
  const tail = `; hostnet refused it at preview and changed nothing on ${host}. Applying it would cut the SSH session that manages the host. Use another address.`;
  const marks = marksOf(mp);
  for (const u of uses) {
    if (u.kind === "interface") {
      // Only the root namespace holds the management path; an "eth0" in a VM namespace is another.
      const dev = u.rootNs
        ? managementTouch(marks, { devs: [u.value] }, "address")
        : undefined;
      if (dev !== undefined)
        out.push([
          u.path,
          `${dev} is ${dev === mp.dev ? `${host}'s management interface` : `the port of bridge ${mp.dev} (${host}'s management interface) that the SSH session crosses`}: the SSH peer ${mp.peer} is reached through it; hostnet refused it at preview and changed nothing on ${host}. A filter or sysctl on it could cut the SSH session that manages the host, and hostnet only configures interfaces it makes for VMs. Name the VM's own interface.`,
        ]);
      continue;
    }
    const ip = u.value.split("/")[0];
    const equal =
      u.kind !== "route"
        ? named.find(
            ([a]) =>
              ipBits(a).width === ipBits(ip).width &&
              ipBits(a).value === ipBits(ip).value,
          )
        : undefined;
    if (equal) {
      out.push([u.path, `${u.value} is ${equal[1]}${tail}`]);
      continue;
    }
    // A route, or the prefix route the kernel adds for an interface address, in the root namespace.
    const net = u.value.includes("/") ? u.value : undefined;
    if (!u.rootNs || net === undefined || lenOf(net) < lenOf(mp.peerRoute))
      continue;
    const captured = named
      .slice(0, 1 + mp.gateways.length)
      .find(([a]) => covers(net, a));
    if (captured) {
      out.push([
        u.path,
        `${u.value} would take over the route to ${captured[1]} (the host reaches it through ${mp.peerRoute} on ${mp.dev} now)${tail}`,
      ]);
    }
  }
  return out;
}

// ------------------------------------------------------------------ what a change touches

/**
 * The management path reduced to what a change can touch: the interfaces it leaves through and
 * the addresses it depends on. HostBridge's guard uses the addresses the SSH connection targets;
 * VethLink's uses the whole path read from the host (`marksOf`).
 */
export interface ManagementMarks {
  devs: readonly string[];
  addresses: readonly string[];
}

/**
 * The marks of a path read from the host: its interface and the bridge ports it crosses; the
 * peer, gateways and own addresses.
 */
export function marksOf(mp: ManagementPath): ManagementMarks {
  return {
    devs: [mp.dev, ...(mp.crossed ?? [])],
    addresses: [mp.peer, ...mp.gateways, ...mp.addresses],
  };
}

/**
 * The first mark a change touches, or undefined when it touches none. `touched.devs` are names a
 * change mentions (a management interface among them is touched); `touched.prefixes` are "ip" or
 * "ip/len" values it adds, removes or moves. With `match: "address"` a prefix touches an address
 * it equals (the length ignored: an interface that holds the address); with `match: "prefix"` one
 * it contains (a route or an address whose prefix would decide how the address is reached).
 */
export function managementTouch(
  marks: ManagementMarks,
  touched: { devs?: readonly string[]; prefixes?: readonly string[] },
  match: "address" | "prefix",
): string | undefined {
  const dev = (touched.devs ?? []).find((d) => marks.devs.includes(d));
  if (dev !== undefined) return dev;
  for (const prefix of touched.prefixes ?? []) {
    const ip = prefix.split("/")[0];
    const hit =
      match === "address"
        ? marks.addresses.find((a) => a === ip)
        : marks.addresses.find((a) => covers(cidrOf(prefix), a));
    if (hit !== undefined) return match === "address" ? ip : hit;
  }
  return undefined;
}
