// Segment membership of one host, derived from the whole environment config (no cross-stack
// references): the host's vxlan device and one FdbEntry per VM of the segment, pointing at the
// VM's own port where it is local, at its host's underlay address elsewhere. A VM's entry keeps its
// identity through every change of membership (memberEntry), so moving a VM, or a VM joining or
// leaving, is an in-place update of the entries the hosts already have.
import * as pulumi from "@pulumi/pulumi";
import type { HostPlan } from "./hostPlan";
import {
  ATTACHMENT_TYPES,
  AttachmentKind,
  bareAddresses,
  bridgePort,
  ownFdbEntryName,
  SegmentSpec,
  vmComponentName,
  VmSpec,
} from "./spec";

export interface SegmentMember {
  vm: string;
  host: string;
  mac: string;
  ipv4: string[];
  /** IPv6 addresses without prefix; absent when the VM has none (the member reads as before). */
  ipv6?: string[];
  /** Local VMs: the VM's port on the segment bridge. */
  port: string;
  /** Underlay address of the VM's host. */
  underlay: string;
  managedFdb: boolean;
  attachment: AttachmentKind;
}

/** One host's part of a segment: plain data, computed the same way by every host. */
export interface HostSegment {
  segment: SegmentSpec;
  /** The vxlan device's name on every host. */
  device: string;
  /** This host's underlay address. */
  local: string;
  /** Underlay addresses this host's vxlan device copies broadcasts to (segment floodTo). */
  floodTo: string[];
  members: SegmentMember[];
}

/** The member's addresses its FdbEntry publishes on every member host (ARP/ND suppression). */
export const memberNeighbours = (m: SegmentMember): string[] => [
  ...m.ipv4,
  ...(m.ipv6 ?? []),
];

export const vxlanDeviceName = (segment: string): string => `vx-${segment}`;

/** The hosts of a segment: its explicit list, else the hosts of its VMs (in config order). */
export function segmentHosts(
  seg: SegmentSpec,
  vms: readonly VmSpec[],
): string[] {
  return (
    seg.hosts ?? [
      ...new Set(vms.filter((v) => v.segment === seg.name).map((v) => v.host)),
    ]
  );
}

/**
 * The hosts `host` copies the segment's broadcasts to: a star around the segment's floodTo hosts.
 * A listed host floods to every other member, any other member to the listed hosts only; frames
 * arriving over VXLAN are never sent back out of it, so nothing loops.
 */
export function floodTargets(
  host: string,
  seg: SegmentSpec,
  vms: readonly VmSpec[],
): string[] {
  const hubs = seg.floodTo ?? [];
  const targets = hubs.includes(host) ? segmentHosts(seg, vms) : hubs;
  return targets.filter((h) => h !== host);
}

/** The segments `host` belongs to, with every member VM; underlay maps host name → address. */
export function segmentsForHost(
  host: string,
  segments: readonly SegmentSpec[],
  vms: readonly VmSpec[],
  underlay: ReadonlyMap<string, string>,
): HostSegment[] {
  return segments
    .filter((seg) => segmentHosts(seg, vms).includes(host))
    .map((seg) => ({
      segment: seg,
      device: vxlanDeviceName(seg.name),
      local: underlay.get(host)!,
      floodTo: floodTargets(host, seg, vms).map((h) => underlay.get(h)!),
      members: vms
        .filter((v) => v.segment === seg.name)
        .map((v) => ({
          vm: v.name,
          host: v.host,
          mac: v.mac,
          ipv4: bareAddresses(v.ipv4),
          ...(v.ipv6.length > 0 ? { ipv6: bareAddresses(v.ipv6) } : {}),
          port: bridgePort(v),
          underlay: underlay.get(v.host)!,
          managedFdb: v.managedFdb,
          attachment: v.attachment,
        })),
    }));
}

/** A VM's component as the segment sees it: its resources (a local entry waits for them). */
export type VmComponent = pulumi.ComponentResource & {
  readonly resources: pulumi.Resource[];
};

