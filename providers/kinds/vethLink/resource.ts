// The Pulumi resource class of VethLink; its outputs come from the schema (Outputs).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { VethEnd, VethLinkProps } from "./schema";

export interface VethLinkArgs extends CommonArgs {
  a: pulumi.Input<Inputs<z.input<typeof VethEnd>>>;
  b: pulumi.Input<Inputs<z.input<typeof VethEnd>>>;
  mtu?: pulumi.Input<number>;
}

// Declaration merging gives the class its typed outputs (dynamic.ts, Outputs).
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface VethLink extends Outputs<VethLinkProps> {}

/** A veth pair; each end in its own namespace (or the root), optionally a bridge port. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class VethLink extends HostnetResource {
  constructor(
    name: string,
    args: VethLinkArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("VethLink", name, args, opts);
  }
}
