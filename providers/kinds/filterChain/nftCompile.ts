/**
 * Pure compiler: typed per-port filter spec → one `nft -f` script (bridge family).
 *
 * Shape (see docs/ARCHITECTURE.md and ../shared/DESIGN.md): libvirt's nwfilter puts one jump per VM
 * port into a shared ebtables chain, so every frame walks O(N) rules. Here a frame costs ONE
 * verdict-map lookup keyed by the bridge port name plus the few rules of its own port:
 *
 *   table bridge T {
 *     chain p_<port>_<hash>_in  { ... }      # frames entering the bridge from the VM (iifname)
 *     chain p_<port>_<hash>_out { ... }      # frames leaving the bridge towards the VM (oifname)
 *     map from_vm { type ifname : verdict; elements = { "<port>" : jump p_..._in, ... } }
 *     map to_vm   { type ifname : verdict; elements = { "<port>" : jump p_..._out, ... } }
 *     chain forward_hook { type filter hook forward priority filter; policy accept;
 *                          iifname vmap @from_vm;
 *                          ether daddr ff:ff:ff:ff:ff:ff ether type arp accept;  # see below
 *                          oifname vmap @to_vm }
 *     chain input_hook   { type filter hook input priority filter; policy accept;
 *                          iifname vmap @from_vm }
 *   }
 *
 * Verdicts inside per-port chains: "allow" is `return`, never `accept`. A frame from VM a to VM b
 * must pass a's from-vm chain AND b's to-vm chain in the same forward hook; an `accept` in a's
 * chain would end the hook and skip b's filter. `return` hands the frame back to the base chain,
 * which then dispatches on the output port (and finally applies `policy accept`). `drop` is final.
 *
 * Broadcast ARP (every clone of every ARP request) is the bulk of a big bridge's filter work. Each
 * clean-traffic to-vm chain returns it with its first policy rule (two compares), and when every
 * to-vm chain returns it (no drop-all port, no to-vm rule, no raw text) the forward hook accepts it
 * right after the from-vm dispatch, so a clone costs no to-vm map lookup at all (bench/README.md,
 * cases c4 and c6).
 *
 * Nothing here touches a host: the script is text; the caller runs it with `nft -f -` in the
 * right namespace. Every string that reaches the script has been validated by a zod schema and is
 * additionally checked against a strict character class at emission time (defence in depth).
 */
import { createHash } from "crypto";
import { formatIssues, IfName, ipBits, NftIdentifier } from "../../schema";
import { tableResetLines } from "../nftTable";
import {
  CustomRule,
  familyOf,
  protoFamily,
  FilterChainSpec,
  FilterChainSpecInput,
  FilterSpecError,
  parseFilterChainSpec,
  PortFilter,
} from "./nftSpec";

/* ------------------------------------------------------------------------------------------ */
/* Emission helpers                                                                            */
/* ------------------------------------------------------------------------------------------ */

/** Last line of defence: every token we splice into the script must match its class. */
function assertToken(kind: string, value: string, re: RegExp): string {
  if (!re.test(value))
    throw new Error(
      `internal: refusing to emit ${kind} ${JSON.stringify(value)}`,
    );
  return value;
}

const IFNAME_RE = /^[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,14}$/;
const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const ADDR_RE = /^[0-9A-Fa-f:.]+(\/[0-9]{1,3})?$/;

/**
 * An interface name as an nft string literal. The name is validated by IfName first; names that
 * need escaping are rejected, never escaped.
 */
export function quoteIfName(name: string): string {
  const r = IfName.safeParse(name);
  if (!r.success) throw new FilterSpecError(formatIssues(r.error, "ifname"));
  if (name === "." || name === "..")
    throw new Error(`refusing interface name ${JSON.stringify(name)}`);
  return `"${assertToken("interface name", name, IFNAME_RE)}"`;
}

function ident(name: string): string {
  return assertToken("identifier", name, IDENT_RE);
}

function mac(m: string): string {
  return assertToken("MAC address", m.toLowerCase(), MAC_RE);
}

