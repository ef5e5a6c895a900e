// MacvlanPort's props (the single source of its types) and the checks across fields. Pure.
import { z } from "zod";
import {
  IfName,
  isLinkLocal,
  MacAddress,
  NetnsName,
  OwnableCidr,
} from "../../schema";
import { ROOT_NS } from "../../state";
import { repeats } from "../lists";

export const MACVLAN_MODES = [
  "bridge",
  "vepa",
  "private",
  "passthru",
  "source",
] as const;

export const MacvlanPortProps = z.object({
  name: IfName,
  type: z.enum(["macvlan", "macvtap"]).default("macvlan"),
  /** The device the port sits on; it must not be a bridge port (the kernel answers "busy"). */
  lower: IfName,
  /** Where the lower device lives, and so where the port is created (unset: root namespace). */
  lowerNetns: NetnsName.optional(),
  /** Where the port ends up (moved there after creation); unset: it stays beside its lower. */
  netns: NetnsName.optional(),
  mode: z.enum(MACVLAN_MODES).default("bridge"),
  /** Senders admitted in source mode (and only there). */
  sourceMacs: z.array(MacAddress).optional(),
  mac: MacAddress.optional(),
  mtu: z.number().int().min(68).max(65535).optional(),
  /** Assigned in the target namespace; hostnet owns exactly this set. */
  addresses: z.array(OwnableCidr).default([]),
  /** Admit link-local addresses (169.254.0.0/16, fe80::/10) in addresses; refused unless set. */
  linkLocal: z.boolean().optional(),
  /** Add IPv6 addresses with `nodad`: usable at once, no duplicate address detection. */
  nodad: z.boolean().optional(),
  up: z.boolean().default(true),
});
export type MacvlanPortProps = z.infer<typeof MacvlanPortProps>;
export type P = MacvlanPortProps;

/** Where the port lives: its target namespace, or beside its lower. */
export const targetOf = (p: P): string | undefined => p.netns ?? p.lowerNetns;
/** The port is made beside its lower and then moved to another namespace. */
export const moves = (p: P): boolean => targetOf(p) !== p.lowerNetns;
export const nsKey = (ns: string | undefined): string => ns ?? ROOT_NS;
export const nsLabel = (ns: string | undefined): string =>
  ns ? `netns ${ns}` : "the root namespace";

export function validate(p: P): Array<[string, string]> {
  const issues: Array<[string, string]> = [];
  if (
    p.mode === "source" &&
    (p.sourceMacs === undefined || p.sourceMacs.length === 0)
  ) {
    issues.push([
      "sourceMacs",
      'mode "source" needs sourceMacs: the MAC addresses whose frames this port receives',
    ]);
  }
  if (p.mode !== "source" && p.sourceMacs !== undefined) {
    issues.push([
      "sourceMacs",
      `sourceMacs only apply in mode "source" (mode is "${p.mode}"); remove them or set mode: "source"`,
    ]);
  }
  for (const field of ["sourceMacs", "addresses"] as const) {
    const list = p[field] ?? [];
    const [dup] = repeats(list).keys();
    if (dup !== undefined) issues.push([field, `${list[dup]} is listed twice`]);
  }
  p.addresses.forEach((a, i) => {
    if (!p.linkLocal && isLinkLocal(a))
      issues.push([
        `addresses[${i}]`,
        `${a} is link-local; set linkLocal: true if you mean it`,
      ]);
  });
  return issues;
}

/**
 * The kernel cannot switch a port into or out of passthru in place (EINVAL, measured on 6.x).
 * Gets raw props; a mode still unknown in preview counts as "not passthru" until it is known.
 */
export function replaces(
  olds: Record<string, any>,
  news: Record<string, any>,
): string[] {
  const [was, now] = [olds.mode ?? "bridge", news.mode ?? "bridge"];
  return was !== now && (was === "passthru") !== (now === "passthru")
    ? ["mode"]
    : [];
}
