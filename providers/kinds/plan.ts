// The planner contract every kind implements (nmstate's retrieve → plan → apply → verify):
//
//   observe(snapshot, desired)           pure: what the host holds of this resource's objects
//   plan(desired, observed | undefined)  pure: the steps that take the host from observed to desired
//
// One planner serves every path that writes: create (plan against what is there, so a leftover
// of this resource's own earlier run converges instead of failing), update, adopt, commit-confirm
// (each step may carry its undo) and the boot restore script, which is plan(desired, undefined)
// rendered offline. A kind's commands are written once, in its planner.
import type { HostOp } from "../host";
import type { HostSnapshot } from "../state";

/** One step of a plan: a host operation, and what a replay or commit-confirm needs to know. */
export interface Step {
  op: HostOp;
  /**
   * The step makes an object that may already exist when the step is replayed outside hostnet's
   * own apply (the boot restore script runs on every boot and by hand): replay tolerates its
   * failure and goes on; every other step failing is reported.
   */
  makes?: boolean;
  /** The operation that reverts this step, where commit-confirm needs one (host/safeApply.ts). */
  undo?: HostOp;
}

/** Planner inputs besides the desired props. */
export interface PlanContext {
  /** The resource's owner token (state/ownership.ts); undefined marks with the plain legacy mark. */
  owner?: string;
}

export interface Planner<P, O> {
  /** The namespaces this resource's objects live in ("" is the root namespace), for a scoped read. */
  scope(desired: P): string[];
  /** What the snapshot holds of this resource's objects, or undefined when nothing is there. */
  observe(snap: HostSnapshot, desired: P): O | undefined;
  /** The steps, in order, that make the host match desired; [] when it already does. */
  plan(desired: P, observed: O | undefined, ctx: PlanContext): Step[];
}

/** The host operations of a plan, in order. */
export const opsOf = (steps: readonly Step[]): HostOp[] =>
  steps.map((s) => s.op);

/** Apply a plan live, step by step (each step sees the effect of the one before). */
export async function applySteps(
  host: { run(op: HostOp): Promise<string> },
  steps: readonly Step[],
): Promise<void> {
  for (const s of steps) await host.run(s.op);
}
