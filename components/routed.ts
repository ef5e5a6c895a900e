// routed (seed 003): no shared L2 at all. The VM's namespace gets a veth with a /32 host route
// towards it and proxy ARP on the host end; the host forwards between its veths.
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "./hostPlan";
import { derivedNames, VmSpec } from "./spec";

export interface RoutedVmArgs {
  plan: HostPlan;
  vm: VmSpec;
}

export class RoutedVm extends pulumi.ComponentResource {
  readonly resources: pulumi.Resource[];
  constructor(
    name: string,
    args: RoutedVmArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hostnet:attachment:Routed", name, {}, opts);
    const { plan, vm } = args;
    const n = derivedNames(vm);
    plan.expectLink(n.hostPort);
    const vmNetnsName = vm.simulate ? n.guestNetns : n.netns;
    const ns = plan.make(
      "VmNetns",
      `${name}-ns`,
      {
        name: vmNetnsName,
        sysctls: { "net.ipv6.conf.all.disable_ipv6": "1" },
      },
      { parent: this },
    );
    const hosts = vm.ipv4.map((c) => `${c.split("/")[0]}/32`);
    const link = plan.make(
      "VethLink",
      `${name}-veth`,
      {
        a: {
          name: n.hostPort,
          routes: hosts.map((to) => ({ to })),
          proxyArp: true,
          forwarding: true,
          up: true,
        },
        b: {
          name: n.guestIf,
          netns: vmNetnsName,
          mac: vm.mac,
          addresses: hosts,
          routes: [{ to: "0.0.0.0/0" }],
          proxyArp: false,
          up: true,
        },
      },
      { parent: this, dependsOn: [ns] },
    );
    this.resources = [ns, link];
    this.registerOutputs({});
  }
}
