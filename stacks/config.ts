// Stack config (Pulumi.<env>.yaml, namespace `hostnet:`) validated as one document: every problem
// is reported with its path in one message, before any resource is registered, so a bad config
// fails preview and nothing is applied.
import * as fs from "fs";
import * as path from "path";
import { RunError } from "@pulumi/pulumi";
import { z } from "zod";
import { segmentHosts } from "../components/segment";
import { BootRestoreProps } from "../providers/kinds/bootRestore";
import { repeats } from "../providers/kinds/lists";
import {
  BridgeSpec,
  onHostBridge,
  SegmentSpec,
  VmSpec,
  vmKey,
} from "../components/spec";
import { formatIssues, IfName, Ipv4Address } from "../providers/schema";
import { ConnectionFields, ConnectionInput } from "../providers/transport";

/**
 * Keep a boot restore script of the host's topology on the host (README: Persistence): true for
 * the default places, or where to put the script and its systemd unit.
 */
export const PersistOption = z.union([
  z.boolean(),
  BootRestoreProps.pick({ path: true, unit: true, unitDir: true })
    .partial()
    .strict(),
]);
export type PersistOption = z.infer<typeof PersistOption>;

/** A host of the fleet: its connection fields come from the transport's schema (one definition). */
export const HostEntry = ConnectionFields.pick({
  port: true,
  user: true,
  sudo: true,
  hostKey: true,
  knownHostsFile: true,
  confirmTimeoutSeconds: true,
})
  .extend({
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
        "host name: letters, digits, '_', '.', '-' (it names resources)",
      ),
    address: ConnectionFields.shape.host,
    /** Source address of this host's VXLAN segments; default: address (which must then be IPv4). */
    underlay: Ipv4Address.optional(),
    persist: PersistOption.optional(),
  })
  .strict();
export type HostEntry = z.infer<typeof HostEntry>;

/**
 * Where the runner finds the SSH key, stored in each resource's state instead of the key itself:
 * a key file on the runner, or the name of a stack config secret (providers/transport/keySource.ts).
 */
export type KeyRef =
  | Required<Pick<ConnectionInput, "privateKeyFile">>
  | Required<Pick<ConnectionInput, "privateKeyConfig">>;

/**
 * The SSH connection to a configured host: one mapping, for the stack program and the tools.
 * `key` is a KeyRef, or the key text (stored encrypted with every resource: for tools, and for
 * programs written before key references).
 */
export function hostConnection(
  h: HostEntry,
  key: string | KeyRef,
): ConnectionInput {
  return {
    host: h.address,
    port: h.port,
    user: h.user,
    sudo: h.sudo,
    hostKey: h.hostKey,
    knownHostsFile: h.knownHostsFile,
    confirmTimeoutSeconds: h.confirmTimeoutSeconds,
    ...(typeof key === "string" ? { privateKey: key } : key),
  };
}

const BatchSize = z.union([
  z.number().int().min(1),
  z
    .string()
    .regex(
      /^([1-9][0-9]?|100)%$/,
      'a batch size is a count or a percentage like "20%"',
    ),
]);

export const Rollout = z
  .object({
    /** Like Ansible's serial: [1, 5, "20%"]: canary first, then sizes; the last size repeats. */
    serial: z.array(BatchSize).min(1).default([1, "100%"]),
    maxFailures: z.number().int().min(0).default(0),
    healthCheck: z.boolean().default(true),
  })
  .strict();
export type Rollout = z.infer<typeof Rollout>;

export const StackConfig = z
  .object({
    /** "lab": take hosts, host keys and the client key from the lab inventory (npm run lab). */
    inventory: z.literal("lab").optional(),
    hosts: z.array(HostEntry).default([]),
    bridges: z.array(BridgeSpec).default([]),
    /** Lab only: veth pairs standing in for NICs (e.g. as macvlan lower devices), on every host. */
    simulatedNics: z.array(IfName).default([]),
    vms: z.array(VmSpec).default([]),
    /** L2 segments spanning hosts over VXLAN (README: Segments). */
    segments: z.array(SegmentSpec).default([]),
    rollout: Rollout.default({
      serial: [1, "100%"],
      maxFailures: 0,
      healthCheck: true,
    }),
    /** Set by the fleet runner on a host stack (`<env>.<host>`): deploy only this host, no gate (the runner judges). */
    onlyHost: z.string().optional(),
  })
  .strict();
export type StackConfig = z.infer<typeof StackConfig>;

