// VmNetns properties: a named network namespace for one VM, its loopback and namespace sysctls.
import { z } from "zod";
import { NetnsName, SysctlKey, SysctlValue } from "../../schema";

/** The sysctls a namespace snapshot reads, so drift on them is visible without extra round trips. */
export const NAMESPACE_SYSCTLS = [
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.forwarding",
  "net.ipv4.conf.all.proxy_arp",
  "net.ipv4.conf.all.rp_filter",
  "net.ipv4.conf.default.rp_filter",
  "net.ipv6.conf.all.disable_ipv6",
  "net.ipv6.conf.default.disable_ipv6",
  "net.ipv6.conf.all.forwarding",
] as const;

const ManagedSysctl = SysctlKey.refine(
  (k) => (NAMESPACE_SYSCTLS as readonly string[]).includes(k),
  {
    message: `hostnet manages these namespace sysctls: ${NAMESPACE_SYSCTLS.join(", ")}`,
  },
);

export const VmNetnsProps = z.object({
  name: NetnsName,
  /** Namespace-wide sysctls, e.g. { "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.disable_ipv6": "1" }. */
  sysctls: z.record(ManagedSysctl, SysctlValue).default({}),
  loopbackUp: z.boolean().default(true),
  /** Delete even when interfaces that hostnet does not own live inside. */
  force: z.boolean().default(false),
});
export type VmNetnsProps = z.infer<typeof VmNetnsProps>;
