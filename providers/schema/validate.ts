/**
 * zod schemas for every string that can reach a host (shell, `ip -batch`, nft, /proc/sys).
 *
 * Policy: anything outside a narrow, documented charset is REJECTED, never escaped. Each
 * schema reports the first problem it finds in one operator-readable sentence, so that a
 * bad stack config fails at preview time with a message that says exactly what to fix.
 *
 * All schemas accept ASCII only: every value here ends up in kernel names, nft scripts or
 * shell lines, where non-ASCII is either illegal or a lookalike-character trap.
 */
import { isIP } from "node:net";
import { z } from "zod";

// ---------------------------------------------------------------------------------------
// Rule machinery: a rule returns a problem sentence, or undefined when the value passes.
// Rules run in order and only the first problem is reported: for a single string, one
// precise sentence beats a cascade of consequences ("bad char", then "bad start", ...).
// ---------------------------------------------------------------------------------------

type Rule = (s: string) => string | undefined;

function firstProblem(s: string, rules: readonly Rule[]): string | undefined {
  for (const rule of rules) {
    const problem = rule(s);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing (undefined)";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return `a number (${String(v)})`;
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/** Names a character so that invisible or ambiguous ones are still identifiable in logs. */
function describeChar(c: string): string {
  const cp = c.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  const named: Record<string, string> = {
    " ": "a space",
    "\n": "a newline",
    "\r": "a carriage return",
    "\t": "a tab",
    "\0": "a NUL byte",
  };
  if (named[c] !== undefined) return named[c];
  if (cp < 0x20 || cp === 0x7f) return `control character ${hex}`;
  if (cp > 0x7e) return `non-ASCII character '${c}' (${hex})`;
  return c === "'" ? `"'"` : `'${c}'`;
}

/** Quotes a value for an error message; truncated so a 1 MB hostile input stays one line. */
function show(s: string): string {
  return JSON.stringify(s.length > 48 ? `${s.slice(0, 48)}…` : s);
}

/** A string schema whose type error names what was expected and which runs `rules`. */
function text(what: string, rules: readonly Rule[]) {
  return z
    .string({
      error: (issue) =>
        `expected ${what} as a string, got ${kindOf(issue.input)}`,
    })
    .superRefine((s, ctx) => {
      const problem = firstProblem(s, rules);
      if (problem !== undefined)
        ctx.addIssue({ code: "custom", message: problem });
    });
}

const nonEmpty =
  (what: string): Rule =>
  (s) =>
    s.length === 0 ? `${what} must not be empty` : undefined;

const maxChars =
  (what: string, max: number): Rule =>
  (s) =>
    s.length > max
      ? `${what} must be at most ${max} characters, got ${s.length}`
      : undefined;

const findChar = (
  s: string,
  bad: (c: string) => boolean,
): string | undefined => {
  for (const c of s) if (bad(c)) return c;
  return undefined;
};

/** Control characters (NUL, newline, ...) are the classic command/line injection vectors. */
const noControl =
  (what: string): Rule =>
  (s) => {
    const c = findChar(s, (ch) => ch < " " || ch === "\x7f");
    return c === undefined
      ? undefined
      : `${what} must not contain ${describeChar(c)}`;
  };

const asciiOnly =
  (what: string): Rule =>
  (s) => {
    const c = findChar(s, (ch) => ch > "\x7e");
    return c === undefined
      ? undefined
      : `${what} must contain only ASCII characters, found ${describeChar(c)}`;
  };

/** Rejects characters outside `allowed` (a one-character class) and names the first one. */
const onlyChars =
  (what: string, allowed: RegExp, desc: string): Rule =>
  (s) => {
    const c = findChar(s, (ch) => !allowed.test(ch));
    return c === undefined
      ? undefined
      : `${what} may contain only ${desc}, found ${describeChar(c)}`;
  };

const startsWith =
  (what: string, allowed: RegExp, desc: string): Rule =>
  (s) =>
    allowed.test(s[0] ?? "")
      ? undefined
      : `${what} must start with ${desc}, got ${describeChar(s[0] ?? "")}`;

const notDots =
  (what: string): Rule =>
  (s) =>
    s === "." || s === ".." ? `${what} must not be "." or ".."` : undefined;

/**
 * The checks every schema shares, in the order that gives the most useful first message.
 * Spaces are left to each schema's charset rule, which names the first offending character.
 */
function baseRules(what: string, length: Rule): Rule[] {
  return [nonEmpty(what), length, noControl(what), asciiOnly(what)];
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/** IFNAMSIZ is 16 including the NUL terminator, and the kernel counts bytes, not chars. */
const IFNAME_MAX_BYTES = 15;

const ifNameBytes: Rule = (s) => {
  const n = Buffer.byteLength(s, "utf8");
  return n > IFNAME_MAX_BYTES
    ? `interface name must be 1–${IFNAME_MAX_BYTES} bytes, got ${n}`
    : undefined;
};

/**
 * Linux interface name. The kernel forbids "", ".", "..", "/", whitespace and >15 bytes;
 * we also forbid ':' (legacy alias syntax) and anything outside [A-Za-z0-9_.@-], and a
 * leading '-', '.' or '@' (a leading '-' would read as an option to ip/bridge).
 */
export const IfName = text("interface name", [
  ...baseRules("interface name", ifNameBytes),
  notDots("interface name"),
  onlyChars(
    "interface name",
    /[A-Za-z0-9_.@-]/,
    "letters, digits, '_', '.', '@' and '-'",
  ),
  startsWith("interface name", /[A-Za-z0-9_]/, "a letter, digit or '_'"),
]);
export type IfName = z.infer<typeof IfName>;

/** Network namespace name (a file under /run/netns, so "." and ".." would escape it). */
export const NetnsName = text("netns name", [
  ...baseRules("netns name", maxChars("netns name", 64)),
  notDots("netns name"),
  onlyChars(
    "netns name",
    /[A-Za-z0-9_.-]/,
    "letters, digits, '_', '.' and '-'",
  ),
  startsWith("netns name", /[A-Za-z0-9_]/, "a letter, digit or '_'"),
]);
export type NetnsName = z.infer<typeof NetnsName>;

/** Login name on the managed host (the conservative useradd/Debian default pattern). */
export const UnixUser = text("unix user name", [
  ...baseRules("unix user name", maxChars("unix user name", 32)),
  onlyChars(
    "unix user name",
    /[a-z0-9_-]/,
    "lowercase letters, digits, '_' and '-'",
  ),
  startsWith("unix user name", /[a-z_]/, "a lowercase letter or '_'"),
]);
export type UnixUser = z.infer<typeof UnixUser>;

// nft keywords that would change the meaning of (or break) a script if used as a table,
// chain, set or map name. Compared case-insensitively so we never depend on the details
// of the nft scanner's case handling.
const NFT_KEYWORDS: ReadonlySet<string> = new Set([
  "fwd",
  "map",
  "set",
  "table",
  "chain",
  "rule",
  "element",
  "elements",
  "flowtable",
  "counter",
  "accept",
  "drop",
  "jump",
  "goto",
  "return",
  "continue",
  "queue",
  "ip",
  "ip6",
  "inet",
  "arp",
  "bridge",
  "netdev",
  "ether",
  "vlan",
  "meta",
  "ct",
  "log",
  "limit",
  "reject",
  "policy",
  "type",
  "hook",
  "priority",
  "define",
  "include",
  "flush",
  "add",
  "delete",
  "insert",
  "replace",
  "list",
  "export",
  "monitor",
  "describe",
  "reset",
  "destroy",
  "vmap",
  "comment",
  "quota",
  "dnat",
  "snat",
  "masquerade",
  "redirect",
  "notrack",
  "iif",
  "oif",
  "iifname",
  "oifname",
  // Refused by nft 1.0.6 as table names (measured here with nft -c).
  "tcp",
  "udp",
  "udplite",
  "icmp",
  "icmpv6",
  "igmp",
  "sctp",
  "dccp",
  "th",
  "ah",
  "esp",
  "comp",
  "mh",
  "hbh",
  "rt",
  "frag",
  "dst",
  "srh",
  "exthdr",
  "numgen",
  "jhash",
  "symhash",
  "fib",
  "osf",
  "socket",
  "tproxy",
  "synproxy",
  "secmark",
  "dup",
  "mark",
  "random",
  "update",
  "cpu",
  "day",
  "hour",
  "time",
  "cgroup",
  "ipsec",
  "ecn",
  "iiftype",
  "oiftype",
  "skuid",
  "skgid",
  "pkttype",
  "iifgroup",
  "oifgroup",
  "ibrname",
  "obrname",
  "ibriport",
  "obriport",
  "nftrace",
  "xor",
  "and",
  "or",
  "not",
  "typeof",
  "exists",
  "missing",
  "all",
  "handle",
  "index",
  "position",
  "timeout",
  "size",
  "flags",
  "interval",
  "constant",
  "dynamic",
  "devices",
  "offload",
  "ruleset",
  "create",
  "rename",
  "import",
  "device",
]);

/** Name of an nft table, chain, set or map. */
export const NftIdentifier = text("nft identifier", [
  ...baseRules("nft identifier", maxChars("nft identifier", 64)),
  onlyChars("nft identifier", /[A-Za-z0-9_]/, "letters, digits and '_'"),
  startsWith("nft identifier", /[A-Za-z_]/, "a letter or '_'"),
  (s) =>
    NFT_KEYWORDS.has(s.toLowerCase())
      ? `nft identifier must not be the nft keyword '${s.toLowerCase()}' (got ${show(s)}); choose another name`
      : undefined,
]);
export type NftIdentifier = z.infer<typeof NftIdentifier>;

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

// ---------------------------------------------------------------------------------------
// sysctls
// ---------------------------------------------------------------------------------------

const SYSCTL_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_@-]*$/;

function sysctlShapeProblem(s: string): string | undefined {
  if (s.includes(".") && s.includes("/")) {
    return "sysctl key must use either '.' or '/' as separator, not both (interface names containing '.', e.g. VLAN devices, are not supported)";
  }
  const segments = s.split(/[./]/);
  if (segments.some((seg) => seg === ""))
    return `sysctl key must not have empty segments, got ${show(s)}`;
  const bad = segments.find((seg) => !SYSCTL_SEGMENT.test(seg));
  if (bad !== undefined)
    return `sysctl key segment ${show(bad)} must not start with '-'`;
  if (segments[0] !== "net" || segments.length < 2) {
    return `sysctl key must start with "net." (hostnet only writes network sysctls), got ${show(s)}`;
  }
  return undefined;
}

/**
 * Network sysctl key, dotted ("net.ipv4.ip_forward") or slashed ("net/ipv4/ip_forward"),
 * returned in dotted form. Segments cannot contain '.', so interface names with dots
 * (eth0.100) are unsupported: that keeps dotted <-> /proc/sys path conversion a plain
 * character swap, with no ambiguity.
 */
export const SysctlKey = text("sysctl key", [
  ...baseRules("sysctl key", maxChars("sysctl key", 200)),
  onlyChars(
    "sysctl key",
    /[A-Za-z0-9_@./-]/,
    "letters, digits, '_', '@', '-', and '.' or '/' as separator",
  ),
  sysctlShapeProblem,
]).transform((s) => s.replace(/\//g, "."));
export type SysctlKey = z.infer<typeof SysctlKey>;

/**
 * Value written to a sysctl. Internal spaces are allowed (multi-value sysctls such as
 * ip_local_port_range); empty is rejected because no network sysctl takes an empty write.
 */
export const SysctlValue = text("sysctl value", [
  ...baseRules("sysctl value", maxChars("sysctl value", 64)),
  onlyChars(
    "sysctl value",
    /[0-9A-Za-z_ .:-]/,
    "letters, digits, spaces, '_', '.', ':' and '-'",
  ),
  (s) =>
    s.trim() !== s
      ? "sysctl value must not start or end with a space"
      : undefined,
  // A value of only punctuation (".", "--") is never meaningful and is likely a typo.
  (s) =>
    /[A-Za-z0-9]/.test(s)
      ? undefined
      : `sysctl value must contain a letter or digit, got ${show(s)}`,
]);
export type SysctlValue = z.infer<typeof SysctlValue>;

// ---------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && PLAIN_KEY.test(key))
      out += out === "" ? key : `.${key}`;
    else
      out += `[${typeof key === "string" ? JSON.stringify(key) : String(key)}]`;
  }
  return out === "" ? "value" : out;
}

/** One line per issue: "root.path.to[3].field: message". */
export function formatIssues(error: z.ZodError, root = ""): string[] {
  return error.issues.map(
    (issue) => `${formatPath(root, issue.path)}: ${issue.message}`,
  );
}

/** Error thrown by parseOrThrow; `issues` holds the formatted lines for programmatic use. */
export class ValidationError extends Error {
  constructor(
    readonly root: string,
    readonly issues: readonly string[],
  ) {
    super(
      `invalid ${root}:\n${issues.map((line) => `  - ${line}`).join("\n")}`,
    );
    this.name = "ValidationError";
  }
}

/** Parses or throws a ValidationError listing EVERY issue, so one run shows all fixes. */
export function parseOrThrow<T>(
  schema: z.ZodType<T>,
  value: unknown,
  root: string,
): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(root, formatIssues(result.error, root));
}

// ---------------------------------------------------------------------------------------
// Addresses that make sense: an address a guest can own, a route destination, a gateway.
// These run after the syntax checks above, so they may assume a well-formed address.
// ---------------------------------------------------------------------------------------

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
