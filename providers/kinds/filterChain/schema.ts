// FilterChain props: bridge-family nftables filtering for the ports it names, in the root namespace
// or a VM namespace. The per-port spec is nftSpec.ts; `inSync` and `appliedDigest` carry drift.
import { z } from "zod";
import { OptionalNetns } from "../kind";
import { FilterChainSpec, FilterChainSpecInput } from "./nftSpec";

const Spec = FilterChainSpec.shape;

export const FilterChainProps = z.object({
  /** Namespace holding the bridge ports; unset: the root namespace. */
  netns: OptionalNetns,
  table: Spec.table,
  ports: Spec.ports,
  raw: Spec.raw,
  /** Desired value is always true; read() reports false when the live table differs from the applied one. */
  inSync: z.boolean().default(true),
  /** An output: sha256 of the canonical table as applied. In the schema only so read() gets it from state. */
  appliedDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type FilterChainProps = z.infer<typeof FilterChainProps>;

/** The nft family of every FilterChain table. */
export const FAMILY = "bridge";

/** Words for the operator: where the table lives. */
export function where(p: FilterChainProps): string {
  return p.netns ? `netns ${p.netns}` : "the root namespace";
}

export function specOf(p: FilterChainProps): FilterChainSpecInput {
  return {
    table: p.table,
    ports: p.ports,
    ...(p.raw !== undefined ? { raw: p.raw } : {}),
  };
}
