/**
 * Pure compiler: ARP answers at the asking port's ingress (netdev family), so a broadcast request
 * for a known VM never enters the bridge.
 *
 * Why: with neigh_suppress and a permanent neighbour the bridge answers the request itself, but it
 * still hands the request to br_flood, which walks every port only to skip it (bench/README.md,
 * case (e)); that walk grows with the number of ports and no port flag avoids it. Here the request
 * is rewritten in place into the reply at the port's ingress hook (before the bridge's rx handler)
 * and sent back out of the port it came in on. `fwd` is terminal: the bridge never sees the frame.
 *
 *   table netdev T {
 *     map ip2mac { type ipv4_addr : ether_addr; elements = { <ip> : <mac>, ... } }
 *     set gratuitous { type ipv4_addr . ipv4_addr; elements = { <ip> . <ip>, ... } }
 *     chain ingress_0 { type filter hook ingress devices = { "<port>", ... } priority filter;
 *                       <answer rule> }            # one chain per 255 ports (kernel limit)
 *   }
 *
 * Answered: an untagged broadcast ARP request (Ethernet/IPv4 only: htype 1, ptype 0x0800, hlen 6,
 * plen 4) whose target IP is in ip2mac. Not answered (the frame goes on to the bridge untouched):
 * ARP probes (sender IP 0.0.0.0, RFC 5227: the asker checks the address is free and must see the
 * owner's own answer or none), gratuitous ARP (sender IP = target IP: an announcement for the
 * others, not a question), replies, unicast requests (a neighbour's reachability check: the VM itself
 * must answer, or a dead VM would look alive), VLAN-tagged frames, any other hardware or protocol.
 *
 * The rewrite (a payload cannot be copied from a field already overwritten, so the requested IP is
 * first parked in the request's target hardware address, which a request leaves unused and the
 * reply overwrites last):
 *   THA[0..3] := TPA; eth.dst := eth.src; eth.src := ip2mac[TPA]; TPA := SPA; SPA := THA[0..3];
 *   THA := SHA; SHA := eth.src; op := reply; fwd to the input port.
 * A MAC may carry several IPs (the map is keyed by IP only; nothing is looked up by MAC).
 *
 * Nothing here touches a host: the script is text for `nft -f -` in the ports' namespace.
 */
import { z } from "zod";
import {
  formatIssues,
  GuestIpv4Address,
  IfName,
  MacAddress,
  NftIdentifier,
} from "../../schema";
import { emitToken, FilterSpecError, quoteIfName } from "../filterChain";
import { tableResetLines } from "../nftTable";
import { repeats } from "../lists";

/** The kernel refuses a netdev chain hooked on more devices (NFT_NETDEVICE_MAX 256, exclusive). */
export const ARP_ANSWER_DEVICES_PER_CHAIN = 255;

export const ArpAnswerEntry = z.strictObject({
  /** A VM's IPv4 address that requests are answered for. */
  ip: GuestIpv4Address,
  /** Its MAC: the answer. */
  mac: MacAddress,
});
export type ArpAnswerEntry = z.infer<typeof ArpAnswerEntry>;

export const ArpAnswerSpec = z
  .strictObject({
    /** `table netdev <table>`; replaced as a whole by the script. */
    table: NftIdentifier,
    /** The VM ports whose requests are answered (bridge ports; they need not exist yet). */
    ports: z.array(IfName).min(1, "at least one port is required"),
    /** IP → MAC answers. Empty: nothing is answered, every request goes on to the bridge. */
    entries: z.array(ArpAnswerEntry).default([]),
  })
  .superRefine((s, ctx) => {
    for (const [i, first] of repeats(s.ports))
      ctx.addIssue({
        code: "custom",
        path: ["ports", i],
        message: `duplicate port "${s.ports[i]}" (first at ports[${first}])`,
      });
    for (const [i, first] of repeats(s.entries.map((e) => e.ip)))
      ctx.addIssue({
        code: "custom",
        path: ["entries", i, "ip"],
        message: `IP ${s.entries[i].ip} is listed twice (first at entries[${first}].ip); one address has one answer`,
      });
  });
export type ArpAnswerSpec = z.infer<typeof ArpAnswerSpec>;
export type ArpAnswerSpecInput = z.input<typeof ArpAnswerSpec>;

export const ARP_ANSWER_MAP = "ip2mac";
export const ARP_ANSWER_GRATUITOUS = "gratuitous";