function addr(a: string): string {
  return assertToken("address", a, ADDR_RE);
}

/** The token checks for the other nft scripts hostnet writes (kinds/arpAnswer/compile.ts). */
export const emitToken = { ident, mac, addr } as const;

/** `x` for one element, `{ a, b }` (sorted, deduplicated) for several. */
function setOf(items: string[]): string {
  const uniq = [...new Set(items)].sort();
  if (uniq.length === 0) throw new Error("internal: empty set");
  return uniq.length === 1 ? uniq[0]! : `{ ${uniq.join(", ")} }`;
}

/** Code-unit order (not locale order): stable across machines. */
function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Per-port chain names: readable, safe for nft, unique per exact port name. */
export function chainNamesForPort(port: string): {
  in: string;
  out: string;
  /** A clean-traffic port's own from-vm rules, reached only by frames that passed its checks. */
  rules: string;
} {
  quoteIfName(port); // validates
  const sanitized = port.replace(/[^A-Za-z0-9_]/g, "_");
  const hash = createHash("sha256")
    .update(port, "utf8")
    .digest("hex")
    .slice(0, 8);
  const base = `p_${sanitized}_${hash}`;
  return {
    in: ident(`${base}_in`),
    out: ident(`${base}_out`),
    rules: ident(`${base}_rules`),
  };
}

export const BASE_CHAINS = {
  forward: "forward_hook",
  input: "input_hook",
} as const;
export const MAPS = { fromVm: "from_vm", toVm: "to_vm" } as const;

const BROADCAST = "ff:ff:ff:ff:ff:ff";
/** First policy rule of a clean-traffic to-vm chain (after the port's own to-vm rules). */
export const BROADCAST_ARP_RETURN = `ether daddr ${BROADCAST} ether type arp return`;
/**
 * The forward hook's rule between the from-vm and the to-vm dispatch, when every port's to-vm
 * chain returns broadcast ARP anyway: one verdict per clone after two compares, no map lookup.
 */
export const BROADCAST_ARP_ACCEPT = `ether daddr ${BROADCAST} ether type arp accept`;

/**
 * Whether every to-vm chain of the table returns a broadcast ARP frame: clean-traffic (its fast
 * path) or accept-all, without to-vm rules of the port's own and without raw text (which could add
 * rules to a per-port chain). Then accepting such a frame in the forward hook, after its from-vm
 * chain and before the to-vm dispatch, gives every clone the verdict it had, and the per-clone map
 * lookup and jump are saved (bench/README.md, case c6).
 */
function toVmAlwaysReturnsBroadcastArp(spec: FilterChainSpec): boolean {
  return (
    (spec.raw === undefined || spec.raw.trim() === "") &&
    spec.ports.every(
      (p) =>
        p.policy !== "drop-all" &&
        !p.rules.some((r) => r.direction === "to-vm"),
    )
  );
}

function customRule(r: CustomRule): string {
  const parts: string[] = [];
  const fam =
    r.src !== undefined
      ? familyOf(r.src)
      : r.dst !== undefined
        ? familyOf(r.dst)
        : protoFamily(r.proto);
  switch (r.proto) {
    case "arp":
      parts.push("ether type arp");
      if (r.src !== undefined) parts.push(`arp saddr ip ${addr(r.src)}`);
      if (r.dst !== undefined) parts.push(`arp daddr ip ${addr(r.dst)}`);
      break;
    default: {
      if (r.proto === "ipv4" || r.proto === "icmp") parts.push("ether type ip");
      if (r.proto === "ipv6" || r.proto === "icmpv6")
        parts.push("ether type ip6");
      const l3 = fam === "ipv6" ? "ip6" : "ip";
      if (r.src !== undefined) parts.push(`${l3} saddr ${addr(r.src)}`);
      if (r.dst !== undefined) parts.push(`${l3} daddr ${addr(r.dst)}`);
      if (r.proto === "tcp" || r.proto === "udp") {
        parts.push(`meta l4proto ${r.proto}`);
        if (r.dport !== undefined) {
          const d = Array.isArray(r.dport)
            ? r.dport[0] === r.dport[1]
              ? `${r.dport[0]}`
              : `${r.dport[0]}-${r.dport[1]}`
            : `${r.dport}`;
          parts.push(`${r.proto} dport ${d}`);
        }
      }
      if (r.proto === "icmp") parts.push("meta l4proto icmp");
      if (r.proto === "icmpv6") parts.push("meta l4proto ipv6-icmp");
    }
  }
  parts.push("counter");
  parts.push(r.action === "accept" ? "return" : "drop");
  if (r.comment !== undefined && r.comment !== "") {
    parts.push(
      `comment "${assertToken("comment", r.comment, /^[A-Za-z0-9 _.,:-]{0,64}$/)}"`,
    );
  }
  return parts.join(" ");
}

