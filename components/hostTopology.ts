// HostTopology: one host — its bridges (with uplinks), its VMs with their attachments, one
// verdict-map FilterChain for the VMs tapped straight onto host bridges, and a HostHealth check
// that runs on every up and refresh of the host (and whenever its desired topology changes).
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { HealthChecks, HostHealth } from "../providers/kinds/hostHealth";
import type { HostBridge } from "../providers/kinds/hostBridge";
import {
  BootRestore,
  renderRestoreScript,
} from "../providers/kinds/bootRestore";
import { KINDS } from "../providers/runtime/index";
import type { ConnectionInput } from "../providers/transport";
import { arpAnswersForHost } from "./arpAnswer";
import { expectedHealth, HostPlan } from "./hostPlan";
import { BridgedVm } from "./bridged";
import { IsolatedNetnsVm } from "./isolatedNetns";
import { MacvlanVm } from "./macvlan";
import { RoutedVm } from "./routed";
import { HostSegment, SegmentEnd, VmComponent } from "./segment";
import {
  bareAddresses,
  BridgeSpec,
  derivedNames,
  filterAddresses,
  onHostBridge,
  stableBridgeMac,
  vmComponentName,
  VmSpec,
} from "./spec";

export interface HostTopologyArgs {
  hostName: string;
  connection: pulumi.Input<ConnectionInput>;
  bridges: BridgeSpec[];
  vms: VmSpec[];
  /** Lab only: veth pairs standing in for NICs (name and name + "p"). */
  simulatedNics?: string[];
  /** Verify the host after applying (links up, fdb present, simulated VMs reach each other). */
  healthCheck?: boolean;
  /**
   * Keep a boot restore script (BootRestore) of this host's topology on the host, so a reboot does
   * not wait for the next `pulumi up`. true: the default places (/var/lib/hostnet/restore.sh,
   * /etc/systemd/system/hostnet-restore.service); an object overrides them (lab hosts share /etc).
   * Covers every resource the topology makes (rendered from the kinds' planners, see hostPlan.ts).
   */
  persist?: boolean | { path?: string; unit?: string; unitDir?: string };
  /** The multi-host L2 segments this host is a member of (see components/segment.ts). */
  segments?: HostSegment[];
}

export class HostTopology extends pulumi.ComponentResource {
  readonly health?: HostHealth;
  readonly children: pulumi.Resource[] = [];
  /** Every resource this host's topology made, in order (restore script and health derive from it). */
  readonly plan: HostPlan;

