// TapPort properties: a persistent tap device for QEMU (`-netdev tap,ifname=NAME,script=no`),
// owned by the VM's user/group, optionally a port of a bridge with its port flags (seed 002).
import { z } from "zod";
import { IfName, MacAddress, UnixUser } from "../../schema";
import { OptionalNetns } from "../kind";
import { PortFlagsInput } from "../portFlags";

/** A uid/gid or a name that the host resolves (group names follow the same charset). */
const IdOrName = (what: string) => {
  const range = `${what} id must be an integer 0–4294967294`;
  return z.union(
    [z.number().int(range).min(0, range).max(4294967294, range), UnixUser],
    {
      error: (i) =>
        i.code === "invalid_union"
          ? `${what} must be a numeric id (0–4294967294) or a name like "libvirt-qemu"`
          : undefined,
    },
  );
};

const MTU_RANGE = "mtu must be an integer 68–65521 (the tap driver's limits)";

export const TapPortProps = z.object({
  name: IfName,
  netns: OptionalNetns,
  /** uid or user name that may open the tap (the VM's QEMU user). */
  owner: IdOrName("owner").optional(),
  /** gid or group name that may open the tap. */
  group: IdOrName("group").optional(),
  /** One queue per vCPU (QEMU `queues=N`). */
  multiQueue: z.boolean().default(false),
  /** virtio-net header offloads; QEMU's vhost-net wants it. */
  vnetHdr: z.boolean().default(true),
  /** 68–65521: the tap driver's limits. */
  mtu: z
    .number()
    .int(MTU_RANGE)
    .min(68, MTU_RANGE)
    .max(65521, MTU_RANGE)
    .optional(),
  mac: MacAddress.optional(),
  /** Bridge in the same namespace to attach to. */
  master: IfName.optional(),
  /** Bridge port flags (only with master). */
  portFlags: PortFlagsInput.optional(),
  /** Administrative state; a tap no process holds stays operationally DOWN regardless. */
  up: z.boolean().default(true),
});
export type TapPortProps = z.infer<typeof TapPortProps>;

export function where(p: TapPortProps): string {
  return `tap ${p.name}${p.netns ? ` in netns ${p.netns}` : ""}`;
}
