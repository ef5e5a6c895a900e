// isolated-netns (seed 000): the VM's tap lives in its own namespace with its own small bridge and
// its own FilterChain, joined to the host bridge by a veth. A broadcast cloned to every port only
// meets this VM's rules, and a firewall reload in the root namespace cannot wipe them.
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "./hostPlan";
import { managedFdbEntry } from "./managedFdb";
import {
  ATTACHMENT_TYPES,
  derivedNames,
  filterAddresses,
  VmSpec,
} from "./spec";
import { hostPortFlags, vmPort } from "./vmPort";

export interface IsolatedNetnsVmArgs {
  plan: HostPlan;
  vm: VmSpec;
  /** Host bridge the VM's namespace is joined to. */
  bridge: string;
}

export class IsolatedNetnsVm extends pulumi.ComponentResource {
  readonly resources: pulumi.Resource[];
  constructor(
    name: string,
    args: IsolatedNetnsVmArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(ATTACHMENT_TYPES["isolated-netns"], name, {}, opts);
    const { plan, vm } = args;
    const n = derivedNames(vm);
    const ns = plan.make(
      "VmNetns",
      `${name}-ns`,
      {
        name: n.netns,
        sysctls: { "net.ipv6.conf.all.disable_ipv6": "1" },
      },
      { parent: this },
    );
    const inner = plan.make(
      "HostBridge",
      `${name}-br`,
      { name: n.innerBridge, netns: n.netns },
      { parent: this, dependsOn: [ns] },
    );
    const uplink = plan.make(
      "VethLink",
      `${name}-uplink`,
      {
        a: {
          name: n.hostPort,
          master: args.bridge,
          portFlags: hostPortFlags(vm),
          up: true,
        },
        b: {
          name: n.innerUplink,
          netns: n.netns,
          master: n.innerBridge,
          up: true,
        },
      },
      { parent: this, dependsOn: [inner] },
    );
    const port = vmPort(
      this,
      name,
      {
        plan,
        vm,
        port: n.innerTap,
        netns: n.netns,
        bridge: n.innerBridge,
      },
      [inner],
    );
    const filters: pulumi.Resource[] = [];
    if (vm.filter === "clean-traffic") {
      filters.push(
        plan.make(
          "FilterChain",
          `${name}-filter`,
          {
            netns: n.netns,
            table: "hostnet",
            ports: [
              {
                port: n.innerTap,
                policy: "clean-traffic",
                mac: vm.mac,
                ...filterAddresses(vm),
              },
            ],
          },
          { parent: this, dependsOn: [ns] },
        ),
      );
    }
    const fdb = managedFdbEntry(this, name, plan, vm, args.bridge, n.hostPort, [
      uplink,
    ]);
    this.resources = [ns, inner, uplink, ...port, ...filters, ...fdb];
    this.registerOutputs({});
  }
}
