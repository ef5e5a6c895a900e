// One plan per host: every resource a HostTopology makes goes through its HostPlan, which records
// (kind, name, props, parent) as it instantiates the resource. The host's boot restore script and
// its health checks are derived from that one record, so they cannot drift from the resources.
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

export class HostPlan {
  readonly resources: PlannedResource[] = [];
  /** Links and fdb entries the host's health check expects, in the order they were planned. */
  readonly health: Pick<HealthChecks, "links" | "fdb"> = { links: [], fdb: [] };

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

  /** The health check expects this link up (netns undefined: the root namespace). */
  expectLink(name: string, netns?: string): void {
    this.expect({ links: [netns === undefined ? { name } : { netns, name }] });
  }

  expectFdb(bridge: string, mac: string): void {
    this.expect({ fdb: [{ bridge, mac }] });
  }

  /** Add expectations; one already expected (a VM's own entry that its segment also programs) stays once. */
  expect(more: Partial<Pick<HealthChecks, "links" | "fdb">>): void {
    const has = (list: object[], x: object) =>
      list.some((y) => JSON.stringify(y) === JSON.stringify(x));
    for (const l of more.links ?? [])
      if (!has(this.health.links, l)) this.health.links.push(l);
    for (const f of more.fdb ?? [])
      if (!has(this.health.fdb, f)) this.health.fdb.push(f);
  }
}