/* IPv6 clean-traffic (from-vm). ICMPv6 neighbour discovery layout (RFC 4861), offsets from the
 * start of the ICMPv6 header, which nft addresses as `@th,<bit offset>,<bits>`:
 *   NS/NA: 0 type, 1 code, 2 checksum, 4 flags/reserved, 8 target address (16 bytes), 24 options.
 *   RS:    0 type, 1 code, 2 checksum, 4 reserved, 8 options.
 * An option is type (1 = source, 2 = target link-layer address, 14 = nonce of RFC 7527 enhanced
 * DAD, which Linux guests send by default), length in 8-byte units, data.
 * Only the shapes a guest's stack sends are let through: no extension headers before the ICMPv6
 * header, no option or exactly one 8-byte link-layer option right after the fixed part (ICMPv6
 * length 24 or 32 for NS/NA, 8 or 16 for RS).
 * Anything else (another option, two options, an option elsewhere) cannot be checked by offset
 * and is dropped rather than passed. */

/** Link-local addresses a VM uses: fe80::/64 (RFC 4291 2.5.6), not the whole fe80::/10. */
const LINK_LOCAL_V6 = "fe80::/64";
const LINK_LOCAL_V6_HI = 0xfe80000000000000n;
const LINK_LOCAL_V6_HEX = `0x${LINK_LOCAL_V6_HI.toString(16)}`;
const ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }";
/** Option type 14, length 1: the nonce of RFC 7527 enhanced DAD. */
const NONCE_OPT = "0x0e01";

/** A 128-bit address as an nft raw-payload constant. */
function hex128(a: string): string {
  return `0x${ipBits(addr(a)).value.toString(16).padStart(32, "0")}`;
}

/** RFC 5952 text of an IPv6 address (nft's parser does not take the dotted-IPv4 tail). */
function canonicalV6(a: string): string {
  const v = ipBits(addr(a)).value;
  const groups = [...Array(8).keys()].map((i) =>
    ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
  );
  // the longest run (first of equals) of two or more zero groups becomes "::"
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best.len) best = { at: i, len: j - i };
  }
  if (best.at < 0) return groups.join(":");
  const head = groups.slice(0, best.at).join(":");
  const tail = groups.slice(best.at + best.len).join(":");
  return `${head}::${tail}`;
}

/** Whether a listed address is already covered by fe80::/64 (nft refuses overlapping elements). */
function inLinkLocal64(a: string): boolean {
  return ipBits(a).value >> 64n === LINK_LOCAL_V6_HI;
}

