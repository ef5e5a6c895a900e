// The HostBridge Pulumi resource; its outputs are typed from the schema (Outputs in ../dynamic.ts).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs, Outputs } from "../dynamic";
import { HostBridgeProps } from "./schema";

export interface HostBridgeArgs
  extends
    CommonArgs,
    Partial<Inputs<Omit<z.input<typeof HostBridgeProps>, "managedUplink">>> {
  name: pulumi.Input<string>;
}

/** managedUplink: the uplink hostnet enslaved itself (undone on delete or release). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface HostBridge extends Outputs<HostBridgeProps> {}

/** A Linux bridge, optionally with an existing interface enslaved as its uplink. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class HostBridge extends HostnetResource {
  constructor(
    name: string,
    args: HostBridgeArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    // Listed so the engine exposes it as an output; the provider fills it in.
    super(
      "HostBridge",
      name,
      { ...args, managedUplink: undefined } as HostBridgeArgs,
      opts,
    );
  }
}
