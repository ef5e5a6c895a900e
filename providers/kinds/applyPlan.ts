// Applying a plan that makes objects, with "nothing half-made": when a step fails, the undo of
// that step and of every step before it runs (last first) before the error is passed on.
import type { HostOp } from "../host";
import { isGone } from "../state";
import type { Step } from "./plan";

export interface CreatingOptions {
  /**
   * The first step failed because the object is someone else's (it appeared since the snapshot):
   * return the error to throw; nothing is undone, since nothing there is this resource's.
   */
  refuse?(err: unknown): Error | undefined;
  /** Words for the operator about the step's failure (e.g. a kernel that lacks a feature). */
  explain?(err: unknown): unknown;
}

async function undo(host: { run(op: HostOp): Promise<string> }, op: HostOp) {
  try {
    await host.run(op);
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

export async function applyCreating(
  host: { run(op: HostOp): Promise<string> },
  steps: readonly Step[],
  opts: CreatingOptions = {},
): Promise<void> {
  for (const [i, step] of steps.entries()) {
    try {
      await host.run(step.op);
    } catch (err) {
      const refusal = i === 0 ? opts.refuse?.(err) : undefined;
      if (refusal) throw refusal;
      for (const done of steps.slice(0, i + 1).reverse())
        if (done.undo) await undo(host, done.undo);
      throw opts.explain ? opts.explain(err) : err;
    }
  }
}
