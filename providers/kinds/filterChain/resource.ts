// The Pulumi class of FilterChain; its outputs are the schema's props (Outputs<T>) plus the two
// every whole-table kind computes at apply (chains, portCount).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { Inputs, Outputs } from "../dynamic";
import { NftTableArgs, NftTableResource } from "../nftTableResource";
import { FilterChainProps } from "./schema";

export interface FilterChainArgs extends NftTableArgs<
  Partial<Inputs<z.input<typeof FilterChainProps>>>
> {
  ports: pulumi.Input<z.input<typeof FilterChainProps>["ports"]>;
}

// The outputs come from the schema (declaration merging is how a class gets typed members it
// does not initialise itself; the engine fills them).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface FilterChain extends Outputs<FilterChainProps> {}

/** nftables (bridge family) filters for VM ports: one verdict-map dispatch, one atomic transaction. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class FilterChain extends NftTableResource {
  constructor(
    name: string,
    args: FilterChainArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("FilterChain", name, args, opts);
  }
}
