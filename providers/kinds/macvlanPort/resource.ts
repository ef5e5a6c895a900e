// The Pulumi resource class of MacvlanPort; its outputs come from the schema (Outputs).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { MacvlanPortProps } from "./schema";

export interface MacvlanPortArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof MacvlanPortProps>>> {
  name: pulumi.Input<string>;
  lower: pulumi.Input<string>;
}

// Declaration merging gives the class its typed outputs (dynamic.ts, Outputs).
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface MacvlanPort extends Outputs<MacvlanPortProps> {
  /** Interface index in the namespace where the port lives. */
  readonly ifindex: pulumi.Output<number>;
  /** macvtap only: /dev/tap<ifindex>. */
  readonly devicePath: pulumi.Output<string | undefined>;
}

/** A macvlan or macvtap port; `devicePath` is the macvtap's character device (/dev/tapN). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class MacvlanPort extends HostnetResource {
  constructor(
    name: string,
    args: MacvlanPortArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      "MacvlanPort",
      name,
      { ...args, ifindex: undefined, devicePath: undefined } as CommonArgs,
      opts,
    );
  }
}
