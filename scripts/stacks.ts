// Running the stacks/ program for an environment through the Automation API (in-process language
// runtime), with the drift report the GitOps gate prints: each drifted object and property.
import * as path from "path";
import * as automation from "@pulumi/pulumi/automation";
import { vmKey } from "../components/spec";
import { StackConfigError } from "../stacks/config";
import { ENGINE_PARALLEL, inlineStack, PROJECT_ROOT } from "./engine";

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
  /** The VM the resource belongs to: its name and the key its interface and namespace names derive from. */
  vm?: { name: string; key: string };
}

/** A resource's place in the component tree, from the engine's events: its type and parent URN. */
export interface TreeNode {
  type: string;
  parent?: string;
}

const urnName = (urn: string): string => urn.split("::").pop() ?? urn;

/**
 * The name of the VM a resource belongs to, from the component tree: a resource under a VM's
 * attachment component (`<host>-<vm>`, child of the host's `hostnet:topology:Host` `<host>`), or a
 * segment's FdbEntry for a member VM (`<host>-seg-<segment>-<vm>` under the Segment component).
 */
export function vmOfResource(
  urn: string,
  tree: ReadonlyMap<string, TreeNode>,
): string | undefined {
  const type = tree.get(urn)?.type ?? "";
  const seen = new Set<string>();
  for (let at = tree.get(urn)?.parent; at && !seen.has(at);) {
    seen.add(at);
    const node = tree.get(at);
    if (!node) return undefined;
    if (node.type === "hostnet:topology:Segment")
      return type.endsWith(":FdbEntry")
        ? suffixAfter(urnName(urn), urnName(at))
        : undefined;
    if (node.type.startsWith("hostnet:attachment:")) {
      const host = node.parent ? tree.get(node.parent) : undefined;
      return host?.type === "hostnet:topology:Host"
        ? suffixAfter(urnName(at), urnName(node.parent!))
        : undefined;
    }
    at = node.parent;
  }
  return undefined;
}

const suffixAfter = (name: string, prefix: string): string | undefined =>
  name.startsWith(`${prefix}-`) && name.length > prefix.length + 1
    ? name.slice(prefix.length + 1)
    : undefined;

/** The VMs' `ifname` overrides in the stack's config (hostnet:vms), by VM name; none if unreadable. */
async function configuredIfnames(
  stack: automation.Stack,
): Promise<Map<string, string>> {
  try {
    const raw = (await stack.getAllConfig())["hostnet:vms"]?.value;
    const vms: unknown = raw ? JSON.parse(raw) : [];
    return new Map(
      (Array.isArray(vms) ? vms : []).flatMap((v) =>
        typeof v?.name === "string" && typeof v?.ifname === "string"
          ? [[v.name, v.ifname] as const]
          : [],
      ),
    );
  } catch {
    return new Map();
  }
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
    case "ArpAnswer":
      return typeof p.table === "string"
        ? [{ netns: ns, name: `nft:netdev:${p.table}` }]
        : [];
    default:
      return end(p);
  }
}

/** `preview --refresh`: what the live hosts differ in from the desired state. */
export async function driftReport(
  stack: automation.Stack,
  onOutput?: (s: string) => void,
): Promise<DriftItem[]> {
  const items: Array<DriftItem & { urn: string }> = [];
  const tree = new Map<string, TreeNode>();
  await stack.preview({
    refresh: true,
    diff: true,
    color: "never",
    // The same engine settings as `up` (and the bench's refresh): the CLI's default is 8.
    parallel: ENGINE_PARALLEL,
    onOutput,
    onEvent: (e) => {
      const md = e.resourcePreEvent?.metadata;
      const state = md?.new ?? md?.old;
      if (md && state)
        tree.set(md.urn, { type: md.type, parent: state.parent || undefined });
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
        urn: md.urn,
        resource: urnName(md.urn),
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
  const ifnames = items.length > 0 ? await configuredIfnames(stack) : new Map();
  return items.map(({ urn, ...item }) => {
    const name = vmOfResource(urn, tree);
    return name === undefined
      ? item
      : {
          ...item,
          vm: { name, key: vmKey({ name, ifname: ifnames.get(name) }) },
        };
  });
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
    const vm = d.vm ? ` [VM ${d.vm.name}, key ${d.vm.key}]` : "";
    return `  DRIFT ${d.type} ${d.resource}: ${what}${vm}`;
  });
  return `${items.length} drifted object(s):\n${lines.join("\n")}`;
}
