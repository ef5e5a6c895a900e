// bridged (seed 004, setup 1): the VM's tap directly on the host bridge. Its filter lives in the
// host's per-bridge FilterChain (HostTopology), dispatched by one verdict-map lookup.
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "./hostPlan";
import { managedFdbEntry } from "./managedFdb";
import { ATTACHMENT_TYPES, derivedNames, VmSpec } from "./spec";
import { hostPortFlags, vmPort } from "./vmPort";

export interface BridgedVmArgs {
  plan: HostPlan;
  vm: VmSpec;
  bridge: string;
}

export class BridgedVm extends pulumi.ComponentResource {
  /** The VM's port on the host bridge (what the host FilterChain names). */
  readonly port: string;
  readonly resources: pulumi.Resource[];
  constructor(
    name: string,
    args: BridgedVmArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(ATTACHMENT_TYPES.bridged, name, {}, opts);
    const n = derivedNames(args.vm);
    this.port = n.tap;
    const port = vmPort(
      this,
      name,
      {
        plan: args.plan,
        vm: args.vm,
        port: n.tap,
        bridge: args.bridge,
        portFlags: hostPortFlags(args.vm),
      },
      [],
    );
    const fdb = managedFdbEntry(
      this,
      name,
      args.plan,
      args.vm,
      args.bridge,
      n.tap,
      port,
    );
    this.resources = [...port, ...fdb];
    this.registerOutputs({ port: this.port });
  }
}
