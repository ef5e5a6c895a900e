// The parser of snapshotScript()'s output: sections split by marker lines, each validated
// against its raw model and normalized, then veth/macvlan peers resolved across namespaces.
import { z } from "zod";
import { formatIssues } from "../schema";
import {
  BridgePort,
  FdbEntry,
  IpAddr,
  IpLink,
  NeighEntry,
  NetnsId,
  Route,
} from "./rawIp";
import { NftRuleset } from "./rawNft";
import { HostSnapshot, Link, NamespaceState, ROOT_NS } from "./model";
import { buildNamespaceState, RawNamespace } from "./normalize";
import { MARK, SECTIONS } from "./snapshotScript";

/** Names the namespace and section a parse problem came from. */
export class SnapshotParseError extends Error {
  constructor(
    readonly ns: string | undefined,
    readonly section: string | undefined,
    detail: string,
  ) {
    super(`host snapshot: ${where(ns, section)}: ${detail}`);
    this.name = "SnapshotParseError";
  }
}

function where(ns: string | undefined, section: string | undefined): string {
  const nsPart =
    ns === undefined
      ? "header"
      : ns === ROOT_NS
        ? 'ns "" (root)'
        : `ns ${JSON.stringify(ns)}`;
  return section === undefined ? nsPart : `${nsPart} section ${section}`;
}

type Section = { lines: string[]; rc?: number };
type Split = {
  header: Map<string, string[]>;
  namespaces: Map<string, Map<string, Section>>;
};

const MARKER_LINE =
  /^@@hostnet(?: ns=(.*))? section=([A-Za-z0-9_-]+)(?: rc=(\d+))?$/;

function splitSections(stdout: string): Split {
  const split: Split = { header: new Map(), namespaces: new Map() };
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    if (line === `${MARK} end`) return split;
    const m = MARKER_LINE.exec(line);
    if (m !== null) current = openSection(split, m);
    else if (line.startsWith(MARK))
      throw new SnapshotParseError(
        undefined,
        undefined,
        `unrecognized marker line ${JSON.stringify(line)}`,
      );
    else if (current !== undefined) current.push(line);
    else if (line.trim() !== "")
      throw new SnapshotParseError(
        undefined,
        undefined,
        "output before the first marker",
      );
  }
  throw new SnapshotParseError(
    undefined,
    undefined,
    `output is truncated (no "${MARK} end" line)`,
  );
}

function openSection(split: Split, m: RegExpExecArray): string[] {
  const [, ns, section, rc] = m;
  const lines: string[] = [];
  if (ns === undefined) {
    split.header.set(section, lines);
    return lines;
  }
  const sections = split.namespaces.get(ns) ?? new Map<string, Section>();
  split.namespaces.set(ns, sections);
  sections.set(
    section,
    rc === undefined ? { lines } : { lines, rc: Number(rc) },
  );
  return lines;
}

function parseJsonSection<T>(
  schema: z.ZodType<T>,
  ns: string,
  name: string,
  section: Section | undefined,
): T | undefined {
  if (section === undefined) return undefined;
  const text = section.lines.join("\n").trim();
  let value: unknown;
  try {
    value = text === "" ? [] : JSON.parse(text);
  } catch (e) {
    throw new SnapshotParseError(
      ns,
      name,
      `invalid JSON: ${(e as Error).message}`,
    );
  }
  const result = schema.safeParse(value);
  if (!result.success)
    throw new SnapshotParseError(
      ns,
      name,
      formatIssues(result.error, name).join("; "),
    );
  return result.data;
}

