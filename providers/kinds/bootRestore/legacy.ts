// TEMPORARY: restore steps of the kinds that do not have a planner (kinds/plan.ts) yet. Each entry
// goes away when its kind's planner lands; restoreScript.ts prefers a kind's planner when it has one.
import type { HostOp } from "../../host";
import { ownerMark } from "../../state";
import { Argv } from "../../transport";
import { ownedScript } from "../filterChain";
import type { FilterChainProps } from "../filterChain";
import type { FdbEntryProps } from "../fdbEntry";
import type { HostBridgeProps } from "../hostBridge";
import type { MacvlanPortProps } from "../macvlanPort";
import { portFlagLines } from "../portFlags";
import type { Step } from "../plan";
import type { TapPortProps } from "../tapPort";
import type { VethEnd, VethLinkProps } from "../vethLink";
import type { VmNetnsProps } from "../vmNetns";

const sh = (netns: string | undefined, argv: Argv, makes = false): Step => ({
  op: { kind: "sh", netns, commands: [argv], what: argv.join(" ") } as HostOp,
  ...(makes ? { makes } : {}),
});
const bridgeFlags = (netns: string | undefined, port: string, flags: any) =>
  portFlagLines(port, flags).map((l) => sh(netns, ["bridge", ...l.split(" ")]));
const flag = (b: boolean): string => (b ? "1" : "0");

function vmNetns(ns: VmNetnsProps, mark: string): Step[] {
  return [
    sh(undefined, ["ip", "netns", "add", ns.name], true),
    sh(ns.name, [
      "ip",
      "link",
      "set",
      "lo",
      "alias",
      mark,
      ns.loopbackUp ? "up" : "down",
    ]),
    ...Object.entries(ns.sysctls).map(([k, v]) =>
      sh(ns.name, ["sysctl", "-q", "-w", `${k}=${v}`]),
    ),
  ];
}

function hostBridge(b: HostBridgeProps, mark: string): Step[] {
  const opts: string[] = ["stp_state", flag(b.stp)];
  if (b.forwardDelay !== undefined)
    opts.push("forward_delay", String(b.forwardDelay));
  if (b.ageingTime !== undefined)
    opts.push("ageing_time", String(b.ageingTime));
  if (b.mcastSnooping !== undefined)
    opts.push("mcast_snooping", flag(b.mcastSnooping));
  if (b.vlanFiltering !== undefined)
    opts.push("vlan_filtering", flag(b.vlanFiltering));
  const link = [
    ...(b.mtu !== undefined ? ["mtu", String(b.mtu)] : []),
    ...(b.mac !== undefined ? ["address", b.mac] : []),
  ];
  return [
    sh(b.netns, ["ip", "link", "add", b.name, "type", "bridge"], true),
    sh(b.netns, [
      "ip",
      "link",
      "set",
      "dev",
      b.name,
      "type",
      "bridge",
      ...opts,
    ]),
    sh(b.netns, ["ip", "link", "set", "dev", b.name, "alias", mark, ...link]),
    ...(b.uplink
      ? [sh(b.netns, ["ip", "link", "set", "dev", b.uplink, "master", b.name])]
      : []),
    sh(b.netns, ["ip", "link", "set", "dev", b.name, b.up ? "up" : "down"]),
  ];
}

function vethEnd(e: VethEnd, mtu: number | undefined, mark: string): Step[] {
  const set = [
    ...(mtu !== undefined ? ["mtu", String(mtu)] : []),
    ...(e.mac !== undefined ? ["address", e.mac] : []),
    ...(e.master !== undefined ? ["master", e.master] : []),
  ];
  const steps = [
    sh(e.netns, ["ip", "link", "set", "dev", e.name, "alias", mark, ...set]),
    ...e.addresses.map((a) =>
      sh(e.netns, ["ip", "addr", "replace", a, "dev", e.name]),
    ),
    ...(e.master !== undefined
      ? bridgeFlags(e.netns, e.name, e.portFlags)
      : []),
    sh(e.netns, ["ip", "link", "set", "dev", e.name, e.up ? "up" : "down"]),
  ];
  if (e.up)
    for (const r of e.routes)
      steps.push(
        sh(e.netns, [
          "ip",
          "route",
          "replace",
          r.to,
          ...(r.via ? ["via", r.via] : []),
          "dev",
          e.name,
        ]),
      );
  for (const [prop, key] of [
    ["proxyArp", "proxy_arp"],
    ["forwarding", "forwarding"],
  ] as const)
    if (e[prop] !== undefined)
      steps.push(
        sh(e.netns, [
          "sysctl",
          "-q",
          "-w",
          `net/ipv4/conf/${e.name}/${key}=${flag(e[prop]!)}`,
        ]),
      );
  return steps;
}

