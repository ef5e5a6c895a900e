// routed (seed 003): no shared L2 at all. The VM's namespace gets a veth with a /32 host route
// towards it and proxy ARP on the host end; the host forwards between its veths. IPv6 likewise: a
// /128 route per address, the VM's default via fe80::1 on the host end, per-interface forwarding.
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "./hostPlan";
import {
  ATTACHMENT_TYPES,
  bareAddresses,
  derivedNames,
  l3NamespaceSysctls,
  VmSpec,
} from "./spec";

/** The routed VM's IPv6 gateway: the host end's link-local address (every VM sees the same). */
const GATEWAY6 = "fe80::1/64";

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
    super(ATTACHMENT_TYPES.routed, name, {}, opts);
    const { plan, vm } = args;
    const n = derivedNames(vm);
    const vmNetnsName = vm.simulate ? n.guestNetns : n.netns;
    const ns = plan.make(
      "VmNetns",
      `${name}-ns`,
      { name: vmNetnsName, sysctls: l3NamespaceSysctls(vm) },
      { parent: this },
    );
    const hosts = vm.ipv4.map((c) => `${c.split("/")[0]}/32`);
    const hosts6 = bareAddresses(vm.ipv6).map((a) => `${a}/128`);
    const v6 = hosts6.length > 0;
    const link = plan.make(
      "VethLink",
      `${name}-veth`,
      {
        a: {
          name: n.hostPort,
          routes: [...hosts, ...hosts6].map((to) => ({ to })),
          proxyArp: true,
          forwarding: true,
          up: true,
          // IPv6: a /128 device route per address (the VM answers NDP for its own), the VM's
          // link-local gateway, and forwarding of what the VM sends (no global router mode).
          ...(v6 && {
            addresses: [GATEWAY6],
            linkLocal: true,
            nodad: true,
            ipv6: true,
            ipv6Forwarding: true,
          }),
        },
        b: {
          name: n.guestIf,
          netns: vmNetnsName,
          mac: vm.mac,
          addresses: [...hosts, ...hosts6],
          routes: [
            { to: "0.0.0.0/0" },
            ...(v6 ? [{ to: "::/0", via: GATEWAY6.split("/")[0] }] : []),
          ],
          ...(v6 && { nodad: true }),
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