/** `/proc/sys` relative paths become dotted keys, the same plain swap validate.SysctlKey does. */
function parseSysctl(
  ns: string,
  section: Section | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of section?.lines ?? []) {
    if (line.trim() === "") continue;
    const eq = line.lastIndexOf("=");
    if (eq <= 0)
      throw new SnapshotParseError(
        ns,
        "sysctl",
        `malformed line ${JSON.stringify(line)}`,
      );
    out[line.slice(0, eq).replace(/\//g, ".")] = line.slice(eq + 1);
  }
  return out;
}

/** nft prints {"nftables": [...]}; `null` (no nft binary) and `[]` (nft failed) mean none. */
const NftSection = z.preprocess(
  (v) => (Array.isArray(v) && v.length === 0 ? null : v),
  NftRuleset.nullable(),
);

/** Sections older snapshot scripts did not print: absent means "none", not "failed". */
const OPTIONAL_SECTIONS: ReadonlySet<string> = new Set(["neigh", "hooks"]);

const TABLE_LINE = /^table netdev (\S+) \{$/;
const HOOK_DEVICES = /\bhook \w+ (?:device (\S+)|devices = \{ ([^}]*) \})/;
const unquote = (s: string): string => s.trim().replace(/^"(.*)"$/, "$1");

/**
 * `nft list chains netdev` text → the devices each table's chains hook, by table. A chain hooked
 * on one device prints `device "x"`, on several `devices = { x, y }`.
 */
export function parseNetdevHooks(
  lines: readonly string[],
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let table: string | undefined;
  for (const line of lines) {
    const t = TABLE_LINE.exec(line.trim());
    if (t) {
      table = t[1];
      out[table] ??= [];
      continue;
    }
    const h = HOOK_DEVICES.exec(line);
    if (!h || table === undefined) continue;
    const devices = h[1] !== undefined ? [h[1]] : h[2].split(",");
    out[table].push(...devices.map(unquote).filter((d) => d !== ""));
  }
  return out;
}

function failedSectionsOf(sections: ReadonlyMap<string, Section>): string[] {
  return SECTIONS.filter(
    (s) =>
      (sections.get(s) === undefined && !OPTIONAL_SECTIONS.has(s)) ||
      sections.get(s)?.rc !== undefined,
  );
}

function parseNamespace(
  ns: string,
  sections: ReadonlyMap<string, Section>,
): { state: NamespaceState; nsids: NetnsId[] } {
  const json = <T>(schema: z.ZodType<T>, name: string): T | undefined =>
    parseJsonSection(schema, ns, name, sections.get(name));
  const raw: RawNamespace = {
    links: json(z.array(IpLink), "links") ?? [],
    addrs: json(z.array(IpAddr), "addrs"),
    routes: json(z.array(Route), "routes") ?? [],
    routes6: json(z.array(Route), "routes6") ?? [],
    bports: json(z.array(BridgePort), "bports") ?? [],
    fdb: json(z.array(FdbEntry), "fdb") ?? [],
    neigh: json(z.array(NeighEntry), "neigh") ?? [],
    sysctl: parseSysctl(ns, sections.get("sysctl")),
    nft: json(NftSection, "nft") ?? null,
  };
  const hooks = sections.get("hooks");
  if (hooks !== undefined && hooks.rc === undefined)
    raw.netdevHooks = parseNetdevHooks(hooks.lines);
  const nsids = json(z.array(NetnsId), "nsids") ?? [];
  try {
    return {
      state: buildNamespaceState(raw, failedSectionsOf(sections)),
      nsids,
    };
  } catch (e) {
    throw new SnapshotParseError(ns, "links", (e as Error).message);
  }
}

function nsidMap(nsids: readonly NetnsId[]): Map<number, string> {
  return new Map(
    nsids.flatMap((n) =>
      n.name === undefined ? [] : [[n.nsid, n.name] as const],
    ),
  );
}

function headerValue(split: Split, name: string): string {
  const lines = split.header.get(name);
  if (lines === undefined)
    throw new SnapshotParseError(undefined, name, "section missing");
  return lines.join("\n").trim();
}

/** Parses the output of snapshotScript(); throws SnapshotParseError naming ns and section. */
export function parseSnapshot(stdout: string): HostSnapshot {
  const split = splitSections(stdout);
  const snapshot: HostSnapshot = {
    machineId: headerValue(split, "machine-id"),
    hostname: headerValue(split, "hostname"),
    namespaces: {},
    absent: [],
  };
  const nsids = new Map<string, Map<number, string>>();
  for (const [ns, sections] of split.namespaces) {
    if (sections.has("absent")) {
      snapshot.absent.push(ns);
      continue;
    }
    const parsed = parseNamespace(ns, sections);
    snapshot.namespaces[ns] = parsed.state;
    nsids.set(ns, nsidMap(parsed.nsids));
  }
  if (snapshot.namespaces[ROOT_NS] === undefined)
    throw new SnapshotParseError(ROOT_NS, undefined, "root namespace missing");
  resolvePeers(snapshot.namespaces, nsids);
  return snapshot;
}

// ---------------------------------------------------------------------------------------
// Cross-namespace peer resolution
// ---------------------------------------------------------------------------------------

type NsidMaps = ReadonlyMap<string, ReadonlyMap<number, string>>;

/** The other end must point back at us: ifindexes repeat across namespaces, pairs rarely do. */
function mutualPeer(
  namespaces: Record<string, NamespaceState>,
  ns: string,
  link: Link,
): [string, Link] | undefined {
  const hits: [string, Link][] = [];
  for (const [other, state] of Object.entries(namespaces)) {
    if (other === ns) continue;
    for (const l of state.links) {
      if (
        l.kind === "veth" &&
        l.index === link.peerIndex &&
        l.peerIndex === link.index &&
        l.peerNetnsId !== undefined
      )
        hits.push([other, l]);
    }
  }
  return hits.length === 1 ? hits[0] : undefined;
}

function resolvePeer(
  namespaces: Record<string, NamespaceState>,
  nsids: NsidMaps,
  ns: string,
  link: Link,
): void {
  if (link.peerNetnsId === undefined && link.peerName !== undefined)
    link.peerNetns = ns;
  if (link.peerNetnsId === undefined || link.peerIndex === undefined) return;
  const named = nsids.get(ns)?.get(link.peerNetnsId);
  if (named !== undefined && namespaces[named] !== undefined) {
    link.peerNetns = named;
    const peer = namespaces[named].links.find(
      (l) => l.index === link.peerIndex,
    );
    if (peer !== undefined) link.peerName = peer.name;
    return;
  }
  // Only veth ends point back at each other. A macvlan's lower never does, and taking the one
  // link elsewhere whose index and peer index happen to mirror ours (ifindexes repeat in every
  // namespace) drew a macvlan's lower as some other namespace's veth.
  if (link.kind !== "veth") return;
  const hit = mutualPeer(namespaces, ns, link);
  if (hit !== undefined)
    [link.peerNetns, link.peerName] = [hit[0], hit[1].name];
}

function resolvePeers(
  namespaces: Record<string, NamespaceState>,
  nsids: NsidMaps,
): void {
  for (const [ns, state] of Object.entries(namespaces)) {
    for (const link of state.links) resolvePeer(namespaces, nsids, ns, link);
  }
}
