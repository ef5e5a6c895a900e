// Addresses that make sense: an address a guest can own, a route destination, a gateway.
// These run after the syntax checks of addresses.ts, so they may assume a well-formed address.
import { z } from "zod";
import {
  Cidr,
  IpAddress,
  Ipv4Address,
  Ipv4Cidr,
  Ipv6Address,
  Ipv6Cidr,
} from "./addresses";

/** Numeric value of a well-formed IPv4 or IPv6 address (IPv6 may end in dotted IPv4). */
export function ipBits(ip: string): { value: bigint; width: 32 | 128 } {
  if (!ip.includes(":"))
    return {
      value: ip.split(".").reduce((acc, o) => (acc << 8n) | BigInt(o), 0n),
      width: 32,
    };
  let s = ip.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    s = `${s.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left, right] = s.split("::");
  const head = left ? left.split(":") : [];
  const tail = right ? right.split(":") : [];
  const groups =
    right === undefined
      ? head
      : [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail];
  return {
    value: groups.reduce(
      (acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)),
      0n,
    ),
    width: 128,
  };
}

interface Block {
  base: string;
  len: number;
  is: string;
  linkLocal?: boolean;
}

/** Ranges no guest interface can own, most specific first (the limited broadcast sits inside 240/4). */
const UNOWNABLE: Record<32 | 128, readonly Block[]> = {
  32: [
    { base: "255.255.255.255", len: 32, is: "the limited broadcast address" },
    {
      base: "0.0.0.0",
      len: 8,
      is: "in 0.0.0.0/8 (the unspecified address and 'this network')",
    },
    { base: "127.0.0.0", len: 8, is: "a loopback address (127.0.0.0/8)" },
    {
      base: "169.254.0.0",
      len: 16,
      is: "link-local (169.254.0.0/16)",
      linkLocal: true,
    },
    { base: "224.0.0.0", len: 4, is: "multicast (224.0.0.0/4)" },
    { base: "240.0.0.0", len: 4, is: "reserved (240.0.0.0/4)" },
  ],
  128: [
    { base: "::", len: 128, is: "the unspecified address (::)" },
    { base: "::1", len: 128, is: "the loopback address (::1)" },
    {
      base: "::ffff:0:0",
      len: 96,
      is: "an IPv4-mapped address (::ffff:0:0/96); use the IPv4 address itself",
    },
    { base: "ff00::", len: 8, is: "multicast (ff00::/8)" },
    { base: "fe80::", len: 10, is: "link-local (fe80::/10)", linkLocal: true },
  ],
};

function inBlock(value: bigint, width: 32 | 128, b: Block): boolean {
  const shift = BigInt(width - b.len);
  return value >> shift === ipBits(b.base).value >> shift;
}

export interface OwnableOptions {
  /** Admit link-local addresses (169.254.0.0/16, fe80::/10): only where the user asked for them. */
  linkLocal?: boolean;
  /** How the user asks for link-local here, for the message ("set linkLocal: true on this end"). */
  linkLocalHint?: string;
}

/**
 * Why `value` ("addr" or "addr/prefix") is not an address a guest or VM interface can own, or
 * undefined when it is. `what` names the field's kind in the message.
 */
export function ownableProblem(
  value: string,
  what: string,
  opts: OwnableOptions = {},
): string | undefined {
  const [addr, lenText] = value.split("/");
  const { value: bits, width } = ipBits(addr);
  const len = lenText === undefined ? width : Number(lenText);
  if (len === 0)
    return `${what} ${value} has prefix length 0, which spans every address; give the guest's own prefix (e.g. /24 or /64)`;
  const block = UNOWNABLE[width].find((b) => inBlock(bits, width, b));
  if (block && !(block.linkLocal && opts.linkLocal)) {
    const ask = block.linkLocal
      ? opts.linkLocalHint
        ? `; if you mean it, ${opts.linkLocalHint}`
        : "; link-local addresses are not accepted here"
      : "";
    return `${what} ${value} is ${block.is}, not an address a guest can own${ask}`;
  }
  // /31 and /32 (RFC 3021) and /127, /128 (RFC 6164) have no network or broadcast address.
  if (lenText === undefined || len >= width - 1) return undefined;
  const hostMask = (1n << BigInt(width - len)) - 1n;
  const host = bits & hostMask;
  if (host === 0n) {
    const kind =
      width === 32
        ? "the network address"
        : "the subnet-router anycast (network) address";
    return `${what} ${value} is ${kind} of its own prefix; a guest needs a host address inside it (e.g. ${addr.includes(":") ? `${addr}1` : "x.x.x.1"}/${len})`;
  }
  if (width === 32 && host === hostMask)
    return `${what} ${value} is the broadcast address of its own prefix; pick a host address below it`;
  return undefined;
}