/** Offsets (bits) into the ARP header for Ethernet/IPv4: target hardware address, target IP. */
const THA_BITS = 18 * 8;
const TPA_BITS = 24 * 8;
const PARKED = `@nh,${THA_BITS},32`;

/** The one rule of every ingress chain: match, then rewrite the request into its reply. */
export const ARP_ANSWER_RULE = [
  "ether type arp ether daddr ff:ff:ff:ff:ff:ff",
  "arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp operation request",
  "arp saddr ip != 0.0.0.0",
  `arp saddr ip . arp daddr ip != @${ARP_ANSWER_GRATUITOUS}`,
  `arp daddr ip @${ARP_ANSWER_MAP}`,
  "counter",
  `${PARKED} set @nh,${TPA_BITS},32`,
  "ether daddr set ether saddr",
  `ether saddr set arp daddr ip map @${ARP_ANSWER_MAP}`,
  "arp daddr ip set arp saddr ip",
  `arp saddr ip set ${PARKED}`,
  "arp daddr ether set arp saddr ether",
  "arp saddr ether set ether saddr",
  "arp operation set reply",
  "fwd to meta iif",
].join(" ");

export interface CompiledArpAnswer {
  /** One `nft -f` transaction that atomically creates or replaces `table netdev <table>`. */
  script: string;
  table: string;
  /** Ingress chains in order, each with its (sorted) devices. */
  chains: { name: string; devices: string[] }[];
}

/** `nft -f` text that deletes `table netdev <table>`; an absent table is not an error. */
export function arpAnswerRemoveScript(table: string): string {
  const r = NftIdentifier.safeParse(table);
  if (!r.success) throw new FilterSpecError(formatIssues(r.error, "table"));
  return tableResetLines("netdev", emitToken.ident(table)).join("\n") + "\n";
}

function elementsBlock(items: string[]): string[] {
  if (items.length === 0) return [];
  return [
    "\t\telements = {",
    ...items.map((x, i) => `\t\t\t${x}${i < items.length - 1 ? "," : ""}`),
    "\t\t}",
  ];
}

/** Numeric order of dotted quads, so the script does not depend on input order. */
function ipOrder(a: string, b: string): number {
  const n = (s: string): number =>
    s.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) - n(b);
}

/**
 * Validate (FilterSpecError with `arpAnswer.path: message` lines) and render the table.
 */
export function compileArpAnswer(
  input: ArpAnswerSpecInput | ArpAnswerSpec,
): CompiledArpAnswer {
  const r = ArpAnswerSpec.safeParse(input);
  if (!r.success) throw new FilterSpecError(formatIssues(r.error, "arpAnswer"));
  const spec = r.data;
  const table = emitToken.ident(spec.table);
  const entries = [...spec.entries].sort((a, b) => ipOrder(a.ip, b.ip));
  const ports = [...spec.ports].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const chains: { name: string; devices: string[] }[] = [];
  for (let k = 0; k < ports.length; k += ARP_ANSWER_DEVICES_PER_CHAIN)
    chains.push({
      name: `ingress_${chains.length}`,
      devices: ports.slice(k, k + ARP_ANSWER_DEVICES_PER_CHAIN),
    });

  const lines = [
    ...arpAnswerRemoveScript(table).trimEnd().split("\n"),
    `table netdev ${table} {`,
    `\tmap ${ARP_ANSWER_MAP} {`,
    "\t\ttype ipv4_addr : ether_addr",
    ...elementsBlock(
      entries.map((e) => `${emitToken.addr(e.ip)} : ${emitToken.mac(e.mac)}`),
    ),
    "\t}",
    "",
    `\tset ${ARP_ANSWER_GRATUITOUS} {`,
    "\t\ttype ipv4_addr . ipv4_addr",
    ...elementsBlock(
      entries.map((e) => `${emitToken.addr(e.ip)} . ${emitToken.addr(e.ip)}`),
    ),
    "\t}",
  ];
  for (const c of chains)
    lines.push(
      "",
      `\tchain ${emitToken.ident(c.name)} {`,
      `\t\ttype filter hook ingress devices = { ${c.devices.map(quoteIfName).join(", ")} } priority filter; policy accept;`,
      `\t\t${ARP_ANSWER_RULE}`,
      "\t}",
    );
  lines.push("}");
  return { script: lines.join("\n") + "\n", table, chains };
}
