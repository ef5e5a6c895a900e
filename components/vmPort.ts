// The VM's own port on a bridge: a persistent tap for a real VM (QEMU opens it with script=no),
// or, for lab simulation, a veth whose far end sits in a guest namespace with the VM's MAC and IPs.
import * as pulumi from "@pulumi/pulumi";
import { PortFlagsInput } from "../providers/kinds/portFlags";
import type { HostPlan } from "./hostPlan";
import {
  derivedNames,
  guestAddressing,
  l3NamespaceSysctls,
  VmSpec,
} from "./spec";

export interface VmPortArgs {
  plan: HostPlan;
  vm: VmSpec;
  /** Interface name of the port on the bridge. */
  port: string;
  /** Namespace of the bridge (absent: root). */
  netns?: string;
  bridge: string;
  portFlags?: PortFlagsInput;
}

/** Creates the port; returns the resources so callers can depend on them. */
export function vmPort(
  parent: pulumi.Resource,
  name: string,
  args: VmPortArgs,
  deps: pulumi.Input<pulumi.Resource>[],
): pulumi.Resource[] {
  const { plan } = args;
  const opts = { parent, dependsOn: deps };
  if (!args.vm.simulate) {
    return [
      plan.make(
        "TapPort",
        `${name}-tap`,
        {
          name: args.port,
          netns: args.netns,
          master: args.bridge,
          portFlags: args.portFlags,
          multiQueue: false,
          vnetHdr: true,
        },
        opts,
      ),
    ];
  }
  const n = derivedNames(args.vm);
  const guest = plan.make(
    "VmNetns",
    `${name}-guest`,
    {
      name: n.guestNetns,
      sysctls: l3NamespaceSysctls(args.vm),
    },
    opts,
  );
  const link = plan.make(
    "VethLink",
    `${name}-port`,
    {
      a: {
        name: args.port,
        netns: args.netns,
        master: args.bridge,
        portFlags: args.portFlags,
        up: true,
      },
      b: {
        name: n.guestIf,
        netns: n.guestNetns,
        mac: args.vm.mac,
        ...guestAddressing(args.vm),
        up: true,
      },
    },
    { parent, dependsOn: [...deps, guest] },
  );
  return [guest, link];
}

/** Port flags of a VM's port on the host bridge (seed 002 and ARP suppression). */
export function hostPortFlags(vm: VmSpec): PortFlagsInput | undefined {
  const flags: PortFlagsInput = {};
  if (vm.managedFdb) Object.assign(flags, { learning: false, flood: false });
  if (vm.arpSuppress) flags.neighSuppress = true;
  return Object.keys(flags).length > 0 ? flags : undefined;
}
