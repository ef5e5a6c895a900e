// VethLink's props (the single source of its types) and the checks across fields that zod cannot
// express per field. Pure: no host, no I/O.
import { z } from "zod";
import {
  GatewayAddress,
  IfName,
  ipBits,
  isLinkLocal,
  MacAddress,
  NetnsName,
  OwnableCidr,
  RouteDestination,
} from "../../schema";
import { PortFlagsInput } from "../portFlags";
import { repeats } from "../lists";

/** A route through this end; without `via` it is a device route (scope link), as seed 003 needs. */
export const VethRoute = z
  .object({ to: RouteDestination, via: GatewayAddress.optional() })
  .strict();
export type VethRoute = z.infer<typeof VethRoute>;

export const VethEnd = z
  .object({
    name: IfName,
    /** Namespace of this end; absent means the host's root namespace. */
    netns: NetnsName.optional(),
    mac: MacAddress.optional(),
    /** The complete list: addresses found on the end but not listed here are removed. */
    addresses: z.array(OwnableCidr).default([]),
    /** Admit link-local addresses (169.254.0.0/16, fe80::/10) in addresses; refused unless set. */
    linkLocal: z.boolean().optional(),
    /** Add IPv6 addresses with `nodad`: usable at once, no duplicate address detection. */
    nodad: z.boolean().optional(),
    /** The complete list too: other routes through this end (but the kernel's own) are drift and removed. */
    routes: z.array(VethRoute).default([]),
    /**
     * Bridge in this end's namespace to enslave the end to. Unset: the end's master is not managed
     * (neither compared nor changed); to take an end out of a bridge, replace the pair.
     */
    master: IfName.optional(),
    /** Only with master. */
    portFlags: PortFlagsInput.optional(),
    up: z.boolean().default(true),
    /** net.ipv4.conf.<end>.proxy_arp: the host end of a routed namespace answers ARP for the rest. */
    proxyArp: z.boolean().optional(),
    /** net.ipv4.conf.<end>.forwarding */
    forwarding: z.boolean().optional(),
    /** IPv6 on this end: net.ipv6.conf.<end>.disable_ipv6 = 0 (true) or 1 (false); set before its addresses. */
    ipv6: z.boolean().optional(),
    /**
     * net.ipv6.conf.<end>.force_forwarding (Linux 6.17+): IPv6 arriving here is forwarded without
     * net.ipv6.conf.all.forwarding, which would put every interface in router mode (and make those
     * with accept_ra=1 ignore router advertisements, a management default route learned by RA too).
     */
    ipv6Forwarding: z.boolean().optional(),
  })
  .strict();
export type VethEnd = z.infer<typeof VethEnd>;

export const VethLinkProps = z.object({
  a: VethEnd,
  b: VethEnd,
  /** MTU of both ends. */
  mtu: z.number().int().min(68).max(65535).optional(),
});
export type VethLinkProps = z.infer<typeof VethLinkProps>;

export type EndKey = "a" | "b";
export const ENDS: readonly EndKey[] = ["a", "b"];

/** Per-interface sysctls an end manages, by prop: net.<family>.conf.<end>.<key>; `inverted`: 1 means false. */
export const END_SYSCTLS = {
  proxyArp: { family: "ipv4", key: "proxy_arp" },
  forwarding: { family: "ipv4", key: "forwarding" },
  ipv6: { family: "ipv6", key: "disable_ipv6", inverted: true },
  ipv6Forwarding: { family: "ipv6", key: "force_forwarding" },
} as const satisfies Record<
  string,
  { family: "ipv4" | "ipv6"; key: string; inverted?: boolean }
>;
export type EndSysctl = keyof typeof END_SYSCTLS;
export const SYSCTL_PROPS = Object.keys(END_SYSCTLS) as EndSysctl[];

/** The sysctl's dotted key for an end, as snapshots name it. */
export function endSysctlKey(end: { name: string }, prop: EndSysctl): string {
  const { family, key } = END_SYSCTLS[prop];
  return `net.${family}.conf.${end.name}.${key}`;
}

/** The kernel's value for a prop's boolean. */
export function endSysctlValue(prop: EndSysctl, on: boolean): "0" | "1" {
  return on !== "inverted" in END_SYSCTLS[prop] ? "1" : "0";
}