export interface SegmentArgs {
  hostName: string;
  /** The host's topology component and its name (the VMs' components are its children). */
  topology: pulumi.Resource;
  topologyName: string;
  hostPlan: HostPlan;
  plan: HostSegment;
  /** The segment bridge's resource (the vxlan device joins it). */
  bridge?: pulumi.Resource;
  /** This host's VM components by VM name (local entries wait for the VM's port). */
  localVms: ReadonlyMap<string, VmComponent>;
}

/**
 * Where a member's entry lives on this host, and the names it had in other configurations, so
 * that a VM joining, leaving or moving never creates an entry beside one the host already has
 * (FdbEntry refuses a static entry it does not own). A local managedFdb VM's entry is its own
 * `<vm>-fdb` under its VM component, segment or not: leaving the segment, or the segment leaving
 * the config, is an in-place update of it. Any other member's entry is `<segment end>-<vm>`.
 */
function memberEntry(
  end: SegmentEnd,
  name: string,
  args: SegmentArgs,
  m: SegmentMember,
  vx: pulumi.Resource,
): { name: string; opts: pulumi.CustomResourceOptions } {
  const vmName = vmComponentName(args.topologyName, m.vm);
  const segmentName = `${name}-${m.vm}`;
  const vm = m.host === args.hostName ? args.localVms.get(m.vm) : undefined;
  if (vm && m.managedFdb)
    return {
      name: ownFdbEntryName(vmName),
      opts: {
        parent: vm,
        dependsOn: vm.resources,
        aliases: [{ name: segmentName, parent: end }], // segment entry before
      },
    };
  // A local VM without managedFdb had its own entry before when it had managedFdb; a remote VM
  // had it when it was local here (the move from this host is then an update of that entry).
  const formerVm: pulumi.Input<string> | pulumi.Resource | undefined =
    vm ??
    (m.host !== args.hostName
      ? pulumi.createUrn(vmName, ATTACHMENT_TYPES[m.attachment], args.topology)
      : undefined);
  return {
    name: segmentName,
    opts: {
      parent: end,
      // A local entry waits for the VM's port, a remote one for the vxlan device it points at.
      dependsOn: vm ? vm.resources : [vx],
      aliases: formerVm
        ? [{ name: ownFdbEntryName(vmName), parent: formerVm }]
        : [],
    },
  };
}

/** One host's end of a segment: hostnet:topology:Segment named `<host>-seg-<segment>`. */
export class SegmentEnd extends pulumi.ComponentResource {
  readonly resources: pulumi.Resource[] = [];
  constructor(
    name: string,
    args: SegmentArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hostnet:topology:Segment", name, {}, opts);
    const { hostPlan, plan } = args;
    const seg = plan.segment;
    const vx = hostPlan.make(
      "VxlanDevice",
      `${name}-vx`,
      {
        name: plan.device,
        vni: seg.vni,
        local: plan.local,
        port: seg.port,
        bridge: seg.bridge,
        mtu: seg.mtu,
        // Only when set: devices of stacks without a flood list keep their recorded inputs.
        ...(plan.floodTo.length > 0 ? { floodTo: plan.floodTo } : {}),
      },
      { parent: this, dependsOn: args.bridge ? [args.bridge] : [] },
    );
    this.resources.push(vx);
    for (const m of plan.members) {
      const local = m.host === args.hostName;
      const entry = memberEntry(this, name, args, m, vx);
      this.resources.push(
        hostPlan.make(
          "FdbEntry",
          entry.name,
          {
            bridge: seg.bridge,
            mac: m.mac,
            neighbours: memberNeighbours(m),
            ...(local
              ? { port: m.port }
              : {
                  port: plan.device,
                  remote: { dst: m.underlay, vni: seg.vni },
                }),
          },
          entry.opts,
        ),
      );
    }
    this.registerOutputs({});
  }
}
