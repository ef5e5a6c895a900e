// VxlanDevice props: a VXLAN tunnel endpoint that joins a host bridge to one L2 segment spread over
// many hosts (issue 15). The kernel cannot change a VXLAN's VNI or UDP port in place ("Cannot
// change VNI"): those replace the device; the local address and learning are changed in place.
import { z } from "zod";
import { OptionalNetns } from "../kind";
import { repeats } from "../lists";
import { PortFlagsInput } from "../portFlags";
import { IfName, Ipv4Address } from "../../schema";

const VNI_RANGE = "vni must be an integer 1–16777215 (24 bits)";
const PORT_RANGE = "port must be a UDP port 1–65535";
const MTU_RANGE = "mtu must be an integer 68–65535";

/** The segment default: nothing learned, unknown unicast not sent, ARP answered from neighbours. */
export const SEGMENT_PORT_FLAGS: PortFlagsInput = {
  learning: false,
  flood: false,
  neighSuppress: true,
};

export const VxlanDeviceProps = z.object({
  name: IfName,
  netns: OptionalNetns,
  /** VXLAN network identifier: the segment on the wire. */
  vni: z.number().int(VNI_RANGE).min(1, VNI_RANGE).max(16777215, VNI_RANGE),
  /** Underlay source address (this host's management or underlay address). */
  local: Ipv4Address,
  /** UDP destination port of the underlay (IANA: 4789). */
  port: z
    .number()
    .int(PORT_RANGE)
    .min(1, PORT_RANGE)
    .max(65535, PORT_RANGE)
    .default(4789),
  /** MAC learning from received packets; off: hostnet programs every remote MAC. */
  learning: z.boolean().default(false),
  /** The bridge (same namespace) the device is a port of. */
  bridge: IfName,
  /** Flags of the device's bridge port. */
  portFlags: PortFlagsInput.default(SEGMENT_PORT_FLAGS),
  /** VXLAN adds 50 bytes: keep this ≤ underlay MTU − 50 to avoid fragmenting the underlay. */
  mtu: z
    .number()
    .int(MTU_RANGE)
    .min(68, MTU_RANGE)
    .max(65535, MTU_RANGE)
    .optional(),
  up: z.boolean().default(true),
  /**
   * Head-end replication: the underlay addresses that get a copy of every broadcast and multicast
   * frame the bridge hands this device (one all-zeros fdb entry per address). Absent or empty, the
   * segment default: nothing is flooded over the underlay. A segment lists the hosts a DHCP server
   * or relay sits on here, so its broadcasts still travel. (Optional, not a default of []: stacks
   * recorded before it existed must not see a change.)
   */
  floodTo: z.array(Ipv4Address).optional(),
});
export type VxlanDeviceProps = z.infer<typeof VxlanDeviceProps>;

/** Cross-field checks: a flood list names each other host once, never this one. */
export function floodToProblems(p: VxlanDeviceProps): Array<[string, string]> {
  const list = p.floodTo ?? [];
  const again = repeats(list);
  return list.flatMap((a, i): Array<[string, string]> => {
    if (a === p.local)
      return [
        [
          `floodTo[${i}]`,
          `${a} is this device's own local address; list only other hosts' underlay addresses`,
        ],
      ];
    const first = again.get(i);
    return first === undefined
      ? []
      : [[`floodTo[${i}]`, `${a} is already listed at floodTo[${first}]`]];
  });
}

/** Words for the operator: which device this is. */
export function where(p: VxlanDeviceProps): string {
  return `vxlan ${p.name} (vni ${p.vni})${p.netns ? ` in netns ${p.netns}` : ""}`;
}