export function where(end: VethEnd): string {
  return end.netns ? `netns ${end.netns}` : "the root namespace";
}

export function pairLabel(p: VethLinkProps): string {
  return `veth pair ${p.a.name} (${where(p.a)}) <-> ${p.b.name} (${where(p.b)})`;
}

// ---------------------------------------------------------------------------------------
// Addresses: the kernel prints IPv6 in canonical form, users may not.
// ---------------------------------------------------------------------------------------

export function canonIp(ip: string): string {
  return ip.includes(":")
    ? new URL(`http://[${ip}]/`).hostname.slice(1, -1)
    : ip;
}

export function canonCidr(cidr: string): string {
  const [ip, len] = cidr.split("/");
  return `${canonIp(ip)}/${len}`;
}

export const isV6 = (ip: string): boolean => ip.includes(":");

function formatIp(value: bigint, width: number): string {
  if (width === 32)
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) =>
    ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
  );
  return canonIp(groups.join(":"));
}

/** The network of a CIDR, or undefined when it has no host bits set. */
function networkIfHostBits(cidr: string): string | undefined {
  const [ip, len] = cidr.split("/");
  const { value, width } = ipBits(ip);
  const hostMask = (1n << BigInt(width - Number(len))) - 1n;
  return (value & hostMask) === 0n
    ? undefined
    : `${formatIp(value & ~hostMask, width)}/${len}`;
}

// ---------------------------------------------------------------------------------------
// Validation across fields
// ---------------------------------------------------------------------------------------

function routeIssues(key: EndKey, end: VethEnd): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const dup = repeats(end.routes.map((r) => canonCidr(r.to)));
  end.routes.forEach((r, i) => {
    const at = `${key}.routes[${i}]`;
    const net = networkIfHostBits(r.to);
    if (net !== undefined)
      out.push([
        `${at}.to`,
        `${r.to} has host bits set; a route destination is a network, here ${net}`,
      ]);
    if (r.via !== undefined && isV6(r.via) !== isV6(r.to)) {
      out.push([
        `${at}.via`,
        `gateway ${r.via} and destination ${r.to} are of different IP families`,
      ]);
    }
    if (dup.has(i))
      out.push([
        `${at}.to`,
        `${r.to} is listed twice; one route per destination`,
      ]);
  });
  if (end.routes.length > 0 && !end.up) {
    out.push([
      `${key}.routes`,
      "the kernel refuses routes through a down interface: set up: true or drop the routes",
    ]);
  }
  return out;
}

function endIssues(
  key: EndKey,
  end: VethEnd,
  mtu: number | undefined,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (end.portFlags !== undefined && end.master === undefined) {
    out.push([
      `${key}.portFlags`,
      "port flags belong to a bridge port: set master (a bridge in this end's namespace) or drop portFlags",
    ]);
  }
  if (end.master === end.name)
    out.push([
      `${key}.master`,
      `${end.name} cannot be its own master; name a bridge`,
    ]);
  for (const i of repeats(end.addresses.map(canonCidr)).keys())
    out.push([`${key}.addresses[${i}]`, `${end.addresses[i]} is listed twice`]);
  end.addresses.forEach((a, i) => {
    if (!end.linkLocal && isLinkLocal(a))
      out.push([
        `${key}.addresses[${i}]`,
        `${a} is link-local; set linkLocal: true on ${key} if you mean it`,
      ]);
  });
  if (end.ipv6 === false && end.addresses.some(isV6))
    out.push([
      `${key}.ipv6`,
      `${end.name} carries IPv6 addresses, which the kernel refuses with IPv6 disabled: set ipv6: true or drop them`,
    ]);
  const v6 = end.addresses.find(isV6);
  if (mtu !== undefined && mtu < 1280 && v6 !== undefined) {
    out.push([
      "mtu",
      `IPv6 needs an MTU of at least 1280, but ${key} carries ${v6}`,
    ]);
  }
  return [...out, ...routeIssues(key, end)];
}

export function validate(p: VethLinkProps): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (p.a.name === p.b.name && (p.a.netns ?? "") === (p.b.netns ?? "")) {
    out.push([
      "b.name",
      `both ends are ${p.b.name} in ${where(p.b)}; give b another name or put it in another namespace`,
    ]);
  }
  return [...out, ...endIssues("a", p.a, p.mtu), ...endIssues("b", p.b, p.mtu)];
}
