// MAC addresses, IP addresses and prefixes, and ssh host names (DNS names or IP literals).
import { isIP } from "node:net";
import { z } from "zod";
import { baseRules, maxChars, onlyChars, Rule, show, text } from "./rules";

// ---------------------------------------------------------------------------------------
// MAC addresses
// ---------------------------------------------------------------------------------------

const MAC_FORMAT = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const macRules: Rule[] = [
  ...baseRules("MAC address", maxChars("MAC address", 17)),
  onlyChars("MAC address", /[0-9A-Fa-f:]/, "hex digits and ':'"),
  (s) =>
    MAC_FORMAT.test(s)
      ? undefined
      : `MAC address must be six two-digit hex octets separated by ':' (e.g. 52:54:00:12:34:56), got ${show(s)}`,
];

const isMulticastMac = (s: string): boolean =>
  (parseInt(s.slice(0, 2), 16) & 1) === 1;

/**
 * Unicast MAC for an interface or fdb entry, canonicalized to lowercase (the form the
 * kernel prints, so desired and observed state compare as plain strings).
 */
export const MacAddress = text("MAC address", [
  ...macRules,
  (s) =>
    isMulticastMac(s)
      ? `MAC address ${s.toLowerCase()} is multicast (lowest bit of the first octet is set); an interface needs a unicast address such as 52:54:00:xx:xx:xx`
      : undefined,
  (s) =>
    /^[0:]+$/.test(s)
      ? "MAC address 00:00:00:00:00:00 is not a usable address"
      : undefined,
]).transform((s) => s.toLowerCase());
export type MacAddress = z.infer<typeof MacAddress>;

/**
 * Any well-formed MAC, multicast and all-zero included: for filter matches (e.g. dropping
 * 01:80:c2:00:00:00), never for assigning to an interface. Also canonicalized to lowercase.
 */
export const AnyMacAddress = text("MAC address", macRules).transform((s) =>
  s.toLowerCase(),
);
export type AnyMacAddress = z.infer<typeof AnyMacAddress>;

// ---------------------------------------------------------------------------------------
// IP addresses and prefixes. We run node:net isIP AND our own charset/format checks: isIP
// alone accepts zone ids ("fe80::1%eth0"), which would carry arbitrary text to the host.
// ---------------------------------------------------------------------------------------

const IPV4_OCTET = /^(0|[1-9][0-9]{0,2})$/;

function ipv4Problem(s: string, what: string): string | undefined {
  const bad = ipChars(what, 4)(s);
  if (bad !== undefined) return bad;
  const octets = s.split(".");
  const ok =
    octets.length === 4 &&
    octets.every((o) => IPV4_OCTET.test(o) && Number(o) <= 255);
  return ok && isIP(s) === 4
    ? undefined
    : `${what} must be four decimal numbers 0–255 separated by '.', without leading zeros, got ${show(s)}`;
}

/** isIP accepts "fe80::1%eth0"; a zone id is free text, so it gets its own message. */
const noZone =
  (what: string): Rule =>
  (s) =>
    s.includes("%")
      ? `${what} must not carry a zone id (the "%..." suffix, as in fe80::1%eth0)`
      : undefined;

/** `slash` admits the '/' of a CIDR. */
const ipChars = (
  what: string,
  family: 4 | 6 | undefined,
  slash = false,
): Rule =>
  family === 4
    ? onlyChars(
        what,
        slash ? /[0-9./]/ : /[0-9.]/,
        slash ? "digits, '.' and '/'" : "digits and '.'",
      )
    : onlyChars(
        what,
        slash ? /[0-9A-Fa-f:./]/ : /[0-9A-Fa-f:.]/,
        slash ? "hex digits, ':', '.' and '/'" : "hex digits, ':' and '.'",
      );

function ipv6Problem(s: string, what: string): string | undefined {
  const bad = noZone(what)(s) ?? ipChars(what, 6)(s);
  if (bad !== undefined) return bad;
  return isIP(s) === 6
    ? undefined
    : `${what} is not a valid IPv6 address, got ${show(s)}`;
}

/** An address containing ':' can only be IPv6, so the message can be specific. */
function ipProblem(
  s: string,
  what: string,
  family?: 4 | 6,
): string | undefined {
  if (family === 4) return ipv4Problem(s, what);
  if (family === 6 || s.includes(":")) return ipv6Problem(s, what);
  return ipv4Problem(s, what);
}

/**
 * Zone and charset checks run on the whole value first, so that the first problem named
 * is the hostile character rather than a consequence of it.
 */
