// A picture of each host's topology (bridges, ports, namespaces, veth pairs, macvlans, filters),
// drawn by Graphviz from the live snapshot. `npm run picture -- [stack] [outdir]`.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { HostSnapshot, Link } from "../providers/hoststate";

const SKIP = new Set(["loopback"]);

function id(ns: string, name: string): string {
  return JSON.stringify(`${ns || "root"}/${name}`);
}

function label(l: Link): string {
  const bits = [l.name, l.kind === "device" ? "" : l.kind];
  if (l.macvlan) bits.push(`mode ${l.macvlan.mode}`);
  if (l.port && (l.port.learning === false || l.port.flood === false)) bits.push("learning/flood off");
  if (l.port?.neighSuppress) bits.push("neigh_suppress");
  if (l.addresses.length) bits.push(l.addresses.filter((a) => !a.startsWith("fe80")).join(" "));
  return bits.filter(Boolean).join("\\n");
}

function shape(l: Link): string {
  if (l.kind === "bridge") return 'shape=box,style="rounded,filled",fillcolor="#cfe2ff"';
  if (l.kind === "macvlan" || l.kind === "macvtap") return 'shape=ellipse,style=filled,fillcolor="#ffe5b4"';
  if (l.kind === "tap" || l.kind === "tun") return 'shape=ellipse,style=filled,fillcolor="#d1f2d1"';
  return 'shape=ellipse,style=filled,fillcolor="#f2f2f2"';
}

/** Find the other end of a veth / the lower of a macvlan. */
function peerOf(snap: HostSnapshot, ns: string, l: Link): string | undefined {
  if (l.peerName !== undefined && l.peerNetns !== undefined) return id(l.peerNetns, l.peerName);
  if (l.peerIndex === undefined) return undefined;
  for (const [otherNs, state] of Object.entries(snap.namespaces)) {
    const sameNs = otherNs === ns;
    if (sameNs !== (l.peerNetnsId === undefined)) continue;
    const hit = state.links.find((o) => o.index === l.peerIndex && (o.kind !== "veth" || o.peerIndex === l.index));
    if (hit) return id(otherNs, hit.name);
  }
  return undefined;
}

function filterNote(ns: string, state: HostSnapshot["namespaces"][string]): string[] {
  const tables = (state.nft?.nftables ?? []).flatMap((i: any) => (i.table && i.table.family === "bridge" ? [i.table.name] : []));
  return tables.map((t: string) => {
    const maps = (state.nft?.nftables ?? []).filter((i: any) => i.map?.table === t && i.map?.name === "from_vm");
    const ports = maps.reduce((n: number, m: any) => n + (m.map.elem?.length ?? 0), 0);
    return `${id(ns, `nft:${t}`)} [shape=note,style=filled,fillcolor="#fff3cd",label="nft bridge ${t}\\n${ports} port(s), one vmap lookup"];`;
  });
}

/** DOT text for one host. Pure, so it is unit-tested. */
export function topologyDot(snap: HostSnapshot, title: string): string {
  const out = [`digraph ${JSON.stringify(title)} {`, "  rankdir=LR; compound=true; fontname=Helvetica; node [fontname=Helvetica,fontsize=10];", `  label=${JSON.stringify(`${title} (${snap.hostname}), live`)};`];
  const edges = new Set<string>();
  const names = Object.keys(snap.namespaces).sort((a, b) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b)));
  names.forEach((ns, i) => {
    const state = snap.namespaces[ns];
    const links = state.links.filter((l) => !SKIP.has(l.kind) && !(ns === "" && l.name.startsWith("mgmt")));
    if (links.length === 0 && !state.nft) return;
    out.push(`  subgraph cluster_${i} { label=${JSON.stringify(ns ? `netns ${ns}` : "root namespace")}; style=rounded; color="#888888";`);
    for (const l of links) out.push(`    ${id(ns, l.name)} [${shape(l)},label=${JSON.stringify(label(l)).replace(/\\\\n/g, "\\n")}];`);
    out.push(...filterNote(ns, state).map((s) => `    ${s}`));
    out.push("  }");
    for (const l of links) {
      if (l.master) edges.add(`  ${id(ns, l.name)} -> ${id(ns, l.master)} [arrowhead=none,color="#3366cc"];`);
      const peer = peerOf(snap, ns, l);
      if (!peer) continue;
      if (l.kind === "veth") {
        const [x, y] = [id(ns, l.name), peer].sort();
        edges.add(`  ${x} -> ${y} [dir=none,style=dashed,color="#cc3333",label="veth"];`);
      } else if (l.macvlan) {
        edges.add(`  ${id(ns, l.name)} -> ${peer} [style=dotted,label="lower"];`);
      }
    }
  });
  out.push(...edges, "}");
  return out.join("\n") + "\n";
}

export function renderSvg(dot: string, file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync("dot", ["-Tsvg", "-o", file], { input: dot });
}

interface PictureHost {
  name: string;
  address: string;
  port: number;
  user: string;
  sudo: boolean;
  hostKey?: string;
}

/** Hosts and key of an environment: the lab inventory, or the stack's own config. */
function environmentHosts(env: string): { hosts: PictureHost[]; key: string } {
  const { engineEnv, ENGINE_BIN, PROJECT_ROOT } = require("./engine");
  const { readLabInventory } = require("../stacks/config");
  if (env === "lab") {
    const inv = readLabInventory();
    const hosts = inv.hosts.map((h: any) => ({ name: h.name, address: h.address, port: h.port, user: "root", sudo: false, hostKey: h.hostKey }));
    return { hosts, key: fs.readFileSync(inv.privateKeyPath, "utf8") };
  }
  const json = execFileSync(path.join(ENGINE_BIN, "pulumi"), ["config", "--json", "--show-secrets", "-s", env], { cwd: PROJECT_ROOT, env: engineEnv(env), encoding: "utf8" });
  const cfg = JSON.parse(json);
  const hosts = JSON.parse(cfg["hostnet:hosts"]?.value ?? "[]").map((h: any) => ({ port: 22, user: "root", sudo: false, ...h }));
  return { hosts, key: cfg["hostnet:privateKey"]?.value ?? "" };
}

async function main(): Promise<void> {
  const { hostFor } = await import("../providers/host");
  const env = process.argv[2] ?? "lab";
  const outDir = path.resolve(process.argv[3] ?? path.join(__dirname, "..", "..", ".hostnet", "pictures"));
  const { hosts, key } = environmentHosts(env);
  for (const h of hosts) {
    const snap = await hostFor({ host: h.address, port: h.port, user: h.user, sudo: h.sudo, hostKey: h.hostKey, privateKey: key }).snapshot();
    const file = path.join(outDir, `${h.name}.svg`);
    renderSvg(topologyDot(snap, h.name), file);
    console.log(`${h.name}: ${file}`);
  }
  process.exit(0);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`picture: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  });
}