function ipv6FromVmRules(m: string, v6: string[], dhcp: boolean): string[] {
  // one element per address, whatever its spelling (2001:db8::1 = 2001:DB8:0::1)
  const own = v6.filter((a) => !inLinkLocal64(a));
  const ownHex = [...new Set(own.map(hex128))];
  const sources = setOf([LINK_LOCAL_V6, ...own.map(canonicalV6)]);
  const macHex = `0x${m.replace(/:/g, "")}`;
  const c = (text: string): string =>
    `comment "${assertToken("comment", text, /^[A-Za-z0-9 _.,:@-]{0,64}$/)}"`;
  const lines = [
    `ether type ip6 icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } counter drop ${c("ipv6 router advert redirect renumbering")}`,
    `ether type ip6 udp sport 547 counter drop ${c("ipv6 dhcpv6 server")}`,
    `ether type ip6 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 nexthdr != ipv6-icmp counter drop ${c("ipv6 nd extension header")}`,
    `ether type ip6 ${ND} ip6 length != { 24, 32 } counter drop ${c("ipv6 nd options unverifiable")}`,
    `ether type ip6 icmpv6 type nd-neighbor-advert @th,64,64 != ${LINK_LOCAL_V6_HEX}` +
      (ownHex.length > 0 ? ` @th,64,128 != ${setOf(ownHex)}` : "") +
      ` counter drop ${c("ipv6 na target")}`,
    `ether type ip6 icmpv6 type nd-neighbor-advert ip6 length 32 @th,192,16 != 0x0201 counter drop ${c("ipv6 na option")}`,
    `ether type ip6 icmpv6 type nd-neighbor-solicit ip6 length 32 @th,192,16 != { ${NONCE_OPT}, 0x0101 } counter drop ${c("ipv6 ns option")}`,
    // a link-layer option (the NA's is known to be one by now) must carry the VM's MAC
    `ether type ip6 ${ND} ip6 length 32 @th,192,8 != 14 @th,208,48 != ${macHex} counter drop ${c("ipv6 nd lladdr")}`,
    `ether type ip6 icmpv6 type nd-router-solicit ip6 length != { 8, 16 } counter drop ${c("ipv6 rs options unverifiable")}`,
    `ether type ip6 icmpv6 type nd-router-solicit ip6 length 16 @th,64,16 != 0x0101 counter drop ${c("ipv6 rs option")}`,
    `ether type ip6 icmpv6 type nd-router-solicit ip6 length 16 @th,80,48 != ${macHex} counter drop ${c("ipv6 rs lladdr")}`,
  ];
  if (dhcp) {
    lines.push(
      `ether type ip6 ip6 saddr ${sources} ip6 daddr ff02::1:2 udp sport 546 udp dport 547 return`,
    );
  }
  lines.push(`ether type ip6 ip6 saddr ${sources} return`);
  // duplicate address detection (optionally with a nonce) for the VM's own addresses or a
  // link-local one only: a DAD probe for another's address would make that VM give it up
  const dadTargets = [
    `@th,64,64 ${LINK_LOCAL_V6_HEX}`,
    ...(ownHex.length > 0 ? [`@th,64,128 ${setOf(ownHex)}`] : []),
  ];
  const dad = "ether type ip6 ip6 saddr :: icmpv6 type nd-neighbor-solicit";
  for (const target of dadTargets)
    lines.push(
      `${dad} ip6 length 24 ${target} return`,
      `${dad} ip6 length 32 @th,192,16 ${NONCE_OPT} ${target} return`,
    );
  lines.push(`${dad} counter drop ${c("ipv6 dad target")}`);
  // router solicitation (like DAD without a source link-layer option: RFC 4861 7.2.2 and 6.3.7),
  // MLDv2 report
  lines.push(
    "ether type ip6 ip6 saddr :: icmpv6 type nd-router-solicit ip6 length 8 return",
    "ether type ip6 ip6 saddr :: icmpv6 type mld2-listener-report return",
  );
  return lines;
}

const fromVmCustom = (p: PortFilter): string[] =>
  p.rules.filter((r) => r.direction === "from-vm").map(customRule);

/**
 * Rules of the from-vm chain (frames the VM sends; `iifname` is its port). A clean-traffic port's
 * own from-vm rules must not let a spoofed frame through: they live in their own chain, which the
 * policy reaches (`goto`) in place of each of its `return`s, so they only ever see clean frames.
 */
