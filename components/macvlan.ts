// macvlan (seed 004, setups 2–4): the VM sits on a macvtap (real VM) or macvlan (simulated guest)
// on a lower device, in bridge, vepa, private or passthru mode. No host bridge, no filters: the
// mode is the access control.
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "./hostPlan";
import {
  ATTACHMENT_TYPES,
  derivedNames,
  guestAddressing,
  l3NamespaceSysctls,
  VmSpec,
} from "./spec";

export interface MacvlanVmArgs {
  plan: HostPlan;
  vm: VmSpec;
}

export class MacvlanVm extends pulumi.ComponentResource {
  readonly resources: pulumi.Resource[];
  /** For macvtap: the character device QEMU opens (/dev/tapN). */
  readonly devicePath?: pulumi.Output<string | undefined>;
  constructor(
    name: string,
    args: MacvlanVmArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(ATTACHMENT_TYPES.macvlan, name, {}, opts);
    const { plan, vm } = args;
    if (!vm.lower)
      throw new Error(
        `VM ${vm.name}: a macvlan attachment needs 'lower' (the device the VM's macvlan sits on)`,
      );
    const n = derivedNames(vm);
    const deps: pulumi.Resource[] = [];
    if (vm.simulate) {
      deps.push(
        plan.make(
          "VmNetns",
          `${name}-guest`,
          {
            name: n.guestNetns,
            sysctls: l3NamespaceSysctls(vm),
          },
          { parent: this },
        ),
      );
    }
    const port = plan.make(
      "MacvlanPort",
      `${name}-mv`,
      {
        name: n.macvlan,
        type: vm.simulate ? "macvlan" : "macvtap",
        lower: vm.lower,
        netns: vm.simulate ? n.guestNetns : undefined,
        mode: vm.macvlanMode,
        mac: vm.mac,
        ...(vm.simulate ? guestAddressing(vm) : { addresses: [] }),
      },
      { parent: this, dependsOn: deps },
    );
    this.devicePath = (port as any).devicePath;
    this.resources = [...deps, port];
    this.registerOutputs({});
  }
}
