// The TapPort Pulumi resource; its outputs are typed from the schema (Outputs in ../dynamic.ts).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { TapPortProps } from "./schema";

export interface TapPortArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof TapPortProps>>> {
  name: pulumi.Input<string>;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface TapPort extends Outputs<TapPortProps> {}

/** A persistent tap for a QEMU guest, optionally a bridge port. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TapPort extends HostnetResource {
  constructor(
    name: string,
    args: TapPortArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("TapPort", name, args, opts);
  }
}
