// The VmNetns Pulumi resource; its outputs are typed from the schema (Outputs in ../dynamic.ts).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { VmNetnsProps } from "./schema";

export interface VmNetnsArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof VmNetnsProps>>> {
  name: pulumi.Input<string>;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface VmNetns extends Outputs<VmNetnsProps> {}

/** A per-VM network namespace. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class VmNetns extends HostnetResource {
  constructor(
    name: string,
    args: VmNetnsArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("VmNetns", name, args, opts);
  }
}
