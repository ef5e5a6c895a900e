// FdbEntry's pure planner (kinds/plan.ts): what the namespace holds of one entry (the bridge's
// entry, the underlay destination on a vxlan port, the ARP-suppression neighbours, strangers on an
// exclusive port) and the steps that make it match the props. Create, update, converging an own
// leftover, delete and the boot restore script (plan(props, undefined)) all come from here.
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import type { FdbRow, HostSnapshot, Link } from "../../state";
import { canonicalAddress } from "../../schema";
import { batchLine } from "../../transport";
import type { Planner, Step } from "../plan";
import { FdbEntryProps, RemoteDst, where } from "./schema";

type P = FdbEntryProps;

/** An underlay destination ("self" entry of a vxlan port) of this MAC; vni resolved to the device's. */
export interface RemoteRow {
  dev: string;
  dst: string;
  vni?: number;
}

export interface FdbObserved {
  /** The bridge's static (or kernel-permanent) entry for (mac, vlan), wherever it points. */
  row?: FdbRow;
  /** The bridge learned (mac, vlan): its cache, not anyone's configuration; a create takes it over. */
  learned: boolean;
  /** The declared port. */
  port?: Link;
  /** Underlay destinations of this MAC on the bridge's ports (and on the declared port). */
  remotes: RemoteRow[];
  /** Permanent neighbours on the bridge that carry this MAC, sorted. */
  neighbours: string[];
  /**
   * Other static entries on the declared port: a MAC hijack on a managed port. The kernel's own
   * entry for the port's MAC (state permanent) is not a stranger.
   */
  strangers: FdbRow[];
  /**
   * The bridge's net.ipv6.conf.<bridge>.disable_ipv6 as a boolean; undefined when the snapshot
   * does not show it. The kernel refuses IPv6 neighbours on a device with IPv6 disabled.
   */
  bridgeIpv6Off?: boolean;
}

const NOTHING: FdbObserved = {
  learned: false,
  remotes: [],
  neighbours: [],
  strangers: [],
};

const isStatic = (r: FdbRow): boolean =>
  r.state === "static" || r.state === "permanent";

function bridgeOp(p: P, tokens: string[], what: string): HostOp {
  return {
    kind: "batch",
    tool: "bridge",
    netns: p.netns,
    lines: [batchLine(tokens)],
    what,
  };
}

function vlanTokens(vlan: number | undefined): string[] {
  return vlan === undefined ? [] : ["vlan", String(vlan)];
}

/** The bridge's entry: `fdb add|replace|del MAC dev PORT master [static] [vlan V]`. */
function entryOp(
  p: P,
  verb: "add" | "replace" | "del",
  port: string,
  what: string,
): HostOp {
  return bridgeOp(
    p,
    [
      "fdb",
      verb,
      p.mac,
      "dev",
      port,
      "master",
      ...(verb === "del" ? [] : ["static"]),
      ...vlanTokens(p.vlan),
    ],
    what,
  );
}

/** The vxlan port's own ("self") entry: where on the underlay the MAC is sent. */
function remoteSet(p: P, r: RemoteDst): HostOp {
  return bridgeOp(
    p,
    [
      "fdb",
      "replace",
      p.mac,
      "dev",
      p.port,
      "self",
      "dst",
      r.dst,
      ...(r.vni === undefined ? [] : ["vni", String(r.vni)]),
      "static",
    ],
    `send ${p.mac} through ${p.port} to ${r.dst}`,
  );
}

function remoteDel(p: P, port: string): HostOp {
  return bridgeOp(
    p,
    ["fdb", "del", p.mac, "dev", port, "self"],
    `remove the underlay destination of ${where(p)} from ${port}`,
  );
}

function neighOp(p: P, add: string[], del: string[]): HostOp {
  const lines = [
    ...add.map((ip) =>
      batchLine([
        "neigh",
        "replace",
        canonicalAddress(ip),
        "lladdr",
        p.mac,
        "dev",
        p.bridge,
        "nud",
        "permanent",
      ]),
    ),
    ...del.map((ip) =>
      batchLine(["neigh", "del", canonicalAddress(ip), "dev", p.bridge]),
    ),
  ];
  return {
    kind: "batch",
    tool: "ip",
    netns: p.netns,
    lines,
    what: `publish ARP/ND-suppression neighbours for ${where(p)}`,
  };
}

