// What one resource kind supplies to the generic lifecycle in runtime.ts: its schema, which
// properties force replacement, and how to create, read, update and delete it on a host.
import { z } from "zod";
import type { Host, AddressUse } from "../host";
import { NetnsName } from "../schema";
import type { Finding } from "../state";
import type { Planner } from "./plan";

/** Properties every resource has besides its own. */
export const CommonProps = z.object({
  /** Connection without secrets (host, port, user, pinned key, sudo...). */
  connection: z.record(z.string(), z.unknown()),
  /** Secret half of the connection: private key, passphrase. */
  credentials: z.record(z.string(), z.unknown()).optional(),
  adopt: z.boolean().default(false),
  /** Identifies the resource on the host (ownership.ts); set by HostnetResource, never compared. */
  ownerToken: z
    .string()
    .regex(
      /^[0-9a-f]{8}-[0-9a-f]{10}$/,
      "must be 8 and 10 hex digits joined by '-' (set by hostnet)",
    )
    .optional(),
});

export interface KindContext {
  host: Host;
  /** The resource's owner token (ownership.ts); undefined for resources of older programs. */
  owner?: string;
}

/**
 * What a host's health check can expect of a resource once it is applied: its links admin-up and
 * its static bridge entries present (HostHealth's checks have this shape).
 */
export interface Expectations {
  links?: Array<{ netns?: string; name: string }>;
  fdb?: Array<{ netns?: string; bridge: string; mac: string }>;
}

/** A link the props set up: expected up (a link declared down is expected nothing of). */
export function upLink(p: {
  name: string;
  netns?: string;
  up: boolean;
}): Expectations {
  return p.up
    ? { links: [{ ...(p.netns ? { netns: p.netns } : {}), name: p.name }] }
    : {};
}

/** Live values of a resource's managed properties, or null when the object is gone. */
export type LiveState = Record<string, unknown> | null;

export interface ResourceKind<S extends z.ZodObject = z.ZodObject> {
  type: string;
  /** Needs no host (e.g. a rollout gate): no connection, no identity check. */
  hostless?: boolean;
  /** Kind-specific properties (CommonProps are added by the runtime). */
  schema: S;
  /** Properties whose change needs a new object; the rest are updated in place. */
  replaceOn: ReadonlyArray<keyof z.infer<S> & string>;
  /**
   * Top-level properties whose change needs a new object, for identity that sits inside a
   * property (e.g. the name of one end of a VethLink); used by diff in addition to replaceOn.
   * Gets the raw old outputs and new inputs (values may be the engine's "unknown" marker).
   */
  replaces?: (olds: Record<string, any>, news: Record<string, any>) => string[];
  /** Properties compared for drift and diff (defaults to every schema key). */
  compared?: ReadonlyArray<keyof z.infer<S> & string>;
  /** Every address and route the props put on the host, and every root-namespace interface they filter or set sysctls on, for the management-path check at preview. */
  addressUses?: (p: z.infer<S>) => AddressUse[];
  /** What the host's health check expects of this resource once applied (derived per host, hostPlan.ts). */
  expects?: (p: z.infer<S>) => Expectations;
  /** Cross-field checks that zod cannot express per field; return [path, message] pairs. */
  validate?: (p: z.infer<S>) => Array<[string, string]>;
  id(p: z.infer<S>): string;
  /**
   * The kind's pure planner (plan.ts). Kinds that have one write through it only: create, update,
   * converge, commit-confirm and the boot restore script all plan from (desired, observed).
   */
  planner?: Planner<z.infer<S>, any>;
  /** Create the object; returns extra outputs (e.g. a device path). Must leave nothing behind on failure. */
  create(ctx: KindContext, p: z.infer<S>): Promise<Record<string, unknown>>;
  /**
   * What is on the host where the object should be, and whose mark it carries. With it, a create
   * that finds this resource's own object (left by a run that died before the state was written)
   * adopts and converges it instead of failing (runtime.ts); without it, create always makes.
   */
  find?(ctx: KindContext, p: z.infer<S>): Promise<Finding>;
  /** Converge this resource's own leftover from its live values; default: update(live, desired). */
  converge?(
    ctx: KindContext,
    live: z.infer<S>,
    p: z.infer<S>,
  ): Promise<Record<string, unknown>>;
  /** Read the managed properties from the live kernel (host snapshot). */
  read(ctx: KindContext, p: z.infer<S>): Promise<LiveState>;
  /** Change what differs between olds and news in place. */
  update(
    ctx: KindContext,
    olds: z.infer<S>,
    news: z.infer<S>,
  ): Promise<Record<string, unknown>>;
  /** Remove the object hostnet created; tolerate it being gone already. */
  delete(ctx: KindContext, p: z.infer<S>): Promise<void>;
  /**
   * Live facts the kind records that can change while its inputs stay the same (a health verdict).
   * Called by every diff, i.e. on every preview and up: returns the output properties whose live
   * value no longer matches `olds` (the recorded outputs); any makes the engine run `update`.
   */
  recheck?(
    ctx: KindContext,
    p: z.infer<S>,
    olds: Record<string, any>,
  ): Promise<string[]>;
  /**
   * Pure, no host: the recorded outputs (`olds`) that this release would no longer produce for the
   * same inputs (e.g. a compiler fix adds a chain); any makes the engine run `update`, so a fix
   * reaches hosts without waiting for an input to change.
   */
  outdated?(p: z.infer<S>, olds: Record<string, any>): string[];
  /** Let go of an adopted object (restore what hostnet changed on it); default: do nothing. */
  release?(ctx: KindContext, p: z.infer<S>): Promise<void>;
}

export const OptionalNetns = NetnsName.optional();
