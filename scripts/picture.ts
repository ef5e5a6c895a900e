// A picture of each host's topology (bridges, ports, namespaces, veth pairs, macvlans and their
// lower devices, routes, static fdb entries, filters), drawn by Graphviz from the live snapshot.
// `npm run picture -- [stack] [outdir] [--drift]`: --drift runs the drift gate's comparison
// (scripts/stacks.ts driftReport) and draws each drifted object red with its drifted properties.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { HostSnapshot, Link, NamespaceState } from "../providers/state";
import type { DriftItem } from "./stacks";
import type { HostEntry, KeyRef } from "../stacks/config";
import { derivedNames, vmKey, VmSpec } from "../components/spec";
import { formatIssues } from "../providers/schema";
import { z } from "zod";

const SKIP = new Set(["loopback"]);

function id(ns: string, name: string): string {
  return JSON.stringify(`${ns || "root"}/${name}`);
}

/** Routes someone put on a device (a routed VM's /32 on its host end); not the kernel's own. */
function routesVia(state: NamespaceState, dev: string): string[] {
  return state.routes
    .filter(
      (r) =>
        r.dev === dev &&
        r.protocol !== "kernel" &&
        r.type === "unicast" &&
        r.dst !== "0.0.0.0/0" &&
        r.dst !== "::/0",
    )
    .map((r) => `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}`);
}

/** Static fdb entries on a bridge port: the managed MAC table (learning off, the VM's MAC pinned). */
function staticFdb(state: NamespaceState, dev: string): string[] {
  return state.fdb
    .filter(
      (f) => f.dev === dev && f.state === "static" && !f.flags.includes("self"),
    )
    .map((f) => `fdb ${f.mac} static`);
}

function label(
  l: Link,
  state: NamespaceState,
  owner: string | undefined,
): string {
  const bits = [l.name, owner ?? "", l.kind === "device" ? "" : l.kind];
  if (l.macvlan) bits.push(`mode ${l.macvlan.mode}`);
  if (l.port && (l.port.learning === false || l.port.flood === false))
    bits.push("learning/flood off");
  if (l.port?.neighSuppress) bits.push("neigh_suppress");
  if (l.addresses.length)
    bits.push(l.addresses.filter((a) => !a.startsWith("fe80")).join(" "));
  bits.push(...staticFdb(state, l.name), ...routesVia(state, l.name));
  return bits.filter(Boolean).join("\\n");
}

function shape(l: Link): string {
  if (l.kind === "bridge")
    return 'shape=box,style="rounded,filled",fillcolor="#cfe2ff"';
  if (l.kind === "macvlan" || l.kind === "macvtap")
    return 'shape=ellipse,style=filled,fillcolor="#ffe5b4"';
  if (l.kind === "tap" || l.kind === "tun")
    return 'shape=ellipse,style=filled,fillcolor="#d1f2d1"';
  return 'shape=ellipse,style=filled,fillcolor="#f2f2f2"';
}

/** Find the other end of a veth / the lower of a macvlan. */
function peerOf(snap: HostSnapshot, ns: string, l: Link): string | undefined {
  if (l.peerName !== undefined && l.peerNetns !== undefined)
    return id(l.peerNetns, l.peerName);
  if (l.peerIndex === undefined) return undefined;
  if (l.macvlan && l.peerNetnsId !== undefined)
    return lowerElsewhere(snap, ns, l.peerIndex);
  for (const [otherNs, state] of Object.entries(snap.namespaces)) {
    const sameNs = otherNs === ns;
    if (sameNs !== (l.peerNetnsId === undefined)) continue;
    const hit = state.links.find(
      (o) =>
        o.index === l.peerIndex &&
        (o.kind !== "veth" || o.peerIndex === l.index),
    );
    if (hit) return id(otherNs, hit.name);
  }
  return undefined;
}

/**
 * A macvlan moved into another namespace names its lower device by an index in a namespace the
 * snapshot cannot always name (the root has no name in `ip netns list-id`). Lower devices are
 * normally in the root namespace: take the root's device with that index, else the only candidate.
 */
