// The canonical text of one nft table, for drift detection: handles and counters stripped,
// unordered things sorted, so equal rulesets compare equal whatever order nft printed them in.
import { z } from "zod";
import { NftChain, NftItem, NftRule, NftRuleset, NftSet } from "./rawNft";

/** Runtime state that changes without anyone changing the ruleset. */
const VOLATILE: Readonly<Record<string, readonly string[]>> = {
  counter: ["packets", "bytes"],
  quota: ["used", "used_unit"],
  last: ["used"],
};

function scrubObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === "handle") continue;
    out[k] =
      VOLATILE[k] !== undefined && isPlainObject(v)
        ? scrubVolatile(v, VOLATILE[k])
        : scrub(v);
    // Anonymous sets ({"set": [...]}) and element lists are unordered.
    if ((k === "set" || k === "elem") && Array.isArray(out[k]))
      out[k] = sortByJson(out[k] as unknown[]);
  }
  return out;
}

function scrubVolatile(
  o: Record<string, unknown>,
  drop: readonly string[],
): unknown {
  const kept = scrubObject(
    Object.fromEntries(Object.entries(o).filter(([k]) => !drop.includes(k))),
  );
  return Object.keys(kept).length === 0 ? null : kept;
}

function scrub(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(scrub);
  return isPlainObject(v) ? scrubObject(v) : v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted at every level. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (!isPlainObject(v)) return JSON.stringify(v) ?? "null";
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(",")}}`;
}

function sortByJson(items: readonly unknown[]): unknown[] {
  return items
    .map((i) => [stableJson(i), i] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, i]) => i);
}

function without(
  o: Record<string, unknown>,
  keys: readonly string[],
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).filter(([k]) => !keys.includes(k)),
  );
}

const IDENTITY = ["family", "table", "name", "handle"];
const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

type TableItems = {
  table: Record<string, unknown>;
  chains: z.infer<typeof NftChain>[];
  rules: Map<string, z.infer<typeof NftRule>[]>;
  sets: { kind: string; set: z.infer<typeof NftSet> }[];
  extraElems: Map<string, unknown[]>;
  others: { kind: string; body: Record<string, unknown> }[];
};

const STRUCTURAL = new Set([
  "table",
  "chain",
  "rule",
  "set",
  "map",
  "element",
  "metainfo",
]);

function collectOther(
  t: TableItems,
  item: NftItem,
  family: string,
  table: string,
): void {
  for (const [kind, body] of Object.entries(item)) {
    if (STRUCTURAL.has(kind) || !isPlainObject(body)) continue;
    if (body.family === family && body.table === table)
      t.others.push({ kind, body });
  }
}

function collect(
  t: TableItems,
  item: NftItem,
  family: string,
  table: string,
): void {
  const mine = (o: { family: string; table: string } | undefined): boolean =>
    o?.family === family && o.table === table;
  if (mine(item.chain)) t.chains.push(item.chain!);
  if (mine(item.rule))
    t.rules.set(item.rule!.chain, [
      ...(t.rules.get(item.rule!.chain) ?? []),
      item.rule!,
    ]);
  if (mine(item.set)) t.sets.push({ kind: "set", set: item.set! });
  if (mine(item.map)) t.sets.push({ kind: "map", set: item.map! });
  if (mine(item.element))
    t.extraElems.set(item.element!.name, [
      ...(t.extraElems.get(item.element!.name) ?? []),
      ...item.element!.elem,
    ]);
  collectOther(t, item, family, table);
}

function chainLines(t: TableItems): string[] {
  return [...t.chains]
    .sort(byName)
    .flatMap((c) => [
      `chain ${c.name} ${stableJson(scrub(without(c, IDENTITY)))}`,
      ...(t.rules.get(c.name) ?? []).map(
        (r) =>
          `  rule ${stableJson(scrub(without(r, ["family", "table", "chain", "handle", "index"])))}`,
      ),
    ]);
}

function setLines(t: TableItems): string[] {
  const sorted = [...t.sets].sort((a, b) =>
    a.kind === b.kind ? byName(a.set, b.set) : a.kind < b.kind ? -1 : 1,
  );
  return sorted.flatMap(({ kind, set }) => {
    const elems = [
      ...(set.elem ?? []),
      ...(t.extraElems.get(set.name) ?? []),
    ].map((e) => stableJson(scrub(e)));
    const props = scrub(without(set, [...IDENTITY, "elem"])) as Record<
      string,
      unknown
    >;
    if (Array.isArray(props.flags))
      props.flags = [...(props.flags as unknown[])].sort();
    return [
      `${kind} ${set.name} ${stableJson(props)}`,
      ...[...new Set(elems)].sort().map((e) => `  elem ${e}`),
    ];
  });
}

function otherLines(t: TableItems): string[] {
  return t.others
    .map(
      (o) =>
        `${o.kind} ${stableJson(scrub(without(o.body, ["family", "table", "handle"])))}`,
    )
    .sort();
}

/**
 * Deterministic text of one table: chains (base-chain type/hook/prio/policy) with their
 * rules in order, sets/maps with sorted elements, other objects; handles and counter
 * values stripped. null when the table does not exist.
 */
export function canonicalNftTable(
  ruleset: NftRuleset,
  family: string,
  table: string,
): string | null {
  const head = ruleset.nftables.find(
    (i) => i.table?.family === family && i.table.name === table,
  )?.table;
  if (head === undefined) return null;
  const t: TableItems = {
    table: head,
    chains: [],
    rules: new Map(),
    sets: [],
    extraElems: new Map(),
    others: [],
  };
  for (const item of ruleset.nftables) collect(t, item, family, table);
  const lines = [
    `table ${family} ${table} ${stableJson(scrub(without(head, IDENTITY)))}`,
    ...setLines(t),
    ...chainLines(t),
    ...otherLines(t),
  ];
  return `${lines.join("\n")}\n`;
}