/**
 * Why `cidr` is not a sensible route destination, or undefined. A route names a network, so
 * /0 (the default route) is fine; loopback, unspecified and IPv4-mapped destinations are not.
 */
export function routeDestinationProblem(
  cidr: string,
  what: string,
): string | undefined {
  const [addr, lenText] = cidr.split("/");
  const { value: bits, width } = ipBits(addr);
  if (Number(lenText) === 0) return undefined;
  const bad = UNOWNABLE[width].filter(
    (b) =>
      !b.linkLocal &&
      !b.is.startsWith("multicast") &&
      !b.is.startsWith("reserved"),
  );
  const block = bad.find((b) => inBlock(bits, width, b));
  return block
    ? `${what} ${cidr} is ${block.is}; a route through a veth cannot lead there`
    : undefined;
}

/** `schema` plus a meaning check, run only on values the schema's syntax checks accepted. */
const refined = <T extends z.ZodType<string>>(
  schema: T,
  problem: (s: string) => string | undefined,
) =>
  schema.superRefine((s, ctx) => {
    if (!schema.safeParse(s).success) return;
    const p = problem(s);
    if (p !== undefined) ctx.addIssue({ code: "custom", message: p });
  });

/** IPv4 address/prefix a VM can own (stack config: link-local refused). */
export const GuestIpv4Cidr = refined(Ipv4Cidr, (s) =>
  ownableProblem(s, "VM address"),
);
/**
 * IPv6 address/prefix a VM can own (stack config): not ::, ::1, multicast, IPv4-mapped, /0, the
 * subnet-router anycast of its prefix, nor link-local (the kernel makes the fe80:: address itself).
 */
export const GuestIpv6Cidr = refined(Ipv6Cidr, (s) =>
  ownableProblem(s, "VM address"),
).transform(canonicalIpv6Cidr);

/** The form the kernel prints (lowercase, longest zero run as ::), so live and desired compare as text. */
export function canonicalIpv6Cidr(cidr: string): string {
  const [addr, len] = cidr.split("/");
  const bare = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  return len === undefined ? bare : `${bare}/${len}`;
}
/** Address/prefix for an interface hostnet configures; link-local is admitted here and refused by the kind unless asked. */
export const OwnableCidr = refined(Cidr, (s) =>
  ownableProblem(s, "address", { linkLocal: true }),
);
/** A VM's own IPv4 address without prefix (fdb neighbours, filter sources). */
export const GuestIpv4Address = refined(Ipv4Address, (s) =>
  ownableProblem(s, "VM address"),
);
/** A VM's own IPv6 address without prefix; link-local admitted (a guest's NDP uses its fe80:: address). */
export const GuestIpv6Address = refined(Ipv6Address, (s) =>
  ownableProblem(s, "VM address", { linkLocal: true }),
);
/**
 * A VM's own address without prefix, either family (ARP/ND-suppression neighbours); IPv6 is kept
 * in the kernel's form, so a value written `2001:DB8:0::5` compares equal to the live `2001:db8::5`.
 */
export const GuestIpAddress = refined(IpAddress, (s) =>
  ownableProblem(s, "VM address"),
).transform(canonicalAddress);

/** An address (either family, no prefix) in the form the kernel prints; IPv4 as it is. */
export function canonicalAddress(addr: string): string {
  return addr.includes(":") ? canonicalIpv6Cidr(addr) : addr;
}
/** A next hop: an address some neighbour owns (fe80:: gateways are normal in IPv6). */
export const GatewayAddress = refined(IpAddress, (s) =>
  ownableProblem(s, "gateway", { linkLocal: true }),
);
/** A route destination network. */
export const RouteDestination = refined(Cidr, (s) =>
  routeDestinationProblem(s, "route destination"),
);

/** Whether a well-formed address or CIDR lies in 169.254.0.0/16 or fe80::/10. */
export function isLinkLocal(value: string): boolean {
  const { value: bits, width } = ipBits(value.split("/")[0]);
  return UNOWNABLE[width].some((b) => b.linkLocal && inBlock(bits, width, b));
}
