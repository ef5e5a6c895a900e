// The Pulumi class of FilterChain; its outputs are the schema's props (Outputs<T>) plus the two
// the kind computes at apply (chains, portCount).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { FilterChainProps } from "./schema";

export interface FilterChainArgs
  extends
    CommonArgs,
    Partial<
      Inputs<Omit<z.input<typeof FilterChainProps>, "inSync" | "appliedDigest">>
    > {
  ports: pulumi.Input<z.input<typeof FilterChainProps>["ports"]>;
}

// The outputs come from the schema (declaration merging is how a class gets typed members it
// does not initialise itself; the engine fills them).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface FilterChain extends Outputs<FilterChainProps> {}

/** nftables (bridge family) filters for VM ports: one verdict-map dispatch, one atomic transaction. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class FilterChain extends HostnetResource {
  declare readonly chains: pulumi.Output<string[]>;
  declare readonly portCount: pulumi.Output<number>;
  constructor(
    name: string,
    args: FilterChainArgs,
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
    super("FilterChain", name, props, opts);
  }
}
