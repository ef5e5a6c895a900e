// VmNetns properties: a named network namespace for one VM, its loopback and namespace sysctls.
import { z } from "zod";
import { NetnsName, SysctlKey, SysctlValue } from "../../schema";
import { NAMESPACE_SYSCTLS } from "../../state";

export { NAMESPACE_SYSCTLS };

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