function lowerElsewhere(
  snap: HostSnapshot,
  ns: string,
  index: number,
): string | undefined {
  const hits = Object.entries(snap.namespaces).flatMap(([other, state]) =>
    other === ns
      ? []
      : state.links
          .filter((o) => o.index === index && o.kind !== "loopback")
          .map((o) => ({ other, name: o.name })),
  );
  const hit =
    hits.find((h) => h.other === "") ??
    (hits.length === 1 ? hits[0] : undefined);
  return hit && id(hit.other, hit.name);
}

function filterNote(
  ns: string,
  state: HostSnapshot["namespaces"][string],
): Array<[string, string]> {
  const items = state.nft?.nftables ?? [];
  const tables = (family: string): string[] =>
    items.flatMap((i: any) =>
      i.table && i.table.family === family ? [i.table.name] : [],
    );
  const elements = (family: string, t: string, map: string): number =>
    items
      .filter(
        (i: any) =>
          i.map?.family === family && i.map?.table === t && i.map?.name === map,
      )
      .reduce((n: number, m: any) => n + (m.map.elem?.length ?? 0), 0);
  return [
    ...tables("bridge").map(
      (t) =>
        [
          id(ns, `nft:${t}`),
          `nft bridge ${t}\\n${elements("bridge", t, "from_vm")} port(s), one vmap lookup`,
        ] as [string, string],
    ),
    // ArpAnswer: nft 1.0.6 lists no devices of a netdev chain, so the note counts the answers.
    ...tables("netdev").map(
      (t) =>
        [
          id(ns, `nft:netdev:${t}`),
          `nft netdev ${t}\\n${elements("netdev", t, "ip2mac")} ARP answer(s) at the VM ports`,
        ] as [string, string],
    ),
  ];
}

/** What the picture needs of a VM in the stack config: its name, `ifname` override and host. */
export const PictureVm = z.object(
  VmSpec.pick({ name: true, ifname: true, host: true }).shape,
);
export type PictureVm = z.infer<typeof PictureVm>;

/**
 * Which VM each object of a host's picture belongs to, from the stack config and the same
 * derivedNames the components use: "netns:NAME" for the VM's namespaces, "link:NAME" for its host
 * ends (veth, tap, macvlan/macvtap, the routed host end), each to "vm NAME (key KEY)" (just "vm
 * NAME" when the name is its own key). Objects of no VM are not in the map.
 */
export function vmLabels(
  vms: readonly PictureVm[],
  host: string,
): Map<string, string> {
  const labels = new Map<string, string>();
  for (const vm of vms.filter((v) => v.host === host)) {
    const key = vmKey(vm);
    const text =
      key === vm.name ? `vm ${vm.name}` : `vm ${vm.name} (key ${key})`;
    const n = derivedNames(vm);
    for (const netns of [n.netns, n.guestNetns])
      labels.set(`netns:${netns}`, text);
    for (const dev of [n.hostPort, n.tap, n.macvlan])
      labels.set(`link:${dev}`, text);
  }
  return labels;
}

const DRIFTED = 'color="#cc0000",fontcolor="#cc0000",penwidth=2.5';

/** What drifted, keyed by node id (an interface or nft table) or by "netns:NAME" (a whole namespace). */
function driftMarks(drift: DriftItem[]): Map<string, string[]> {
  const marks = new Map<string, string[]>();
  for (const d of drift) {
    const what =
      d.op === "create"
        ? "missing"
        : d.op === "delete"
          ? "not desired"
          : `${d.op}: ${d.properties.join(", ") || "(properties)"}`;
    const parts = new Set(d.properties.map((p) => p.split(".")[0]));
    for (const o of d.objects ?? []) {
      if (o.part && d.properties.length > 0 && !parts.has(o.part)) continue;
      const key =
        o.name === undefined ? `netns:${o.netns}` : id(o.netns, o.name);
      marks.set(key, [...(marks.get(key) ?? []), `DRIFT ${d.type} ${what}`]);
    }
  }
  return marks;
}

const lines = (texts: string[]) => texts.map((t) => `\\n${t}`).join("");
const dotLabel = (text: string) =>
  JSON.stringify(text).replace(/\\\\n/g, "\\n");

/**
 * DOT text for one host. Pure, so it is unit-tested. `drift` (this host's items of the drift
 * report) colours each drifted object red with what drifted; objects missing on the host are drawn
 * dashed, as the drift gate will create them. `owners` (vmLabels of this host) names the VM of each
 * VM's namespace and host-end interface.
 */