/** The bridge's entry: made (or a learned one taken over), or moved to the declared port. */
function entrySteps(p: P, o: FdbObserved): Step[] {
  const undo = entryOp(p, "del", p.port, `remove ${where(p)}`);
  if (!o.row && !o.learned)
    return [
      {
        op: entryOp(p, "add", p.port, `add ${where(p)} on port ${p.port}`),
        makes: true,
        undo,
      },
    ];
  if (!o.row) {
    const what = `turn the learned ${where(p)} into a static entry on port ${p.port}`;
    return [{ op: entryOp(p, "replace", p.port, what), undo }];
  }
  if (o.row.dev === p.port) return [];
  const from = o.row.dev;
  return [
    {
      op: entryOp(
        p,
        "replace",
        p.port,
        `move ${where(p)} from port ${from} to ${p.port}`,
      ),
      undo: entryOp(p, "replace", from, `move ${where(p)} back to ${from}`),
    },
  ];
}

/**
 * The underlay destination lives on the declared port only: a VM that moved between hosts (or to
 * another vxlan port) leaves a stale one behind, which goes.
 */
function remoteSteps(p: P, o: FdbObserved): Step[] {
  const steps: Step[] = o.remotes
    .filter((r) => !p.remote || r.dev !== p.port)
    .map((r) => ({ op: remoteDel(p, r.dev) }));
  if (!p.remote) return steps;
  const cur = o.remotes.find((r) => r.dev === p.port);
  if (
    !cur ||
    cur.dst !== p.remote.dst ||
    (p.remote.vni !== undefined && cur.vni !== p.remote.vni)
  )
    steps.push({
      op: remoteSet(p, p.remote),
      undo: cur ? undefined : remoteDel(p, p.port),
    });
  return steps;
}

/** Whether `ip` (either family) is in `list`, compared in the kernel's form, not as text. */
const listed = (list: readonly string[], ip: string): boolean =>
  list.some((x) => canonicalAddress(x) === canonicalAddress(ip));

/**
 * IPv6 neighbours need IPv6 on the bridge device. Turned on only where it is off (or unknown, as in
 * the boot restore script), without giving the bridge an address: addrgenmode none first (no
 * link-local address, so the host gets no IPv6 presence on the VMs' segment), router
 * advertisements ignored, then disable_ipv6=0. Left on at delete: other entries may rely on it.
 */
function bridgeIpv6Steps(p: P, o: FdbObserved | undefined): Step[] {
  if (!p.neighbours.some((ip) => ip.includes(":"))) return [];
  if (o?.bridgeIpv6Off === false) return [];
  const sysctl = (key: string, value: number) => [
    "sysctl",
    "-q",
    "-w",
    `net/ipv6/conf/${p.bridge}/${key}=${value}`,
  ];
  return [
    {
      op: {
        kind: "sh",
        netns: p.netns,
        commands: [
          ["ip", "link", "set", "dev", p.bridge, "addrgenmode", "none"],
          sysctl("accept_ra", 0),
          sysctl("disable_ipv6", 0),
        ],
        what: `turn IPv6 on for bridge ${p.bridge} (no address) so it can hold ND-suppression neighbours`,
      },
    },
  ];
}

/** The permanent neighbours with this MAC on the bridge are exactly the listed ones. */
function neighbourSteps(p: P, o: FdbObserved): Step[] {
  const add = p.neighbours.filter((ip) => !listed(o.neighbours, ip));
  const del = o.neighbours.filter((ip) => !listed(p.neighbours, ip));
  if (add.length === 0 && del.length === 0) return [];
  return [
    ...bridgeIpv6Steps(p, o),
    {
      op: neighOp(p, add, del),
      undo: del.length === 0 ? neighOp(p, [], add) : undefined,
    },
  ];
}

function strangerSteps(p: P, o: FdbObserved): Step[] {
  if (!p.exclusive) return [];
  return o.strangers.map((r) => ({
    op: bridgeOp(
      p,
      ["fdb", "del", r.mac, "dev", r.dev, "master", ...vlanTokens(r.vlan)],
      `remove stranger fdb entry ${r.mac} from managed port ${p.port}`,
    ),
  }));
}

