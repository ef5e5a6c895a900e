// FilterChain props: bridge-family nftables filtering for the ports it names, in the root namespace
// or a VM namespace. The per-port spec is nftSpec.ts; `inSync` and `appliedDigest` carry drift.
import { z } from "zod";
import { NftTableCommon } from "../nftTable";
import { FilterChainSpec, FilterChainSpecInput } from "./nftSpec";

const Spec = FilterChainSpec.shape;

export const FilterChainProps = z.object({
  /** netns: the namespace holding the bridge ports; unset: the root namespace. */
  ...NftTableCommon,
  table: Spec.table,
  ports: Spec.ports,
  raw: Spec.raw,
});
export type FilterChainProps = z.infer<typeof FilterChainProps>;

/** The nft family of every FilterChain table. */
export const FAMILY = "bridge";

export function specOf(p: FilterChainProps): FilterChainSpecInput {
  return {
    table: p.table,
    ports: p.ports,
    ...(p.raw !== undefined ? { raw: p.raw } : {}),
  };
}