export function topologyDot(
  snap: HostSnapshot,
  title: string,
  drift?: DriftItem[],
  owners: Map<string, string> = new Map(),
): string {
  const marks = driftMarks(drift ?? []);
  const state = drift
    ? `live; ${drift.length === 0 ? "no drift" : `${drift.length} drifted object(s) in red`}`
    : "live";
  const out = [
    `digraph ${JSON.stringify(title)} {`,
    "  rankdir=LR; compound=true; fontname=Helvetica; node [fontname=Helvetica,fontsize=10];",
    `  label=${JSON.stringify(`${title} (${snap.hostname}), ${state}`)};`,
  ];
  const edges = new Set<string>();
  const drawn = new Set<string>();
  const node = (nid: string, attrs: string, text: string) => {
    drawn.add(nid);
    const m = marks.get(nid);
    return `${nid} [${attrs}${m ? `,${DRIFTED}` : ""},label=${dotLabel(text + lines(m ?? []))}];`;
  };
  const names = Object.keys(snap.namespaces).sort((a, b) =>
    a === "" ? -1 : b === "" ? 1 : a.localeCompare(b),
  );
  names.forEach((ns, i) => {
    const state = snap.namespaces[ns];
    const links = state.links.filter(
      (l) => !SKIP.has(l.kind) && !(ns === "" && l.name.startsWith("mgmt")),
    );
    if (links.length === 0 && !state.nft) return;
    const nsMarks = marks.get(`netns:${ns}`);
    drawn.add(`netns:${ns}`);
    const owner = ns ? owners.get(`netns:${ns}`) : undefined;
    const clusterLabel =
      (ns ? `netns ${ns}` : "root namespace") +
      lines([...(owner ? [owner] : []), ...(nsMarks ?? [])]);
    out.push(
      `  subgraph cluster_${i} { label=${dotLabel(clusterLabel)}; style=rounded; color=${nsMarks ? '"#cc0000"; penwidth=2.5; fontcolor="#cc0000"' : '"#888888"'};`,
    );
    for (const l of links)
      out.push(
        `    ${node(id(ns, l.name), shape(l), label(l, state, owners.get(`link:${l.name}`)))}`,
      );
    out.push(
      ...filterNote(ns, state).map(
        ([nid, text]) =>
          `    ${node(nid, 'shape=note,style=filled,fillcolor="#fff3cd"', text)}`,
      ),
    );
    out.push("  }");
    for (const l of links) {
      if (l.master)
        edges.add(
          `  ${id(ns, l.name)} -> ${id(ns, l.master)} [arrowhead=none,color="#3366cc"];`,
        );
      const peer = peerOf(snap, ns, l);
      if (!peer) continue;
      if (l.kind === "veth") {
        const [x, y] = [id(ns, l.name), peer].sort();
        edges.add(
          `  ${x} -> ${y} [dir=none,style=dashed,color="#cc3333",label="veth"];`,
        );
      } else if (l.macvlan) {
        edges.add(
          `  ${id(ns, l.name)} -> ${peer} [style=dotted,label="lower"];`,
        );
      }
    }
  });
  for (const [key, texts] of marks) {
    if (drawn.has(key)) continue;
    const missing = key.startsWith("netns:")
      ? `netns ${key.slice("netns:".length)}`
      : JSON.parse(key);
    out.push(
      `  ${JSON.stringify(`missing:${key}`)} [shape=box,style=dashed,${DRIFTED},label=${dotLabel(`${missing} (not on the host)${lines(texts)}`)}];`,
    );
  }
  out.push(...edges, "}");
  return out.join("\n") + "\n";
}

/** Renders DOT to `file`, as PNG when it ends in .png, else as SVG. */
export function renderSvg(dot: string, file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync(
    "dot",
    [path.extname(file) === ".png" ? "-Tpng" : "-Tsvg", "-o", file],
    { input: dot },
  );
}

/** The VMs of a stack's raw config (`pulumi config --json`), checked: a bad entry names its field. */
export function configVms(
  cfg: Record<string, { value?: string }>,
): PictureVm[] {
  const raw: unknown = JSON.parse(cfg["hostnet:vms"]?.value ?? "[]");
  const r = PictureVm.array().safeParse(raw);
  if (r.success) return r.data;
  const problems = formatIssues(r.error, "vms");
  throw new Error(
    `the stack's hostnet:vms cannot be read (${problems.join("; ")}); nothing was drawn or changed: fix the stack config`,
  );
}

