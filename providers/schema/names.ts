// Names that reach a host: interfaces, namespaces, login users, nft tables/chains/sets.
import { z } from "zod";
import {
  baseRules,
  maxChars,
  notDots,
  onlyChars,
  Rule,
  show,
  startsWith,
  text,
} from "./rules";

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
