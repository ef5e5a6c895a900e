// The VmNetns kind: every write is read snapshot → observe → plan (plan.ts) → apply.
import { ABSENT, found, isGone, isHostnetMark } from "../../state";
import { applyCreating } from "../applyPlan";
import { KindContext, ResourceKind } from "../kind";
import { applySteps } from "../plan";
import { deleteNetnsOp, vmNetnsPlanner as planner } from "./plan";
import { VmNetnsProps } from "./schema";

async function observe(ctx: KindContext, p: VmNetnsProps) {
  return planner.observe(await ctx.host.snapshot(planner.scope(p)), p);
}

function notOurs(ctx: KindContext, p: VmNetnsProps, cause?: unknown): Error {
  return new Error(
    `${ctx.host.label}: netns ${p.name} already exists and this VmNetns did not make it. Nothing was changed. To manage it with hostnet, set adopt: true on this VmNetns.`,
    { cause },
  );
}

export const vmNetnsKind: ResourceKind<typeof VmNetnsProps> = {
  type: "VmNetns",
  schema: VmNetnsProps,
  replaceOn: ["name"],
  // force is compared so that setting it is recorded: delete sees the recorded outputs only.
  compared: ["name", "sysctls", "loopbackUp", "force"],
  id: (p) => `netns/${p.name}`,
  planner,

  async create(ctx, p) {
    // The runtime has already converged this resource's own leftover: anything here is not ours.
    if (await observe(ctx, p)) throw notOurs(ctx, p);
    await applyCreating(ctx.host, planner.plan(p, undefined, ctx), {
      refuse: (err) =>
        /File exists/.test(String(err)) ? notOurs(ctx, p, err) : undefined,
    });
    return {};
  },

  async find(ctx, p) {
    const observed = await observe(ctx, p);
    return observed ? found(observed.mark, ctx.owner) : ABSENT;
  },

  async read(ctx, p) {
    const observed = await observe(ctx, p);
    if (!observed) return null;
    const { name, sysctls, loopbackUp } = observed;
    return { name, sysctls, loopbackUp };
  },

  async update(ctx, _olds, news) {
    const observed = await observe(ctx, news);
    if (!observed)
      throw new Error(
        `${ctx.host.label}: netns ${news.name} is gone, so it cannot be updated. Nothing was changed. Run pulumi up --refresh to recreate it.`,
      );
    await applySteps(ctx.host, planner.plan(news, observed, ctx));
    return {};
  },

  async delete(ctx, p) {
    const ns = (await ctx.host.snapshot(planner.scope(p))).namespaces[p.name];
    if (!ns) return;
    const foreign = ns.links
      .filter((l) => l.name !== "lo" && !isHostnetMark(l.alias))
      .map((l) => l.name);
    if (foreign.length > 0 && !p.force) {
      throw new Error(
        `${ctx.host.label}: netns ${p.name} still holds interfaces hostnet does not own (${foreign.join(", ")}); ` +
          `not deleting it, because that would destroy them. Nothing was changed. Move them out (ip -n ${p.name} link ` +
          `set <dev> netns 1) or delete them, or set force: true on this VmNetns and run pulumi up (that records the ` +
          `flag) before deleting it.`,
      );
    }
    try {
      await ctx.host.run(deleteNetnsOp(p.name, `delete netns ${p.name}`));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};
