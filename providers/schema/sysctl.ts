// Network sysctl keys and values.
import { z } from "zod";
import { baseRules, maxChars, onlyChars, show, text } from "./rules";

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
