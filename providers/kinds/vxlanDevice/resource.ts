// The Pulumi class of VxlanDevice; its outputs are the schema's props (Outputs<T>).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { VxlanDeviceProps } from "./schema";

export interface VxlanDeviceArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof VxlanDeviceProps>>> {
  name: pulumi.Input<string>;
  vni: pulumi.Input<number>;
  local: pulumi.Input<string>;
  bridge: pulumi.Input<string>;
}

// The outputs come from the schema (declaration merging is how a class gets typed members it
// does not initialise itself; the engine fills them).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface VxlanDevice extends Outputs<VxlanDeviceProps> {}

/** A VXLAN device on a host bridge: one host's end of a multi-host L2 segment. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class VxlanDevice extends HostnetResource {
  constructor(
    name: string,
    args: VxlanDeviceArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("VxlanDevice", name, args, opts);
  }
}
