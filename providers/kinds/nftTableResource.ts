// The Pulumi base class of the whole-table kinds (nftTable.ts): their inputs less the two drift
// props, and the outputs every such kind computes at apply (chains, portCount).
import * as pulumi from "@pulumi/pulumi";
import { CommonArgs, HostnetResource } from "./dynamic";

/** A whole-table kind's args: its inputs without `inSync` and `appliedDigest`, which are outputs. */
export type NftTableArgs<I> = CommonArgs & Omit<I, "inSync" | "appliedDigest">;

export abstract class NftTableResource extends HostnetResource {
  declare readonly chains: pulumi.Output<string[]>;
  declare readonly portCount: pulumi.Output<number>;
  protected constructor(
    type: string,
    name: string,
    args: CommonArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    // Outputs that are not inputs must be named here, or the engine never exposes them.
    const props: CommonArgs & Record<string, unknown> = {
      ...args,
      inSync: undefined,
      appliedDigest: undefined,
      chains: undefined,
      portCount: undefined,
    };
    super(type, name, props, opts);
  }
}
