// The Pulumi class of ArpAnswer; its outputs are the schema's props (Outputs<T>) plus the two
// every whole-table kind computes at apply (chains, portCount).
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { Inputs, Outputs } from "../dynamic";
import { NftTableArgs, NftTableResource } from "../nftTableResource";
import { ArpAnswerProps } from "./schema";

export interface ArpAnswerArgs extends NftTableArgs<
  Partial<Inputs<z.input<typeof ArpAnswerProps>>>
> {
  table: pulumi.Input<string>;
  ports: pulumi.Input<string[]>;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface ArpAnswer extends Outputs<ArpAnswerProps> {}

/** Broadcast ARP for known VMs answered at the asking port's ingress (netdev table). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class ArpAnswer extends NftTableResource {
  constructor(
    name: string,
    args: ArpAnswerArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("ArpAnswer", name, args, opts);
  }
}