/** Hosts, key and VMs of an environment: the lab inventory, or the stack's own config. */
function environmentHosts(env: string): {
  hosts: HostEntry[];
  key: string | KeyRef;
  vms: PictureVm[];
} {
  const { engineEnv, ENGINE_BIN, PROJECT_ROOT } = require("./engine");
  const {
    HostEntry,
    readLabInventory,
  }: typeof import("../stacks/config") = require("../stacks/config");
  const labHosts = (vms: PictureVm[]) => {
    const inv = readLabInventory();
    const hosts = inv.hosts.map((h) =>
      HostEntry.parse({
        name: h.name,
        address: h.address,
        port: h.port,
        hostKey: h.hostKey,
      }),
    );
    return { hosts, key: fs.readFileSync(inv.privateKeyPath, "utf8"), vms };
  };
  const readConfig = () =>
    JSON.parse(
      execFileSync(
        path.join(ENGINE_BIN, "pulumi"),
        ["config", "--json", "--show-secrets", "-s", env],
        {
          cwd: PROJECT_ROOT,
          env: engineEnv(env),
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
  if (env === "lab") {
    // The lab picture works without a lab stack; VM names come from its config when there is one.
    let cfg: Record<string, { value?: string }> = {};
    try {
      cfg = readConfig();
    } catch {
      console.error(
        "picture: no config of stack lab (create it with 'npm run demo' or 'npm run pulumi -- up -s lab'); drawing without VM names",
      );
    }
    return labHosts(configVms(cfg));
  }
  const cfg = readConfig();
  const vms = configVms(cfg);
  if (cfg["hostnet:inventory"]?.value === "lab") return labHosts(vms);
  const hosts = JSON.parse(cfg["hostnet:hosts"]?.value ?? "[]").map(
    (h: unknown) => HostEntry.parse(h),
  );
  const keyFile: string | undefined = cfg["hostnet:privateKeyFile"]?.value;
  return {
    hosts,
    key:
      cfg["hostnet:privateKey"]?.value ??
      (keyFile ? { privateKeyFile: keyFile } : ""),
    vms,
  };
}

/**
 * This host's share of the drift report: the items recorded on its machine, and (for objects that
 * are gone from the state too) those whose resource name starts with the host's name, longest first.
 */
export function driftOfHost(
  items: DriftItem[],
  host: string,
  machineId: string,
  allHosts: string[],
): DriftItem[] {
  const owner = (resource: string) =>
    [...allHosts]
      .sort((a, b) => b.length - a.length)
      .find((h) => resource.startsWith(`${h}-`));
  return items.filter((d) =>
    d.machineId ? d.machineId === machineId : owner(d.resource) === host,
  );
}

async function main(): Promise<void> {
  const { hostFor } = await import("../providers/host");
  const { hostConnection } = await import("../stacks/config");
  const args = process.argv.slice(2).filter((a) => a !== "--drift");
  const withDrift = args.length < process.argv.length - 2;
  const env = args[0] ?? "lab";
  const outDir = path.resolve(
    args[1] ?? path.join(__dirname, "..", "..", ".hostnet", "pictures"),
  );
  const { hosts, key, vms } = environmentHosts(env);
  let drift: DriftItem[] | undefined;
  if (withDrift) {
    const { driftReport, environmentStack, formatDrift } =
      await import("./stacks");
    drift = await driftReport(await environmentStack(env));
    console.log(formatDrift(drift));
  }
  for (const h of hosts) {
    const snap = await hostFor(hostConnection(h, key)).snapshot();
    const mine =
      drift &&
      driftOfHost(
        drift,
        h.name,
        snap.machineId,
        hosts.map((x) => x.name),
      );
    const file = path.join(outDir, `${h.name}.svg`);
    renderSvg(topologyDot(snap, h.name, mine, vmLabels(vms, h.name)), file);
    console.log(
      `${h.name}: ${file}${mine ? ` (${mine.length} drifted object(s) in red)` : ""}`,
    );
  }
  process.exit(0);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`picture: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  });
}