function fromVmRules(p: PortFilter, rulesChain: string): string[] {
  if (p.policy === "clean-traffic" && fromVmCustom(p).length > 0)
    return policyFromVmRules({ ...p, rules: [] }).map((r) =>
      r.endsWith(" return")
        ? `${r.slice(0, -" return".length)} goto ${rulesChain}`
        : r,
    );
  return policyFromVmRules(p);
}

function policyFromVmRules(p: PortFilter): string[] {
  const out = fromVmCustom(p);
  switch (p.policy) {
    case "accept-all":
      return out; // falls through to `return`: still dispatched, nothing refused
    case "drop-all":
      out.push("counter drop");
      return out;
    case "clean-traffic": {
      const m = mac(p.mac!);
      const v4 = p.ipv4.map(addr);
      const v6 = p.ipv6.map(addr);
      // no-mac-spoofing
      out.push(`ether saddr != ${m} counter drop`);
      // no-arp-spoofing (sender MAC and IP must be the VM's; 0.0.0.0 = RFC 5227 probe, as libvirt)
      out.push(
        `ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp operation { request, reply } ` +
          `arp saddr ether ${m} arp saddr ip ${setOf(["0.0.0.0", ...v4])} return`,
      );
      out.push("ether type arp counter drop");
      // allow DHCP client; no-ip-spoofing
      if (p.allowDhcp) {
        out.push(
          `ether type ip ip saddr ${setOf(["0.0.0.0", ...v4])} udp sport 68 udp dport 67 return`,
        );
      }
      if (v4.length > 0) out.push(`ether type ip ip saddr ${setOf(v4)} return`);
      out.push("ether type ip counter drop");
      if (p.allowIpv6) out.push(...ipv6FromVmRules(m, v6, p.allowDhcp));
      out.push("ether type ip6 counter drop");
      // no-other-l2-traffic
      out.push("counter drop");
      return out;
    }
  }
}

