// The Pulumi class of FdbEntry; its outputs are the schema's props (Outputs<T>).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { FdbEntryProps } from "./schema";

export interface FdbEntryArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof FdbEntryProps>>> {
  bridge: pulumi.Input<string>;
  port: pulumi.Input<string>;
  mac: pulumi.Input<string>;
}

// The outputs come from the schema (declaration merging is how a class gets typed members it
// does not initialise itself; the engine fills them).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface FdbEntry extends Outputs<FdbEntryProps> {}

/** A static fdb entry: `mac` lives behind `port` of `bridge`. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class FdbEntry extends HostnetResource {
  constructor(
    name: string,
    args: FdbEntryArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("FdbEntry", name, args, opts);
  }
}
