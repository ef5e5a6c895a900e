// FdbEntry props: one static forwarding-database entry on a bridge (seed 002). The kernel keys an
// entry by (bridge, mac, vlan); the port is just where it points, so moving a VM's MAC to another
// port is an in-place `fdb replace`.
import { z } from "zod";
import { OptionalNetns } from "../kind";
import { GuestIpAddress, IfName, Ipv4Address, MacAddress } from "../../schema";

const VLAN_RANGE = "vlan must be an integer 1–4094";
const VNI_RANGE = "remote.vni must be an integer 1–16777215";

export const RemoteDst = z
  .object({
    /** Underlay address of the host the MAC lives on. */
    dst: Ipv4Address,
    /** VNI to send with; unset: the vxlan device's own. */
    vni: z
      .number()
      .int(VNI_RANGE)
      .min(1, VNI_RANGE)
      .max(16777215, VNI_RANGE)
      .optional(),
  })
  .strict();
export type RemoteDst = z.infer<typeof RemoteDst>;

export const FdbEntryProps = z.object({
  /** The bridge whose forwarding database holds the entry. */
  bridge: IfName,
  /** The bridge port the MAC lives behind (a VM's tap or veth end). */
  port: IfName,
  /** Unicast MAC of the VM interface; stored lowercase. */
  mac: MacAddress,
  netns: OptionalNetns,
  /** Needs vlan_filtering on the bridge; kernels without it refuse such an entry. */
  vlan: z
    .number()
    .int(VLAN_RANGE)
    .min(1, VLAN_RANGE)
    .max(4094, VLAN_RANGE)
    .optional(),
  /**
   * ARP/ND suppression: the VM's addresses (IPv4 and IPv6, no prefix), published as permanent
   * neighbours (with this MAC) on the bridge. With neigh_suppress on the ports, the bridge answers
   * ARP requests and IPv6 neighbour solicitations for them itself instead of flooding them.
   */
  neighbours: z.array(GuestIpAddress).default([]),
  /**
   * The port's whole static table is this entry (managedFdb: learning is off, so the table alone
   * decides where frames go). Any other static entry on the port, and any other permanent
   * neighbour with this MAC, is drift: refresh reports it and `up` removes it.
   */
  exclusive: z.boolean().optional(),
  /**
   * The MAC lives on another host of a VXLAN segment: `port` is the vxlan device and the device's
   * own table gets `MAC dst <remote underlay address>` (a "self" entry) besides the bridge's entry.
   */
  remote: RemoteDst.optional(),
});
export type FdbEntryProps = z.infer<typeof FdbEntryProps>;

/** Words for the operator: which entry this is. */
export function where(p: FdbEntryProps): string {
  return `fdb entry ${p.mac}${p.vlan ? ` vlan ${p.vlan}` : ""} on bridge ${p.bridge}${p.netns ? ` in netns ${p.netns}` : ""}`;
}