/** Rules of the to-vm chain (frames the bridge sends to the VM; `oifname` is its port). */
function toVmRules(p: PortFilter): string[] {
  const out = p.rules.filter((r) => r.direction === "to-vm").map(customRule);
  switch (p.policy) {
    case "accept-all":
      return out;
    case "drop-all":
      out.push("counter drop");
      return out;
    case "clean-traffic": {
      const m = mac(p.mac!);
      // fast path: broadcast ARP (every clone of every ARP request) leaves after two compares;
      // rule 2 below returns it too, but only after two set lookups (bench/README.md, case c4)
      out.push(BROADCAST_ARP_RETURN);
      // unicast (group bit clear) that is not for this VM
      out.push(
        `ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 ether daddr != ${m} counter drop`,
      );
      out.push(
        `ether type { arp, ip } ether daddr { ${m}, ${BROADCAST} } return`,
      );
      // IPv4 multicast (01:00:5e/25), as libvirt's allow-incoming-ipv4 does
      out.push(
        "ether type ip ether daddr & ff:ff:ff:80:00:00 == 01:00:5e:00:00:00 return",
      );
      if (p.allowIpv6) {
        out.push(`ether type ip6 ether daddr ${m} return`);
        out.push(
          "ether type ip6 ether daddr & ff:ff:00:00:00:00 == 33:33:00:00:00:00 return",
        );
      }
      // no other L2 traffic, no other multicast
      out.push("counter drop");
      return out;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Public API                                                                                  */
/* ------------------------------------------------------------------------------------------ */

export interface CompiledFilterChain {
  /** A complete `nft -f` transaction that atomically creates or replaces `table bridge <table>`. */
  script: string;
  /** The table name (family bridge). */
  table: string;
  /** Every chain the compiler emitted: per-port chains (ports sorted; in, out), then base chains. */
  chains: string[];
  /** Per port (sorted): its chain names. */
  ports: { port: string; in: string; out: string }[];
}

/** The idiom that makes create-or-replace (and delete-if-present) one atomic transaction. */
const resetLines = (table: string): string[] =>
  tableResetLines("bridge", table);

/** Script that deletes `table bridge <table>`; deleting an absent table is not an error. */
export function removeScript(table: string): string {
  const r = NftIdentifier.safeParse(table);
  if (!r.success) throw new FilterSpecError(formatIssues(r.error, "table"));
  return resetLines(ident(table)).join("\n") + "\n";
}

function chainBlock(name: string, rules: string[], comment?: string): string[] {
  const lines = [`\tchain ${ident(name)} {`];
  if (comment !== undefined)
    lines.push(
      `\t\tcomment "${assertToken("comment", comment, /^[A-Za-z0-9 _.,:@-]{0,64}$/)}"`,
    );
  for (const r of rules) lines.push(`\t\t${r}`);
  lines.push("\t}");
  return lines;
}

function mapBlock(name: string, elements: [string, string][]): string[] {
  const lines = [`\tmap ${ident(name)} {`, "\t\ttype ifname : verdict"];
  lines.push("\t\telements = {");
  elements.forEach(([port, chain], i) => {
    lines.push(
      `\t\t\t${quoteIfName(port)} : jump ${ident(chain)}${i < elements.length - 1 ? "," : ""}`,
    );
  });
  lines.push("\t\t}");
  lines.push("\t}");
  return lines;
}

/**
 * Compile a filter spec (validated here; defaults applied) into one nft script. Throws
 * FilterSpecError with `spec.path: message` lines when the spec is invalid.
 */
export function compileFilterChain(
  input: FilterChainSpecInput | FilterChainSpec,
): CompiledFilterChain {
  const spec = parseFilterChainSpec(input);
  const table = ident(spec.table);
  const ports = [...spec.ports].sort((a, b) => byString(a.port, b.port));

  const lines: string[] = [...resetLines(table), `table bridge ${table} {`];
  const chains: string[] = [];
  const portChains: { port: string; in: string; out: string }[] = [];

  for (const p of ports) {
    const names = chainNamesForPort(p.port);
    portChains.push({ port: p.port, ...names });
    chains.push(names.in, names.out);
    lines.push(
      ...chainBlock(
        names.in,
        fromVmRules(p, names.rules),
        `from-vm ${p.port} ${p.policy}`,
      ),
      "",
    );
    if (p.policy === "clean-traffic" && fromVmCustom(p).length > 0) {
      chains.push(names.rules);
      lines.push(
        ...chainBlock(
          names.rules,
          fromVmCustom(p),
          `from-vm ${p.port} own rules, clean frames only`,
        ),
        "",
      );
    }
    lines.push(
      ...chainBlock(names.out, toVmRules(p), `to-vm ${p.port} ${p.policy}`),
      "",
    );
  }

  lines.push(
    ...mapBlock(
      MAPS.fromVm,
      portChains.map((c) => [c.port, c.in] as [string, string]),
    ),
    "",
  );
  lines.push(
    ...mapBlock(
      MAPS.toVm,
      portChains.map((c) => [c.port, c.out] as [string, string]),
    ),
    "",
  );

  lines.push(
    ...chainBlock(BASE_CHAINS.forward, [
      "type filter hook forward priority filter; policy accept;",
      `iifname vmap @${MAPS.fromVm}`,
      ...(toVmAlwaysReturnsBroadcastArp(spec) ? [BROADCAST_ARP_ACCEPT] : []),
      `oifname vmap @${MAPS.toVm}`,
    ]),
    "",
    ...chainBlock(BASE_CHAINS.input, [
      "type filter hook input priority filter; policy accept;",
      `iifname vmap @${MAPS.fromVm}`,
    ]),
  );
  chains.push(BASE_CHAINS.forward, BASE_CHAINS.input);

  if (spec.raw !== undefined && spec.raw.trim() !== "") {
    lines.push("", "\t# raw (spec.raw)");
    for (const l of spec.raw.replace(/\r\n?/g, "\n").split("\n"))
      lines.push(l === "" ? "" : `\t${l}`);
  }
  lines.push("}");
  return { script: lines.join("\n") + "\n", table, chains, ports: portChains };
}