/** Cross-references zod cannot see: unknown hosts/bridges, duplicates. */
export function crossCheck(c: StackConfig): string[] {
  const problems: string[] = [];
  const hostNames = new Set(c.hosts.map((h) => h.name));
  const bridges = new Set(c.bridges.map((b) => b.name));
  const seen = {
    name: new Map<string, number>(),
    mac: new Map<string, number>(),
    ip: new Map<string, number>(),
  };
  const dup = (
    kind: keyof typeof seen,
    key: string,
    i: number,
    field: string,
  ) => {
    const first = seen[kind].get(key);
    if (first !== undefined)
      problems.push(
        `vms[${i}].${field}: ${key} is already used by vms[${first}]`,
      );
    else seen[kind].set(key, i);
  };
  c.hosts.forEach((h, i) => {
    if (c.hosts.findIndex((x) => x.name === h.name) !== i)
      problems.push(`hosts[${i}].name: duplicate host name ${h.name}`);
  });
  // Interface and namespace names come from each VM's key: two VMs of one host must not share one.
  const keys = new Map<string, number>();
  c.vms.forEach((vm, i) => {
    const key = vmKey(vm);
    const first = keys.get(`${vm.host}/${key}`);
    if (first === undefined) keys.set(`${vm.host}/${key}`, i);
    else
      problems.push(
        `vms[${i}].${vm.ifname ? "ifname" : "name"}: its interface names (hv-${key}, vm-${key}, ...) are those of vms[${first}] (${c.vms[first].name}) on host ${vm.host}; give one of them another ifname`,
      );
  });
  if (c.onlyHost !== undefined && !hostNames.has(c.onlyHost))
    problems.push(
      `onlyHost: no host named ${c.onlyHost} (hosts: ${[...hostNames].join(", ") || "none"})`,
    );
  c.vms.forEach((vm, i) => {
    if (!hostNames.has(vm.host))
      problems.push(
        `vms[${i}].host: no host named ${vm.host} (hosts: ${[...hostNames].join(", ") || "none"})`,
      );
    const needsBridge = onHostBridge(vm);
    if (needsBridge && !vm.bridge)
      problems.push(`vms[${i}].bridge: a ${vm.attachment} VM needs a bridge`);
    if (needsBridge && vm.bridge && !bridges.has(vm.bridge))
      problems.push(
        `vms[${i}].bridge: no bridge named ${vm.bridge} in bridges`,
      );
    if (vm.attachment === "macvlan" && !vm.lower)
      problems.push(`vms[${i}].lower: a macvlan VM needs its lower device`);
    if (vm.managedFdb && !needsBridge)
      problems.push(
        `vms[${i}].managedFdb: only bridged and isolated-netns VMs sit on a host bridge`,
      );
    if (vm.arpSuppress && !vm.managedFdb)
      problems.push(
        `vms[${i}].arpSuppress: ARP suppression needs managedFdb: true (the bridge must know the VM's MAC)`,
      );
    dup("name", vm.name, i, "name");
    dup("mac", vm.mac, i, "mac");
    vm.ipv4.forEach((ip, k) => dup("ip", ip.split("/")[0], i, `ipv4[${k}]`));
    // Canonical already (GuestIpv6Cidr), so 2001:DB8::1 and 2001:db8:0::1 collide.
    vm.ipv6.forEach((ip, k) => dup("ip", ip.split("/")[0], i, `ipv6[${k}]`));
  });
  problems.push(...segmentProblems(c));
  return problems;
}

const IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/;

/** The underlay address a host's vxlan devices send from. */
export function underlayOf(h: HostEntry): string | undefined {
  return h.underlay ?? (IPV4.test(h.address) ? h.address : undefined);
}

