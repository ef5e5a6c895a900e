// ArpAnswer props: a netdev-family table that answers broadcast ARP requests for known VMs at the
// ingress of the asking VM's port (compile.ts), in the root namespace or a VM namespace.
// `inSync` and `appliedDigest` carry drift (kinds/nftTable.ts).
import { z } from "zod";
import { NftTableCommon } from "../nftTable";
import { ArpAnswerSpec, ArpAnswerSpecInput } from "./compile";

const Spec = ArpAnswerSpec.shape;

export const ArpAnswerProps = z.object({
  /** netns: the namespace holding the ports; unset: the root namespace. */
  ...NftTableCommon,
  ports: Spec.ports,
  entries: Spec.entries,
});
export type ArpAnswerProps = z.infer<typeof ArpAnswerProps>;

/** The nft family of every ArpAnswer table. */
export const FAMILY = "netdev";

export const specOf = (p: ArpAnswerProps): ArpAnswerSpecInput => ({
  table: p.table,
  ports: p.ports,
  entries: p.entries,
});
