// What a topology is made of, as data: hosts, bridges and VMs with their attachment kind. These
// schemas are the single source of truth for component arguments and for stack config.
import { z } from "zod";
import {
  GuestIpv4Cidr,
  GuestIpv6Cidr,
  IfName,
  MacAddress,
  NftIdentifier,
} from "../providers/schema";
import { MACVLAN_MODES } from "../providers/kinds/macvlanPort";

/**
 * Any VM name a fleet uses (`k8s-worker-prod-017`, a UUID): interface and namespace names are
 * derived from its short key (vmKey), not from the name itself.
 */
export const VmName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    "VM name must be 1–63 characters of letters, digits, '-', '.' and '_', starting with a letter or digit",
  );

/** The key in a VM's interface and namespace names (hv-KEY, vm-KEY, ...): 15-byte kernel limit. */
export const VmIfName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,9}$/,
    "ifname must be 1–10 characters of a-z, 0-9 and '-', starting with a letter or digit (it becomes part of 15-byte interface names such as hv-<ifname>)",
  );

/** Segment names become part of the vxlan device name (vx-NAME, 15-byte limit). */
export const SegmentName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,11}$/,
    "segment name must be 1–12 characters of a-z, 0-9 and '-', starting with a letter or digit (the vxlan device is vx-NAME)",
  );

export const AttachmentKind = z.enum([
  "bridged",
  "isolated-netns",
  "macvlan",
  "routed",
]);
export type AttachmentKind = z.infer<typeof AttachmentKind>;

/** Each attachment's component type (part of its resources' URNs, so aliases can name them). */
export const ATTACHMENT_TYPES: Record<AttachmentKind, string> = {
  bridged: "hostnet:attachment:Bridged",
  "isolated-netns": "hostnet:attachment:IsolatedNetns",
  macvlan: "hostnet:attachment:Macvlan",
  routed: "hostnet:attachment:Routed",
};

/** A VM's component under its host topology, and the VM's own bridge entry under it (managedFdb). */
export const vmComponentName = (topology: string, vm: string): string =>
  `${topology}-${vm}`;
export const ownFdbEntryName = (vmComponent: string): string =>
  `${vmComponent}-fdb`;

export const FilterPolicy = z.enum(["clean-traffic", "none"]);

export const VmSpec = z
  .object({
    name: VmName,
    /** Overrides the key derived from the name for interface and namespace names (see vmKey). */
    ifname: VmIfName.optional(),
    host: z.string().min(1),
    mac: MacAddress,
    /** Addresses with prefix, e.g. 198.19.10.11/24 (routed VMs use /32 semantics regardless). */
    ipv4: z.array(GuestIpv4Cidr).min(1),
    /** IPv6 addresses with prefix, e.g. 2001:db8:10::11/64 (not link-local: the kernel makes fe80::). */
    ipv6: z.array(GuestIpv6Cidr).default([]),
    attachment: AttachmentKind,
    /** Host bridge the VM joins (bridged, isolated-netns); the lower device's bridge is not used by macvlan/routed. */
    bridge: IfName.optional(),
    /** Seed 002: learning and unicast flood off on the VM's host-bridge port plus a static fdb entry. */
    managedFdb: z.boolean().default(false),
    /** Permanent neighbour + neigh_suppress on the VM's port, so broadcast ARP for it is not flooded. */
    arpSuppress: z.boolean().default(false),
    filter: FilterPolicy.default("clean-traffic"),
    /** macvlan attachment: lower device and mode. */
    lower: IfName.optional(),
    /** The MacvlanPort modes, less source (a VM attachment lists no source MACs). */
    macvlanMode: z.enum(MACVLAN_MODES).exclude(["source"]).default("bridge"),
    /**
     * Lab/test only: stand the VM in with a "guest" namespace holding the VM's end (its MAC and
     * IPs), so traffic can be tested without QEMU. Real VMs leave this off and get a tap.
     */
    simulate: z.boolean().default(false),
    /** The multi-host L2 segment (segments[].name) the VM's bridge port belongs to. */
    segment: SegmentName.optional(),
  })
  .strict();
export type VmSpec = z.infer<typeof VmSpec>;

export const BridgeSpec = z
  .object({
    name: IfName,
    stp: z.boolean().default(false),
    mtu: z.number().int().min(68).max(65535).optional(),
    /** Fixed bridge MAC; default: derived from host and bridge name (see stableBridgeMac). */
    mac: MacAddress.optional(),
    uplink: IfName.optional(),
    /** nft table used for the per-host FilterChain of bridged VMs. */
    filterTable: NftIdentifier.default("hostnet"),
    /**
     * Answer broadcast ARP requests from this bridge's VMs for the addresses it is told about
     * (its segment's members, its arpSuppress VMs) at the asking VM's port, before the bridge
     * (ArpAnswer, components/arpAnswer.ts), so no such request is cloned to the bridge's ports.
     * false leaves it to the bridge's neigh_suppress.
     */
    arpAnswer: z.boolean().default(true),
  })
  .strict();
export type BridgeSpec = z.infer<typeof BridgeSpec>;

const VNI_RANGE = "vni must be an integer 1–16777215 (24 bits)";

/**
 * One L2 segment across hosts (issue 15): on every member host a vxlan device (vx-NAME) on `bridge`,
 * and for every VM of the segment a static fdb entry + permanent neighbours, pointing at the VM's
 * port where it is local and at the VM's host through the underlay elsewhere.
 */
