// Running the stacks/ program for an environment through the Automation API (in-process language
// runtime), with the drift report the GitOps gate prints: each drifted object and property.
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";
import { StackConfigError } from "../stacks/config";
import { inlineStack, PROJECT_ROOT } from "./engine";

let lastConfigError: StackConfigError | undefined;

/** The stack-config problems that stopped the last run of environmentStack's program, once. */
export function takeConfigError(): StackConfigError | undefined {
  const e = lastConfigError;
  lastConfigError = undefined;
  return e;
}

export async function environmentStack(env: string): Promise<automation.Stack> {
  const run = require(path.join(PROJECT_ROOT, "dist", "stacks", "index.js"))
    .default as automation.PulumiFn;
  // Remember a config error as thrown, so a caller can print just its problems instead of the
  // engine's whole output that the Automation API puts into its CommandError.
  const program: automation.PulumiFn = async () => {
    try {
      return await run();
    } catch (e) {
      if (e instanceof StackConfigError) lastConfigError = e;
      throw e;
    }
  };
  return inlineStack(env, program, { workDir: PROJECT_ROOT });
}

export interface DriftItem {
  resource: string;
  type: string;
  op: string;
  properties: string[];
  /** The machine the resource was recorded on (absent when it was never created). */
  machineId?: string;
  /** The kernel objects it manages, for drawing: an interface (name) in a namespace ("" = root); a whole namespace has no name. */
  objects?: DriftObject[];
}

export interface DriftObject {
  netns: string;
  name?: string;
  /** Which end of a pair ("a", "b"): drifted properties under another end do not concern it. */
  part?: string;
}

/** The kernel objects a hostnet resource of `type` with these properties manages. */
export function driftObjects(
  type: string,
  p: Record<string, any> | undefined,
): DriftObject[] {
  if (!p) return [];
  const ns = typeof p.netns === "string" ? p.netns : "";
  const end = (e: any, part?: string): DriftObject[] =>
    e && typeof e.name === "string"
      ? [
          {
            netns: typeof e.netns === "string" ? e.netns : "",
            name: e.name,
            ...(part ? { part } : {}),
          },
        ]
      : [];
  switch (type) {
    case "VmNetns":
      return typeof p.name === "string" ? [{ netns: p.name }] : [];
    case "VethLink":
      return [...end(p.a, "a"), ...end(p.b, "b")];
    case "FdbEntry":
      return typeof p.port === "string" ? [{ netns: ns, name: p.port }] : [];
    case "FilterChain":
      return [
        {
          netns: ns,
          name: `nft:${typeof p.table === "string" ? p.table : "hostnet"}`,
        },
      ];
    default:
      return end(p);
  }
}

/** `preview --refresh`: what the live hosts differ in from the desired state. */
export async function driftReport(
  stack: automation.Stack,
  onOutput?: (s: string) => void,
): Promise<DriftItem[]> {
  const items: DriftItem[] = [];
  await stack.preview({
    refresh: true,
    diff: true,
    color: "never",
    onOutput,
    onEvent: (e) => {
      const md = e.resourcePreEvent?.metadata;
      if (
        !md ||
        md.op === "same" ||
        md.op === "read" ||
        md.op === "refresh" ||
        md.type === "pulumi:pulumi:Stack"
      )
        return;
      if (md.type.startsWith("hostnet:")) return; // components have no state of their own
      const type = md.type.split(":").pop() ?? md.type;
      items.push({
        resource: md.urn.split("::").pop() ?? md.urn,
        type,
        op: md.op,
        properties: md.diffs?.length
          ? md.diffs
          : changedProperties(md.old?.outputs, md.new?.inputs),
        machineId: md.old?.outputs?.machineId,
        objects: driftObjects(type, md.old?.outputs ?? md.new?.inputs),
      });
    },
  });
  return items;
}

const BOOKKEEPING = new Set([
  "__provider",
  "machineId",
  "created",
  "credentials",
  "connection",
]);

/**
 * Dynamic providers cannot hand the engine the list of changed keys, so name them ourselves:
 * the paths (two levels deep) where the refreshed state and the desired inputs differ.
 */
export function changedProperties(
  live: Record<string, unknown> | undefined,
  desired: Record<string, unknown> | undefined,
  prefix = "",
  depth = 2,
): string[] {
  const out: string[] = [];
  for (const key of Object.keys(desired ?? {})) {
    if (!prefix && BOOKKEEPING.has(key)) continue;
    const a = live?.[key];
    const b = desired?.[key];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const nested =
      depth > 1 &&
      a &&
      b &&
      typeof a === "object" &&
      typeof b === "object" &&
      !Array.isArray(a) &&
      !Array.isArray(b);
    const inner = nested
      ? changedProperties(
          a as Record<string, unknown>,
          b as Record<string, unknown>,
          `${prefix}${key}.`,
          depth - 1,
        )
      : [];
    out.push(...(inner.length > 0 ? inner : [`${prefix}${key}`]));
  }
  return out;
}

export function formatDrift(items: DriftItem[]): string {
  if (items.length === 0)
    return "no drift: every host matches the desired state";
  const lines = items.map((d) => {
    const what =
      d.op === "create"
        ? "missing on the host (will be created)"
        : d.op === "delete"
          ? "not desired (will be deleted)"
          : `${d.op}: ${d.properties.join(", ") || "(properties)"}`;
    return `  DRIFT ${d.type} ${d.resource}: ${what}`;
  });
  return `${items.length} drifted object(s):\n${lines.join("\n")}`;
}