const preIpRules = (
  what: string,
  family: 4 | 6 | undefined,
  slash = false,
): Rule[] =>
  family === 4
    ? [ipChars(what, 4, slash)]
    : [noZone(what), ipChars(what, family, slash)];

// 45 = INET6_ADDRSTRLEN - 1, the longest textual IPv6 form (with embedded IPv4).
const ipSchema = (what: string, family: 4 | 6 | undefined, max: number) =>
  text(what, [
    ...baseRules(what, maxChars(what, max)),
    ...preIpRules(what, family),
    (s) => ipProblem(s, what, family),
  ]);

export const Ipv4Address = ipSchema("IPv4 address", 4, 15);
export type Ipv4Address = z.infer<typeof Ipv4Address>;
export const Ipv6Address = ipSchema("IPv6 address", 6, 45);
export type Ipv6Address = z.infer<typeof Ipv6Address>;
export const IpAddress = ipSchema("IP address", undefined, 45);
export type IpAddress = z.infer<typeof IpAddress>;

function prefixProblem(prefix: string, family: 4 | 6): string | undefined {
  const max = family === 4 ? 32 : 128;
  const ok = /^(0|[1-9][0-9]{0,2})$/.test(prefix) && Number(prefix) <= max;
  return ok
    ? undefined
    : `IPv${family} prefix length must be a number 0–${max}, got ${show(prefix)}`;
}

/** "address/prefix"; host bits may be set because interface addresses look like that. */
function cidrProblem(
  s: string,
  what: string,
  family?: 4 | 6,
): string | undefined {
  const parts = s.split("/");
  if (parts.length !== 2) {
    return `${what} must look like address/prefix (e.g. 10.0.0.1/24 or fd00::1/64), got ${show(s)}`;
  }
  const [addr, prefix] = parts as [string, string];
  const fam = family ?? (addr.includes(":") ? 6 : 4);
  return (
    ipProblem(addr, `${what} address part`, fam) ?? prefixProblem(prefix, fam)
  );
}

const cidrSchema = (what: string, family: 4 | 6 | undefined, max: number) =>
  text(what, [
    ...baseRules(what, maxChars(what, max)),
    ...preIpRules(what, family, true),
    (s) => cidrProblem(s, what, family),
  ]);

export const Ipv4Cidr = cidrSchema("IPv4 CIDR", 4, 18);
export type Ipv4Cidr = z.infer<typeof Ipv4Cidr>;
export const Ipv6Cidr = cidrSchema("IPv6 CIDR", 6, 49);
export type Ipv6Cidr = z.infer<typeof Ipv6Cidr>;
export const Cidr = cidrSchema("CIDR", undefined, 49);
export type Cidr = z.infer<typeof Cidr>;

// ---------------------------------------------------------------------------------------
// Host names (ssh targets)
// ---------------------------------------------------------------------------------------

const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function dnsProblem(s: string): string | undefined {
  const bad = onlyChars(
    "host name",
    /[A-Za-z0-9.-]/,
    "letters, digits, '-' and '.' (or be an IP address)",
  )(s);
  if (bad !== undefined) return bad;
  const labels = s.split(".");
  const badLabel = labels.find((l) => !DNS_LABEL.test(l));
  if (badLabel !== undefined) {
    return `host name label ${show(badLabel)} must be 1–63 letters, digits or '-', not starting or ending with '-'`;
  }
  // An all-numeric last label means the user meant an IPv4 literal (RFC 3696 §2).
  return /^[0-9]+$/.test(labels[labels.length - 1] ?? "")
    ? `host name ${show(s)} looks like an IPv4 address but is not a valid one`
    : undefined;
}

/** Digits and dots only (with at least one digit): the user meant an IPv4 literal. */
const looksNumeric = (s: string): boolean =>
  /^[0-9.]+$/.test(s) && /[0-9]/.test(s);

/**
 * DNS host name or IP literal. A leading '-' is impossible here, which matters: the value
 * becomes an ssh destination, where "-oProxyCommand=..." would be an option.
 */
export const HostName = text("host name", [
  ...baseRules("host name", maxChars("host name", 253)),
  (s) => (s.includes(":") ? ipv6Problem(s, "host name") : undefined),
  (s) =>
    s.includes(":")
      ? undefined
      : looksNumeric(s)
        ? ipv4Problem(s, "host name")
        : dnsProblem(s),
]);
export type HostName = z.infer<typeof HostName>;