export const SegmentSpec = z
  .object({
    name: SegmentName,
    vni: z.number().int(VNI_RANGE).min(1, VNI_RANGE).max(16777215, VNI_RANGE),
    /** Host bridge (in bridges) the segment's VMs and vxlan devices sit on. */
    bridge: IfName,
    /** Member hosts; default: the hosts of the segment's VMs. */
    hosts: z.array(z.string().min(1)).optional(),
    /** MTU of the vxlan devices (underlay MTU − 50 avoids fragmenting the underlay). */
    mtu: z.number().int().min(68).max(65535).optional(),
    /** UDP port of the underlay. */
    port: z.number().int().min(1).max(65535).default(4789),
    /**
     * Head-end replication around these member hosts (e.g. where the DHCP server or relay runs):
     * broadcasts and multicasts from every other member host are copied to them, and theirs to
     * every member host. Default: none cross the underlay (known ARP is answered locally).
     */
    floodTo: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type SegmentSpec = z.infer<typeof SegmentSpec>;

/**
 * A bridge left to itself takes the lowest MAC of its ports, so its MAC changes whenever a VM
 * comes or goes — and the kernel then flushes the bridge's neighbour table, permanent ARP
 * suppression entries included. A fixed, locally administered MAC per (host, bridge) avoids both.
 */
export function stableBridgeMac(host: string, bridge: string): string {
  const h = require("crypto")
    .createHash("sha256")
    .update(`${host}/${bridge}`)
    .digest();
  const bytes = [0x02, h[0], h[1], h[2], h[3], h[4]];
  return bytes.map((b: number) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * The key of a VM's interface and namespace names: its `ifname` if set; else the name itself when
 * it is a short key already (so existing stacks keep their names); else a readable prefix of the
 * name and a stable hash of all of it, e.g. `k8s-worker-prod-017` -> `k8s-` + 5 hex digits.
 */
export function vmKey(vm: string | { name: string; ifname?: string }): string {
  const { name, ifname } =
    typeof vm === "string" ? { name: vm, ifname: undefined } : vm;
  if (ifname) return ifname;
  if (VmIfName.safeParse(name).success) return name;
  const readable =
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, "-")
      .slice(0, 4)
      .replace(/-+$/, "") || "vm";
  const hash = require("crypto")
    .createHash("sha256")
    .update(name)
    .digest("hex")
    .slice(0, 5);
  return `${readable}-${hash}`;
}

/** Names derived from a VM (its name, or name and ifname), all within the kernel's 15-byte limit. */
export function derivedNames(
  vmOrName: string | { name: string; ifname?: string },
) {
  const vm = vmKey(vmOrName);
  return {
    netns: `vm-${vm}`,
    guestNetns: `guest-${vm}`,
    hostPort: `hv-${vm}`, // host end of the veth (isolated-netns, routed)
    innerBridge: "br0",
    innerUplink: "up0",
    tap: `tap-${vm}`, // bridged: tap on the host bridge
    innerTap: "tap0", // isolated-netns: the VM's tap inside its namespace
    guestIf: "eth0", // simulated VM's interface inside its guest namespace
    macvlan: `mv-${vm}`,
  };
}

/** Bridged and isolated-netns VMs have a port on a host bridge; macvlan and routed VMs do not. */
export const onHostBridge = (vm: Pick<VmSpec, "attachment">): boolean =>
  vm.attachment === "bridged" || vm.attachment === "isolated-netns";

/** A bridged or isolated-netns VM's port on its host bridge (the tap, or the host end of its veth). */
export const bridgePort = (vm: VmSpec): string =>
  vm.attachment === "bridged"
    ? derivedNames(vm).tap
    : derivedNames(vm).hostPort;

/** The VM's addresses without prefix. */
export const bareAddresses = (cidrs: readonly string[]): string[] =>
  cidrs.map((c) => c.split("/")[0]);

/**
 * The VM's addresses the bridge answers ARP and neighbour solicitations for (ARP/ND suppression):
 * IPv4 then IPv6, without prefix. A VM without IPv6 gets exactly the list of old.
 */
export const suppressedNeighbours = (vm: {
  ipv4: readonly string[];
  ipv6: readonly string[];
}): string[] => bareAddresses([...vm.ipv4, ...vm.ipv6]);

/**
 * Namespace sysctls where the VM's L3 lives (a simulated guest, a routed VM's namespace): IPv6 on
 * only when the VM has IPv6 addresses. A VM without IPv6 gets exactly the props it always had.
 */
export function l3NamespaceSysctls(vm: VmSpec): Record<string, string> {
  return vm.ipv6.length === 0
    ? { "net.ipv6.conf.all.disable_ipv6": "1" }
    : {
        "net.ipv6.conf.all.disable_ipv6": "0",
        "net.ipv6.conf.default.disable_ipv6": "0",
      };
}

/**
 * The VM's interface addresses in a simulated guest: IPv4, then IPv6 added with `nodad` (usable at
 * once, so tests need not wait out duplicate address detection). No IPv6: the props of old.
 */
export function guestAddressing(vm: VmSpec): {
  addresses: string[];
  nodad?: true;
} {
  return vm.ipv6.length === 0
    ? { addresses: vm.ipv4 }
    : { addresses: [...vm.ipv4, ...vm.ipv6], nodad: true };
}

/** A clean-traffic FilterChain port's address fields: IPv6 passed (and allowed) only when the VM has it. */
export function filterAddresses(vm: VmSpec): {
  ipv4: string[];
  ipv6?: string[];
  allowIpv6?: true;
} {
  const ipv4 = bareAddresses(vm.ipv4);
  return vm.ipv6.length === 0
    ? { ipv4 }
    : { ipv4, ipv6: bareAddresses(vm.ipv6), allowIpv6: true };
}
