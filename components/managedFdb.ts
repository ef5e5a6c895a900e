// Managed forwarding database (seed 002, libvirt's macTableManager='libvirt'): the VM's MAC is
// known, so its host-bridge port gets a static fdb entry, and learning/unicast flood go off on
// that port (see hostPortFlags). Combinable with bridged and isolated-netns attachments.
import * as pulumi from "@pulumi/pulumi";
import type { FdbEntry } from "../providers/kinds/fdbEntry";
import type { HostPlan } from "./hostPlan";
import { ownFdbEntryName, suppressedNeighbours, VmSpec } from "./spec";

export function managedFdbEntry(
  parent: pulumi.Resource,
  name: string,
  plan: HostPlan,
  vm: VmSpec,
  bridge: string,
  port: string,
  deps: pulumi.Input<pulumi.Resource>[],
): FdbEntry[] {
  // A segment VM's entry is made with its segment's props by components/segment.ts (same name).
  if (!vm.managedFdb || vm.segment) return [];
  // With ARP suppression the bridge also learns the VM's addresses as permanent neighbours (IPv6
  // too: the bridge then answers neighbour solicitations for them the same way).
  const neighbours = vm.arpSuppress ? suppressedNeighbours(vm) : [];
  return [
    plan.make(
      "FdbEntry",
      ownFdbEntryName(name),
      { bridge, port, mac: vm.mac, neighbours, exclusive: true },
      { parent, dependsOn: deps },
    ),
  ];
}
