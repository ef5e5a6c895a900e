// One plan per host: every resource a HostTopology makes goes through its HostPlan, which records
// (kind, name, props, parent) as it instantiates the resource. The host's boot restore script and
// its health checks are derived from that one record (each kind's planner and `expects`), so they
// cannot drift from the resources.
import * as pulumi from "@pulumi/pulumi";
import { ArpAnswer } from "../providers/kinds/arpAnswer";
import { FdbEntry } from "../providers/kinds/fdbEntry";
import { FilterChain } from "../providers/kinds/filterChain";
import { HostBridge } from "../providers/kinds/hostBridge";
import type { HealthChecks } from "../providers/kinds/hostHealth";
import { MacvlanPort } from "../providers/kinds/macvlanPort";
import { TapPort } from "../providers/kinds/tapPort";
import { VethLink } from "../providers/kinds/vethLink";
import { VmNetns } from "../providers/kinds/vmNetns";
import { VxlanDevice } from "../providers/kinds/vxlanDevice";
import type { Expectations, ResourceKind } from "../providers/kinds/kind";
import { ownerToken } from "../providers/state";
import type { ConnectionInput } from "../providers/transport";

/** The resource classes a topology makes, by kind (the kind is the resource's type token). */
const CLASSES = {
  ArpAnswer,
  FdbEntry,
  FilterChain,
  HostBridge,
  MacvlanPort,
  TapPort,
  VethLink,
  VmNetns,
  VxlanDevice,
};
export type PlannedKind = keyof typeof CLASSES;
type ArgsOf<K extends PlannedKind> = ConstructorParameters<
  (typeof CLASSES)[K]
>[1];
/** A kind's props as a topology gives them: plain values, the connection comes from the plan. */
export type PlannedProps<K extends PlannedKind> = Omit<ArgsOf<K>, "connection">;

export interface PlannedResource {
  kind: PlannedKind;
  name: string;
  props: Record<string, unknown>;
  parent?: pulumi.Resource;
  /** The resource's owner token (the marks its objects carry on the host). */
  owner: string;
}

/** The kinds' registry as the plan needs it (the runtime's KINDS fits). */
export type KindRegistry = Readonly<
  Record<string, Pick<ResourceKind, "schema" | "expects">>
>;

/**
 * What the host's health check expects of the planned resources: each kind's `expects` of its
 * parsed props, in plan order, each link and entry once. Props that do not parse expect nothing
 * here; the resource itself refuses them at preview, naming the field.
 */
export function expectedHealth(
  resources: readonly PlannedResource[],
  kinds: KindRegistry,
): Pick<HealthChecks, "links" | "fdb"> {
  const out: Required<Expectations> = { links: [], fdb: [] };
  const seen = new Set<string>();
  const add = <T>(list: T[], x: T) => {
    const key = JSON.stringify(x);
    if (seen.has(key)) return;
    seen.add(key);
    list.push(x);
  };
  for (const r of resources) {
    const kind = kinds[r.kind];
    const parsed = kind?.expects && kind.schema.safeParse(r.props);
    if (!parsed?.success) continue;
    const e = kind.expects!(parsed.data);
    for (const l of e.links ?? []) add(out.links, l);
    for (const f of e.fdb ?? []) add(out.fdb, f);
  }
  return out;
}

export class HostPlan {
  readonly resources: PlannedResource[] = [];

  constructor(readonly connection: pulumi.Input<ConnectionInput>) {}

  /** Instantiate one resource of the host and record it. */
  make<K extends PlannedKind>(
    kind: K,
    name: string,
    props: PlannedProps<K>,
    opts: pulumi.CustomResourceOptions,
  ): InstanceType<(typeof CLASSES)[K]> {
    this.resources.push({
      kind,
      name,
      props: props as Record<string, unknown>,
      parent: opts.parent,
      owner: ownerToken(pulumi.getProject(), pulumi.getStack(), kind, name),
    });
    const Cls = CLASSES[kind] as unknown as new (
      n: string,
      a: unknown,
      o: pulumi.CustomResourceOptions,
    ) => InstanceType<(typeof CLASSES)[K]>;
    return new Cls(name, { connection: this.connection, ...props }, opts);
  }
}
