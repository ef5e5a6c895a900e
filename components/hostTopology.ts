// HostTopology: one host — its bridges (with uplinks), its VMs with their attachments, one
// verdict-map FilterChain for the VMs tapped straight onto host bridges, and a HostHealth check
// that runs on every up and refresh of the host (and whenever its desired topology changes).
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { FilterChain } from "../providers/kinds/filterChain";
import { HostBridge } from "../providers/kinds/hostBridge";
import { HealthChecks, HostHealth } from "../providers/kinds/hostHealth";
import {
  BootRestore,
  renderRestoreScript,
  RestoreSpecInput,
} from "../providers/kinds/bootRestore";
import { VethLink } from "../providers/kinds/vethLink";
import type { ConnectionInput } from "../providers/transport";
import { BridgedVm } from "./bridged";
import { IsolatedNetnsVm } from "./isolatedNetns";
import { MacvlanVm } from "./macvlan";
import { RoutedVm } from "./routed";
import { HostSegment, SegmentEnd } from "./segment";
import { BridgeSpec, derivedNames, stableBridgeMac, VmSpec } from "./spec";
import { hostPortFlags } from "./vmPort";

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
   * Covers host bridges, simulated NICs and isolated-netns VMs.
   */
  persist?: boolean | { path?: string; unit?: string; unitDir?: string };
  /** The multi-host L2 segments this host is a member of (see components/segment.ts). */
  segments?: HostSegment[];
}

export class HostTopology extends pulumi.ComponentResource {
  readonly health?: HostHealth;
  readonly children: pulumi.Resource[] = [];

