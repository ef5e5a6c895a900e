// Engine properties as the lifecycle sees them: the kind a name dispatches to, the schema that
// checks its props, engine keys stripped, preview's unknown values, and comparison as data.
import { z } from "zod";
import { CommonProps, ResourceKind } from "../kinds/kind";
import { formatIssues } from "../schema";
import { KEY_SOURCE_FIELDS } from "../transport";
import { KINDS } from "./registry";

/** The value the engine sends for properties not known yet during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const ENGINE_KEYS = new Set(["__provider", "machineId", "created", "hostname"]);

export type Props = Record<string, any>;

export function kindOf(name: string): ResourceKind {
  const k = KINDS[name];
  if (!k) throw new Error(`hostnet: unknown resource kind ${name}`);
  return k;
}

export function fullSchema(kind: ResourceKind): z.ZodObject {
  return kind.hostless ? kind.schema : CommonProps.extend(kind.schema.shape);
}

export function strip(props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(props ?? {}))
    if (!ENGINE_KEYS.has(k)) out[k] = v;
  return out;
}

export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

export function valueAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur: any = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[p as any];
    if (cur === UNKNOWN) return UNKNOWN;
  }
  return cur;
}

export function parseProps(kind: ResourceKind, props: Props): any {
  const r = fullSchema(kind).safeParse(strip(props));
  if (!r.success)
    throw new Error(
      `invalid ${kind.type} properties:\n  - ${formatIssues(r.error).join("\n  - ")}`,
    );
  return r.data;
}

export function connectionOf(props: Props) {
  return { ...(props.connection ?? {}), ...(props.credentials ?? {}) };
}

/**
 * The engine's Struct encoding throws "Unexpected struct type" on undefined values, and a live
 * value of undefined (an optional prop that is no longer there) must remove the key anyway.
 */
export function definedOnly(props: Props): Props {
  return JSON.parse(
    JSON.stringify(props, (_k, v) => (v === undefined ? undefined : v)),
  );
}

export function comparedKeys(kind: ResourceKind): string[] {
  return [...(kind.compared ?? Object.keys(kind.schema.shape))];
}

export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

/** Which identity of the connection matters: a different machine means a new object. */
export function connectionIdentity(c: Props | undefined): unknown {
  return c ? [c.host, c.port ?? 22] : undefined;
}

/** The connection without how it authenticates (the key source): what reaches the host. */
export function withoutKeySource(c: Props | undefined): Props | undefined {
  if (!c) return c;
  const out: Props = { ...c };
  for (const f of KEY_SOURCE_FIELDS) delete out[f];
  return out;
}

/**
 * True when olds and news differ, and only in how the host is authenticated (the connection's key
 * source, the secret credentials): such an update changes nothing on the host, only the state.
 * Identical inputs are not such a change: an update with nothing changed in its inputs comes from a
 * kind's live recheck (HostHealth's verdict), which must run.
 */
export function onlyKeySourceChanged(
  kind: ResourceKind,
  olds: Props,
  news: Props,
): boolean {
  const keySourceChanged =
    !same(olds.connection, news.connection) ||
    !same(olds.credentials, news.credentials);
  return (
    keySourceChanged &&
    comparedKeys(kind).every((k) => same(olds[k], news[k])) &&
    (kind.replaces?.(olds, news) ?? []).length === 0 &&
    same(withoutKeySource(olds.connection), withoutKeySource(news.connection))
  );
}
