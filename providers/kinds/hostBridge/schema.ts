// HostBridge properties: a Linux bridge in the root namespace or in a named one, optionally with
// an existing interface (the uplink) enslaved to it.
import { z } from "zod";
import { IfName, MacAddress, NetnsName } from "../../schema";
import { ROOT_NS } from "../../state";

/** Kernel limit of forward_delay while STP runs (BR_MIN/MAX_FORWARD_DELAY, 2–30 s). */
export const STP_FORWARD_DELAY = { min: 200, max: 3000 };

export const HostBridgeProps = z.object({
  name: IfName,
  /** Namespace the bridge lives in; absent = the root namespace. */
  netns: NetnsName.optional(),
  stp: z.boolean().default(false),
  /** Centiseconds, as ip-link takes them (1500 = 15 s). */
  forwardDelay: z
    .number()
    .int()
    .min(0)
    .max(
      STP_FORWARD_DELAY.max,
      "forwardDelay is in centiseconds and the kernel caps it at 3000 (30 s)",
    )
    .optional(),
  /** Centiseconds; the kernel reads it back up to 1 off (jiffies rounding), so ±1 is not drift. */
  ageingTime: z
    .number()
    .int()
    .min(0)
    .max(
      100_000_000,
      "ageingTime is in centiseconds; at most 100000000 (about 11 days)",
    )
    .optional(),
  mcastSnooping: z.boolean().optional(),
  /** Passed to the kernel only when set: some kernels refuse the attribute even as 0. */
  vlanFiltering: z.boolean().optional(),
  mtu: z
    .number()
    .int()
    .min(68, "mtu must be at least 68 bytes (the IPv4 minimum)")
    .max(65535, "mtu must be at most 65535 bytes")
    .optional(),
  mac: MacAddress.optional(),
  up: z.boolean().default(true),
  /** An existing interface in the same namespace to enslave; released (never deleted) when dropped. */
  uplink: IfName.optional(),
  /** Output only: the uplink hostnet itself enslaved (so releasing an adopted bridge undoes only that). */
  managedUplink: IfName.optional(),
  /**
   * Enslave or release an uplink that carries the SSH management address with commit-confirm: its
   * IPv4 addresses and routes move with it, and the host reverts by itself unless hostnet can
   * confirm over a new SSH session within confirmTimeoutSeconds. Also guards any other change to a
   * bridge that carries the management address (mtu, mac, up, ...). Without it such uplinks are refused.
   */
  safeApply: z.boolean().default(false),
  confirmTimeoutSeconds: z
    .number()
    .int()
    .min(
      5,
      "confirmTimeoutSeconds must be at least 5 (hostnet needs time to reconnect and confirm)",
    )
    .max(
      3600,
      "confirmTimeoutSeconds must be at most 3600 (an hour without management access is long enough)",
    )
    .default(60),
});
export type HostBridgeProps = z.infer<typeof HostBridgeProps>;

export const nsOf = (p: HostBridgeProps): string => p.netns ?? ROOT_NS;
export const where = (p: HostBridgeProps): string =>
  p.netns ? `netns ${p.netns}` : "the root namespace";