  constructor(
    name: string,
    args: HostTopologyArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hostnet:topology:Host", name, {}, opts);
    const { connection } = args;
    const bridges = new Map<string, HostBridge>();
    for (const b of args.bridges) {
      bridges.set(
        b.name,
        new HostBridge(
          `${name}-${b.name}`,
          {
            connection,
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
        new VethLink(
          `${name}-nic-${nic}`,
          {
            connection,
            a: { name: nic, up: true },
            b: { name: `${nic}p`, up: true },
          },
          { parent: this },
        ),
      );
    }
    const nics = this.children.slice(bridges.size);
    const bridgedPorts: Array<{ port: string; vm: VmSpec }> = [];
    const vmComponents = new Map<string, pulumi.Resource>();
    for (const vm of args.vms) {
      const bridge = vm.bridge ? bridges.get(vm.bridge) : undefined;
      const childOpts = {
        parent: this,
        dependsOn: [
          ...(bridge ? [bridge] : []),
          ...(vm.attachment === "macvlan" ? nics : []),
        ],
      };
      const vmName = `${name}-${vm.name}`;
      switch (vm.attachment) {
        case "bridged": {
          const c = new BridgedVm(
            vmName,
            { connection, vm, bridge: vm.bridge! },
            childOpts,
          );
          if (vm.filter === "clean-traffic")
            bridgedPorts.push({ port: c.port, vm });
          this.children.push(c);
          break;
        }
        case "isolated-netns":
          this.children.push(
            new IsolatedNetnsVm(
              vmName,
              { connection, vm, bridge: vm.bridge! },
              childOpts,
            ),
          );
          break;
        case "macvlan":
          this.children.push(
            new MacvlanVm(vmName, { connection, vm }, childOpts),
          );
          break;
        case "routed":
          this.children.push(
            new RoutedVm(vmName, { connection, vm }, childOpts),
          );
          break;
      }
      vmComponents.set(vm.name, this.children[this.children.length - 1]);
    }
    for (const plan of args.segments ?? []) {
      const bridge = bridges.get(plan.segment.bridge);
      this.children.push(
        new SegmentEnd(
          `${name}-seg-${plan.segment.name}`,
          {
            hostName: args.hostName,
            connection,
            plan,
            bridge,
            localVms: vmComponents,
          },
          { parent: this },
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
        new FilterChain(
          table === "hostnet" ? `${name}-filter` : `${name}-filter-${table}`,
          {
            connection,
            table,
            ports: ports.map(({ port, vm }) => ({
              port,
              policy: "clean-traffic" as const,
              mac: vm.mac,
              ipv4: vm.ipv4.map((c) => c.split("/")[0]),
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
            script: renderRestoreScript(restoreSpecFor(args)),
            ...where,
          },
          { parent: this, dependsOn: [...this.children] },
        ),
      );
    }
    if (args.healthCheck) {
      const checks = healthChecksFor(args);
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

/** What "healthy" means for this host's desired topology. */
export function healthChecksFor(
  args: Pick<HostTopologyArgs, "bridges" | "vms">,
): HealthChecks {
  const links: HealthChecks["links"] = args.bridges.map((b) => ({
    name: b.name,
  }));
  const fdb: HealthChecks["fdb"] = [];
  for (const vm of args.vms) {
    const n = derivedNames(vm);
    if (vm.attachment === "bridged") links.push({ name: n.tap });
    if (vm.attachment === "isolated-netns")
      links.push({ name: n.hostPort }, { netns: n.netns, name: n.innerUplink });
    if (vm.attachment === "routed") links.push({ name: n.hostPort });
    if (
      vm.managedFdb &&
      vm.bridge &&
      (vm.attachment === "bridged" || vm.attachment === "isolated-netns")
    ) {
      fdb.push({ bridge: vm.bridge, mac: vm.mac });
    }
  }
  // Simulated VMs on the same L2 segment must reach each other: ping each from the previous one.
  const sims = args.vms.filter(
    (v) =>
      v.simulate &&
      (v.attachment === "bridged" || v.attachment === "isolated-netns"),
  );
  const pings: HealthChecks["pings"] = [];
  for (let i = 1; i < sims.length; i++) {
    if (sims[i].bridge !== sims[i - 1].bridge) continue;
    pings.push({
      netns: derivedNames(sims[i - 1]).guestNetns,
      to: sims[i].ipv4[0].split("/")[0],
    });
  }
  return { links, fdb, pings };
}

/** The objects this component makes for the host, as BootRestore renders them (mirrors IsolatedNetnsVm and vmPort). */
export function restoreSpecFor(
  args: Pick<
    HostTopologyArgs,
    "hostName" | "bridges" | "vms" | "simulatedNics"
  >,
): RestoreSpecInput {
  const spec = {
    host: args.hostName,
    namespaces: [],
    bridges: [],
    veths: [],
    taps: [],
    fdb: [],
    filters: [],
  } as Required<RestoreSpecInput>;
  spec.bridges.push(
    ...args.bridges.map((b) => ({
      name: b.name,
      stp: b.stp,
      mtu: b.mtu,
      mac: b.mac ?? stableBridgeMac(args.hostName, b.name),
      uplink: b.uplink,
    })),
  );
  spec.veths.push(
    ...(args.simulatedNics ?? []).map((nic) => ({
      a: { name: nic, up: true },
      b: { name: `${nic}p`, up: true },
    })),
  );
  for (const vm of args.vms) {
    if (vm.attachment !== "isolated-netns") {
      throw new Error(
        `host ${args.hostName}: persist covers isolated-netns VMs only, but VM ${vm.name} is ${vm.attachment}; turn persist off for this host`,
      );
    }
    const n = derivedNames(vm);
    const disableV6 = { "net.ipv6.conf.all.disable_ipv6": "1" };
    spec.namespaces.push({ name: n.netns, sysctls: disableV6 });
    spec.bridges.push({ name: n.innerBridge, netns: n.netns });
    spec.veths.push({
      a: {
        name: n.hostPort,
        master: vm.bridge,
        portFlags: hostPortFlags(vm),
        up: true,
      },
      b: {
        name: n.innerUplink,
        netns: n.netns,
        master: n.innerBridge,
        up: true,
      },
    });
    if (vm.simulate) {
      spec.namespaces.push({ name: n.guestNetns, sysctls: disableV6 });
      spec.veths.push({
        a: {
          name: n.innerTap,
          netns: n.netns,
          master: n.innerBridge,
          up: true,
        },
        b: {
          name: n.guestIf,
          netns: n.guestNetns,
          mac: vm.mac,
          addresses: vm.ipv4,
          up: true,
        },
      });
    } else {
      spec.taps.push({
        name: n.innerTap,
        netns: n.netns,
        master: n.innerBridge,
        multiQueue: false,
        vnetHdr: true,
      });
    }
    if (vm.filter === "clean-traffic") {
      spec.filters.push({
        netns: n.netns,
        table: "hostnet",
        ports: [
          {
            port: n.innerTap,
            policy: "clean-traffic",
            mac: vm.mac,
            ipv4: vm.ipv4.map((c) => c.split("/")[0]),
          },
        ],
      });
    }
    const neighbours = vm.arpSuppress
      ? vm.ipv4.map((c) => c.split("/")[0])
      : [];
    if (vm.managedFdb)
      spec.fdb.push({
        bridge: vm.bridge!,
        port: n.hostPort,
        mac: vm.mac,
        neighbours,
      });
  }
  return spec;
}