  constructor(
    name: string,
    args: HostTopologyArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hostnet:topology:Host", name, {}, opts);
    const { connection } = args;
    const plan = (this.plan = new HostPlan(connection));
    const bridges = new Map<string, HostBridge>();
    for (const b of args.bridges) {
      bridges.set(
        b.name,
        plan.make(
          "HostBridge",
          `${name}-${b.name}`,
          {
            name: b.name,
            stp: b.stp,
            mtu: b.mtu,
            mac: b.mac ?? stableBridgeMac(args.hostName, b.name),
            uplink: b.uplink,
          },
          { parent: this },
        ),
      );
    }
    this.children.push(...bridges.values());
    for (const nic of args.simulatedNics ?? []) {
      this.children.push(
        plan.make(
          "VethLink",
          `${name}-nic-${nic}`,
          {
            a: { name: nic, up: true },
            b: { name: `${nic}p`, up: true },
          },
          { parent: this },
        ),
      );
    }
    const nics = this.children.slice(bridges.size);
    const bridgedPorts: Array<{ port: string; vm: VmSpec }> = [];
    const vmComponents = new Map<string, VmComponent>();
    for (const vm of args.vms) {
      const bridge = vm.bridge ? bridges.get(vm.bridge) : undefined;
      const childOpts = {
        parent: this,
        dependsOn: [
          ...(bridge ? [bridge] : []),
          ...(vm.attachment === "macvlan" ? nics : []),
        ],
      };
      const vmName = vmComponentName(name, vm.name);
      let c: VmComponent;
      switch (vm.attachment) {
        case "bridged": {
          const b = new BridgedVm(
            vmName,
            { plan, vm, bridge: vm.bridge! },
            childOpts,
          );
          if (vm.filter === "clean-traffic")
            bridgedPorts.push({ port: b.port, vm });
          c = b;
          break;
        }
        case "isolated-netns":
          c = new IsolatedNetnsVm(
            vmName,
            { plan, vm, bridge: vm.bridge! },
            childOpts,
          );
          break;
        case "macvlan":
          c = new MacvlanVm(vmName, { plan, vm }, childOpts);
          break;
        case "routed":
          c = new RoutedVm(vmName, { plan, vm }, childOpts);
          break;
      }
      this.children.push(c);
      vmComponents.set(vm.name, c);
    }
    for (const segment of args.segments ?? []) {
      const bridge = bridges.get(segment.segment.bridge);
      this.children.push(
        new SegmentEnd(
          `${name}-seg-${segment.segment.name}`,
          {
            hostName: args.hostName,
            topology: this,
            topologyName: name,
            hostPlan: plan,
            plan: segment,
            bridge,
            localVms: vmComponents,
          },
          { parent: this },
        ),
      );
    }
    for (const a of arpAnswersForHost(
      args.hostName,
      args.bridges,
      args.vms,
      args.segments ?? [],
    )) {
      this.children.push(
        plan.make(
          "ArpAnswer",
          `${name}-arp-${a.bridge}`,
          {
            table: a.table,
            ports: a.askers.map((x) => x.port),
            entries: a.entries,
          },
          {
            parent: this,
            // Older kernels refuse an ingress hook on a device that does not exist yet.
            dependsOn: [
              ...(bridges.has(a.bridge) ? [bridges.get(a.bridge)!] : []),
              ...a.askers.map((x) => vmComponents.get(x.vm)!),
            ],
          },
        ),
      );
    }
    // One FilterChain per nft table (BridgeSpec.filterTable); the default table keeps its old resource name.
    const byTable = new Map<string, typeof bridgedPorts>();
    for (const bp of bridgedPorts) {
      const table =
        args.bridges.find((b) => b.name === bp.vm.bridge)?.filterTable ??
        "hostnet";
      byTable.set(table, [...(byTable.get(table) ?? []), bp]);
    }
    for (const [table, ports] of byTable) {
      this.children.push(
        plan.make(
          "FilterChain",
          table === "hostnet" ? `${name}-filter` : `${name}-filter-${table}`,
          {
            table,
            ports: ports.map(({ port, vm }) => ({
              port,
              policy: "clean-traffic" as const,
              mac: vm.mac,
              ...filterAddresses(vm),
            })),
          },
          { parent: this, dependsOn: [...bridges.values()] },
        ),
      );
    }
    if (args.persist) {
      const where = args.persist === true ? {} : args.persist;
      this.children.push(
        new BootRestore(
          `${name}-restore`,
          {
            connection,
            script: renderRestoreScript(
              restoreEntries(plan),
              KINDS,
              args.hostName,
            ),
            ...where,
          },
          { parent: this, dependsOn: [...this.children] },
        ),
      );
    }
    if (args.healthCheck) {
      const checks: HealthChecks = {
        ...expectedHealth(plan.resources, KINDS),
        pings: simulatedPings(args.vms),
      };
      const trigger = crypto
        .createHash("sha256")
        .update(JSON.stringify({ b: args.bridges, v: args.vms }))
        .digest("hex")
        .slice(0, 16);
      this.health = new HostHealth(
        `${name}-health`,
        { connection, hostName: args.hostName, checks, trigger },
        { parent: this, dependsOn: this.children },
      );
    }
    this.registerOutputs({});
  }
}

/** The restore script's input: the host's resources as planned (kind, name, props, owner). */
export const restoreEntries = (plan: HostPlan) =>
  plan.resources.map(({ kind, name, props, owner }) => ({
    kind,
    name,
    props,
    owner,
  }));

/**
 * Simulated VMs on the same L2 segment must reach each other: ping each from the previous one,
 * over IPv6 as well (its first IPv6 address) when both are dual-stack.
 */
export function simulatedPings(vms: readonly VmSpec[]): HealthChecks["pings"] {
  const sims = vms.filter((v) => v.simulate && onHostBridge(v));
  const pings: HealthChecks["pings"] = [];
  for (let i = 1; i < sims.length; i++) {
    if (sims[i].bridge !== sims[i - 1].bridge) continue;
    const netns = derivedNames(sims[i - 1]).guestNetns;
    pings.push({ netns, to: sims[i].ipv4[0].split("/")[0] });
    if (sims[i].ipv6.length > 0 && sims[i - 1].ipv6.length > 0)
      pings.push({ netns, to: bareAddresses(sims[i].ipv6)[0] });
  }
  return pings;
}