export const fdbEntryPlanner: Planner<P, FdbObserved> = {
  scope: (p) => scopeOf(p.netns),

  observe(snap: HostSnapshot, p: P): FdbObserved | undefined {
    const ns = snap.namespaces[p.netns ?? ""];
    if (!ns) return undefined;
    const mine = ns.fdb.filter(
      (r) =>
        r.mac === p.mac &&
        r.master === p.bridge &&
        r.vlan === p.vlan &&
        !r.flags.includes("self"),
    );
    const row = mine.find(isStatic);
    const learned = mine.some((r) => !isStatic(r));
    const port = ns.links.find((l) => l.name === p.port);
    const onBridge = (dev: string): boolean =>
      dev === p.port ||
      ns.links.some((l) => l.name === dev && l.master === p.bridge);
    const remotes = ns.fdb
      .filter(
        (r) =>
          r.mac === p.mac &&
          r.flags.includes("self") &&
          r.dst !== undefined &&
          onBridge(r.dev),
      )
      .map((r) => ({
        dev: r.dev,
        dst: r.dst!,
        vni: r.vni ?? ns.links.find((l) => l.name === r.dev)?.vxlan?.vni,
      }));
    const neighbours = ns.neigh
      .filter((n) => n.dev === p.bridge && n.lladdr === p.mac)
      .map((n) => canonicalAddress(n.dst))
      .sort();
    const strangers = ns.fdb.filter(
      (r) =>
        r.dev === p.port &&
        r.master === p.bridge &&
        r.mac !== p.mac &&
        r.mac !== port?.mac &&
        isStatic(r) &&
        !r.flags.includes("self"),
    );
    const ipv6Off = ns.sysctls[`net.ipv6.conf.${p.bridge}.disable_ipv6`];
    const bridgeIpv6Off = ipv6Off === undefined ? undefined : ipv6Off === "1";
    const any =
      row !== undefined ||
      learned ||
      remotes.length + neighbours.length + strangers.length > 0;
    // Nothing of the entry, but the bridge's IPv6 state is known: the plan needs it.
    return any || bridgeIpv6Off !== undefined
      ? { row, learned, port, remotes, neighbours, strangers, bridgeIpv6Off }
      : undefined;
  },

  plan(p, observed): Step[] {
    const o = observed ?? NOTHING;
    return [
      ...entrySteps(p, o),
      ...remoteSteps(p, o),
      ...neighbourSteps(p, o),
      ...strangerSteps(p, o),
    ];
  },
};

/**
 * What delete removes: the underlay destination on the declared port, and, when the bridge's entry
 * is static (only that one is ours: a learned or kernel-permanent entry is left alone), the listed
 * neighbours and the entry itself.
 */
export function removal(p: P, o: FdbObserved | undefined): Step[] {
  const steps: Step[] = [];
  if (p.remote && o?.remotes.some((r) => r.dev === p.port))
    steps.push({ op: remoteDel(p, p.port) });
  if (o?.row?.state !== "static") return steps;
  const neighbours = p.neighbours.filter((ip) => listed(o.neighbours, ip));
  if (neighbours.length > 0) steps.push({ op: neighOp(p, [], neighbours) });
  const dev = o.row.dev;
  steps.push({
    op: entryOp(p, "del", dev, `delete ${where(p)} (port ${dev})`),
  });
  return steps;
}

/** The live values of the compared props (read()), or null when the bridge holds no such entry. */
export function liveProps(
  o: FdbObserved | undefined,
  p: P,
): Record<string, unknown> | null {
  if (!o?.row) return null;
  const dev = o.row.dev;
  // Exclusive: extra neighbours with this MAC show in the list, stranger fdb entries flip `exclusive`.
  const extra = p.exclusive
    ? o.neighbours.filter((ip) => !listed(p.neighbours, ip))
    : [];
  const r = p.remote ? o.remotes.find((x) => x.dev === dev) : undefined;
  return {
    bridge: p.bridge,
    port: dev,
    mac: p.mac,
    netns: p.netns,
    vlan: p.vlan,
    neighbours: [
      ...p.neighbours.filter((ip) => listed(o.neighbours, ip)),
      ...extra,
    ],
    exclusive: p.exclusive ? o.strangers.length === 0 : p.exclusive,
    remote: r
      ? { dst: r.dst, vni: p.remote?.vni === undefined ? undefined : r.vni }
      : undefined,
  };
}