/** Segments: unique names and VNIs, known bridges and hosts, VMs that can join, IPv4 underlays. */
function segmentProblems(c: StackConfig): string[] {
  const problems: string[] = [];
  const segs = c.segments ?? [];
  const bridges = new Set(c.bridges.map((b) => b.name));
  segs.forEach((s, i) => {
    const first = segs.findIndex((x) => x.name === s.name);
    if (first !== i)
      problems.push(
        `segments[${i}].name: ${s.name} is already used by segments[${first}]`,
      );
    const sameVni = segs.findIndex((x) => x.vni === s.vni && x.port === s.port);
    if (sameVni !== i)
      problems.push(
        `segments[${i}].vni: ${s.vni} is already used by segments[${sameVni}] (${segs[sameVni].name}); one VNI is one segment`,
      );
    if (!bridges.has(s.bridge))
      problems.push(
        `segments[${i}].bridge: no bridge named ${s.bridge} in bridges`,
      );
    const sameBridge = segs.findIndex((x) => x.bridge === s.bridge);
    if (sameBridge !== i)
      problems.push(
        `segments[${i}].bridge: ${s.bridge} already carries segment ${segs[sameBridge].name}; two segments on one bridge would be one broadcast domain: give each segment its own bridge`,
      );
    (s.hosts ?? []).forEach((h, k) => {
      const host = c.hosts.find((x) => x.name === h);
      if (!host)
        problems.push(`segments[${i}].hosts[${k}]: no host named ${h}`);
    });
    const members = segmentHosts(s, c.vms);
    const again = repeats(s.floodTo ?? []);
    (s.floodTo ?? []).forEach((h, k) => {
      if (!members.includes(h))
        problems.push(
          `segments[${i}].floodTo[${k}]: ${h} is not a host of segment ${s.name} (its hosts: ${members.join(", ") || "none"}); list a host that has a VM of the segment or is in its hosts`,
        );
      else if (again.has(k))
        problems.push(`segments[${i}].floodTo[${k}]: ${h} is listed twice`);
    });
    for (const h of members) {
      const k = c.hosts.findIndex((x) => x.name === h);
      if (k >= 0 && underlayOf(c.hosts[k]) === undefined) {
        problems.push(
          `hosts[${k}].underlay: host ${h} is in segment ${s.name} but its address ${c.hosts[k].address} is not an IPv4 address; set underlay to the address its VXLAN traffic leaves from`,
        );
      }
    }
  });
  c.vms.forEach((vm, i) => {
    if (vm.segment === undefined) return;
    const s = segs.find((x) => x.name === vm.segment);
    if (!s)
      return problems.push(
        `vms[${i}].segment: no segment named ${vm.segment} in segments (segments: ${segs.map((x) => x.name).join(", ") || "none"})`,
      );
    if (!onHostBridge(vm))
      problems.push(
        `vms[${i}].segment: only bridged and isolated-netns VMs sit on a segment's bridge (this VM is ${vm.attachment})`,
      );
    else if (vm.bridge !== s.bridge)
      problems.push(
        `vms[${i}].bridge: segment ${s.name} is on bridge ${s.bridge}, but the VM is on ${vm.bridge}; put the VM on ${s.bridge}`,
      );
    if (s.hosts && !s.hosts.includes(vm.host))
      problems.push(
        `vms[${i}].host: ${vm.host} is not in segments[${segs.indexOf(s)}].hosts (${s.hosts.join(", ")}); add it there`,
      );
    if (vm.arpSuppress) {
      problems.push(
        `vms[${i}].arpSuppress: a segment VM must not have neigh_suppress on its own port (the bridge then never answers its ARP requests, so remote VMs are unreachable). The segment suppresses its ARP already: its requests are answered at its port (the bridge's arpAnswer) and on the vxlan port. Remove arpSuppress`,
      );
    }
  });
  return problems;
}

/**
 * A RunError, so the SDK prints only the message (the problems), not a JavaScript stack trace;
 * HOSTNET_DEBUG=1 appends the trace for whoever debugs hostnet itself.
 */
export class StackConfigError extends RunError {
  constructor(readonly problems: string[]) {
    super(
      `stack config has ${problems.length} problem(s); nothing was applied:\n  - ${problems.join("\n  - ")}`,
    );
    this.name = "StackConfigError";
    if (process.env.HOSTNET_DEBUG === "1")
      this.message += `\n${(this.stack ?? "").split("\n").slice(1).join("\n")}`;
  }
}

const PROJECT_ROOT = path.resolve(__dirname, "..", "..");

export interface LabInventory {
  privateKeyPath: string;
  hosts: Array<{
    name: string;
    address: string;
    port: number;
    hostKey: string;
  }>;
}

/**
 * The directory of this checkout's lab number HOSTNET_LAB_ID (scripts/lab.sh): .hostnet/lab for
 * lab 0 (the default), .hostnet/lab-J for lab J, so several labs (test lanes) share one checkout.
 */
export function labDir(env: NodeJS.ProcessEnv = process.env): string {
  const id = env.HOSTNET_LAB_ID ?? "0";
  if (!/^[0-9]$/.test(id))
    throw new StackConfigError([
      `HOSTNET_LAB_ID: must be one digit 0-9 (the lab number of scripts/lab.sh), got '${id}'`,
    ]);
  return path.join(PROJECT_ROOT, ".hostnet", id === "0" ? "lab" : `lab-${id}`);
}

export function readLabInventory(): LabInventory {
  const file = path.join(labDir(), "inventory.json");
  if (!fs.existsSync(file))
    throw new StackConfigError([
      `inventory: the lab is not up (${file} missing): run 'npm run lab -- up 2'`,
    ]);
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

/** Parse and check raw config values (from pulumi.Config) into one typed StackConfig, or throw all problems. */
export function parseStackConfig(raw: Record<string, unknown>): StackConfig {
  const r = StackConfig.safeParse(raw);
  if (!r.success) throw new StackConfigError(formatIssues(r.error));
  let config = r.data;
  if (config.inventory === "lab") {
    const inv = readLabInventory();
    const labHosts = inv.hosts.map((h) =>
      HostEntry.parse({
        name: h.name,
        address: h.address,
        port: h.port,
        hostKey: h.hostKey,
      }),
    );
    config = { ...config, hosts: [...labHosts, ...config.hosts] };
  }
  const problems = crossCheck(config);
  if (problems.length > 0) throw new StackConfigError(problems);
  return config;
}