function vethLink(v: VethLinkProps, mark: string): Step[] {
  const inNs = (e: VethEnd) => (e.netns ? ["netns", e.netns] : []);
  return [
    sh(
      undefined,
      [
        "ip",
        "link",
        "add",
        v.a.name,
        ...inNs(v.a),
        "type",
        "veth",
        "peer",
        "name",
        v.b.name,
        ...inNs(v.b),
      ],
      true,
    ),
    ...vethEnd(v.a, v.mtu, mark),
    ...vethEnd(v.b, v.mtu, mark),
  ];
}

function tapPort(t: TapPortProps, mark: string): Step[] {
  const create = ["ip", "tuntap", "add", "dev", t.name, "mode", "tap"];
  if (t.owner !== undefined) create.push("user", String(t.owner));
  if (t.group !== undefined) create.push("group", String(t.group));
  if (t.multiQueue) create.push("multi_queue");
  if (t.vnetHdr) create.push("vnet_hdr");
  const set = [
    ...(t.mtu !== undefined ? ["mtu", String(t.mtu)] : []),
    ...(t.mac !== undefined ? ["address", t.mac] : []),
    ...(t.master !== undefined ? ["master", t.master] : []),
  ];
  return [
    sh(t.netns, create, true),
    sh(t.netns, ["ip", "link", "set", "dev", t.name, "alias", mark, ...set]),
    ...(t.master !== undefined
      ? bridgeFlags(t.netns, t.name, t.portFlags)
      : []),
    sh(t.netns, ["ip", "link", "set", "dev", t.name, t.up ? "up" : "down"]),
  ];
}

function fdbEntry(f: FdbEntryProps): Step[] {
  const vlan = f.vlan !== undefined ? ["vlan", String(f.vlan)] : [];
  return [
    sh(f.netns, [
      "bridge",
      "fdb",
      "replace",
      f.mac,
      "dev",
      f.port,
      "master",
      "static",
      ...vlan,
    ]),
    ...f.neighbours.map((ip) =>
      sh(f.netns, [
        "ip",
        "neigh",
        "replace",
        ip,
        "lladdr",
        f.mac,
        "dev",
        f.bridge,
        "nud",
        "permanent",
      ]),
    ),
  ];
}

function filterChain(f: FilterChainProps, mark: string): Step[] {
  const { script } = ownedScript(f, mark);
  return [
    {
      op: {
        kind: "nft",
        netns: f.netns,
        script,
        what: `load nft table ${f.table}`,
      },
    },
  ];
}

function macvlanPort(p: MacvlanPortProps, mark: string): Step[] {
  const ns = p.netns ?? p.lowerNetns;
  const modes = [
    "type",
    p.type,
    "mode",
    p.mode,
    ...(p.mode === "source" ? ["macaddr", "set", ...(p.sourceMacs ?? [])] : []),
  ];
  const attrs = [
    ...(p.mac !== undefined ? ["address", p.mac] : []),
    ...(p.mtu !== undefined ? ["mtu", String(p.mtu)] : []),
  ];
  // Made straight in its namespace, so a second run finds it there ("File exists") and makes no other.
  const into = ns !== p.lowerNetns && ns !== undefined ? ["netns", ns] : [];
  return [
    sh(
      p.lowerNetns,
      ["ip", "link", "add", "link", p.lower, "name", p.name, ...into, ...modes],
      true,
    ),
    sh(ns, ["ip", "link", "set", p.name, "alias", mark, ...attrs]),
    ...p.addresses.map((a) =>
      sh(ns, ["ip", "addr", "replace", a, "dev", p.name]),
    ),
    ...(p.up ? [sh(ns, ["ip", "link", "set", p.name, "up"])] : []),
  ];
}

export const LEGACY_RESTORE: Record<
  string,
  (p: any, owner: string | undefined) => Step[] | undefined
> = {
  VmNetns: (p, o) => vmNetns(p, ownerMark(o)),
  HostBridge: (p, o) => hostBridge(p, ownerMark(o)),
  VethLink: (p, o) => vethLink(p, ownerMark(o)),
  TapPort: (p, o) => tapPort(p, ownerMark(o)),
  FdbEntry: (p) => (p.remote ? undefined : fdbEntry(p)),
  FilterChain: (p, o) => filterChain(p, ownerMark(o)),
  MacvlanPort: (p, o) => macvlanPort(p, ownerMark(o)),
};
