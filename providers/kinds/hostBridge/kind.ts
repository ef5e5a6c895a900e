// The HostBridge kind. Every write plans from (desired, observed) with plan.ts. Enslaving (or
// releasing) the interface that carries the SSH session would cut hostnet off from the host
// mid-change: that is refused unless safeApply is set, and then the same plan runs under
// commit-confirm (host/safeApply.ts), its steps' undos forming the revert.
import { createHash } from "node:crypto";
import { commitConfirm, ipBatchLine } from "../../host";
import { ABSENT, found, isGone, isHostnetMark, Link } from "../../state";
import { batchLine } from "../../transport";
import { applyCreating } from "../applyPlan";
import type { Step } from "../plan";
import { KindContext, ResourceKind, upLink } from "../kind";
import { carries, pathOn, PathState, releasePlan, Tokens } from "./path";
import {
  confirmable,
  hostBridgePlanner as planner,
  HostBridgeObserved,
  liveProps,
} from "./plan";
import {
  checkUplink,
  checkUplinkChange,
  managedAfter,
  managementAddresses,
  managementUse,
  refuseManagement,
} from "./guard";
import { HostBridgeProps, nsOf, STP_FORWARD_DELAY, where } from "./schema";

type P = HostBridgeProps;

async function observe(ctx: KindContext, p: P): Promise<HostBridgeObserved> {
  const o = planner.observe(await ctx.host.snapshot(planner.scope(p)), p);
  const bridge = o?.bridge;
  if (bridge && bridge.kind !== "bridge") {
    throw new Error(
      `${ctx.host.label} (${where(p)}): ${p.name} exists but is a ${bridge.infoKind ?? bridge.kind}, not a bridge. ` +
        `Rename the HostBridge or remove that interface by hand.`,
    );
  }
  return o ?? { links: [], routes: [] };
}

// ------------------------------------------------------------------ applying a plan

/** The kernel's bare "Operation not supported" for vlan_filtering, said so an operator can act on it. */
function explainVlanFiltering(ctx: KindContext, p: P, err: unknown): unknown {
  if (
    p.vlanFiltering === undefined ||
    !/Operation not supported/.test(String(err))
  )
    return err;
  return new Error(
    `${ctx.host.label} (${where(p)}): the kernel refuses vlan_filtering on bridge ${p.name} ("Operation not supported"): ` +
      `it was built without CONFIG_BRIDGE_VLAN_FILTERING. Remove vlanFiltering from this HostBridge or use a kernel that has it.\n${String(err)}`,
  );
}

function adoptHint(ctx: KindContext, p: P): Error {
  return new Error(
    `${ctx.host.label} (${where(p)}): bridge ${p.name} already exists. To manage it with hostnet, set adopt: true on this HostBridge.`,
  );
}

function moved(path: PathState): string {
  const routes =
    path.routes.length > 0 ? ` and ${path.routes.length} route(s)` : "";
  return path.addrs.length > 0
    ? `${path.addrs.join(", ")}${routes}`
    : `no addresses${routes}`;
}

/** Same object, same host-side directory; the hash keeps names that differ only in . or @ apart. */
function confirmId(p: P): string {
  const h = createHash("sha256")
    .update(`${nsOf(p)}/${p.name}`)
    .digest("hex")
    .slice(0, 8);
  return `hostbridge-${p.name}-${h}`;
}

async function commitConfirmed(
  ctx: KindContext,
  p: P,
  plan: { apply: Tokens; revert: Tokens },
  what: string,
): Promise<void> {
  await commitConfirm(ctx.host, {
    id: confirmId(p),
    what: `${what} (${where(p)})`,
    apply: [ipBatchLine(p.netns, plan.apply)],
    revert: [ipBatchLine(p.netns, plan.revert, { force: true })],
    confirmTimeoutSeconds: p.confirmTimeoutSeconds,
  });
}

/** All steps as one `ip -batch` (one round trip; it stops at its first failing line). */
async function applyAtOnce(
  ctx: KindContext,
  p: P,
  steps: readonly Step[],
  what: string,
): Promise<void> {
  if (steps.length === 0) return;
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: p.netns,
      lines: steps.flatMap((s) => (s.op.kind === "batch" ? s.op.lines : [])),
      what,
    });
  } catch (err) {
    throw explainVlanFiltering(ctx, p, err);
  }
}

// ------------------------------------------------------------------ release and delete

/**
 * Delete the bridge, or release its uplink, when the bridge carries the management address: the
 * address and routes go back onto the uplink in the same step; the revert rebuilds what was.
 */
async function safeRelease(
  ctx: KindContext,
  p: P,
  o: HostBridgeObserved & { bridge: Link },
  uplinkName: string | undefined,
  del: boolean,
  own: string,
): Promise<void> {
  const reason = `${p.name} carries ${own}, the address this SSH connection uses`;
  const action = del
    ? `delete bridge ${p.name}`
    : `release ${uplinkName} from bridge ${p.name}`;
  // delete and release see the recorded outputs: the flag must be in the state before.
  const first = ` To ${del ? "delete" : "release"} it that way, set safeApply: true and run pulumi up first (it only records the flag), then ${del ? "delete" : "release"} it.`;
  if (!p.safeApply) refuseManagement(ctx, p, action, reason, first);
  const uplink = o.links.find(
    (l) => l.name === uplinkName && l.master === p.name,
  );
  if (!uplink) {
    throw new Error(
      `${ctx.host.label} (${where(p)}): refusing to ${action}: ${reason}, and the bridge has no uplink of hostnet's to move ` +
        `the address back to. Nothing was changed. Move the management address off ${p.name} from a console first.`,
    );
  }
  const plan = releasePlan(p, o, uplink, del);
  await commitConfirmed(
    ctx,
    p,
    plan,
    `${action} and move ${moved(plan.path)} back onto ${uplink.name}`,
  );
}

/** Detach our uplink (when still attached here) and optionally the bridge, in one step. */
async function detach(
  ctx: KindContext,
  p: P,
  o: HostBridgeObserved,
  uplink: string | undefined,
  deleteBridge: boolean,
): Promise<void> {
  const lines: string[] = [];
  if (uplink && o.links.find((l) => l.name === uplink)?.master === p.name) {
    const reason = managementUse(
      o.links,
      uplink,
      await managementAddresses(ctx),
    );
    if (reason)
      refuseManagement(
        ctx,
        p,
        `release ${uplink} from bridge ${p.name}`,
        reason,
      );
    lines.push(batchLine(["link", "set", uplink, "nomaster"]));
  }
  if (deleteBridge) lines.push(batchLine(["link", "del", p.name]));
  if (lines.length === 0) return;
  try {
    await ctx.host.run({
      kind: "batch",
      tool: "ip",
      netns: p.netns,
      lines,
      what: deleteBridge
        ? `delete bridge ${p.name}`
        : `release uplink ${uplink} from bridge ${p.name}`,
    });
  } catch (err) {
    if (!isGone(err)) throw err;
  }
}

const present = (o: HostBridgeObserved, bridge: Link) => ({ ...o, bridge });

export const hostBridgeKind: ResourceKind<typeof HostBridgeProps> = {
  type: "HostBridge",
  schema: HostBridgeProps,
  replaceOn: ["name", "netns"],
  // safeApply and confirmTimeoutSeconds are compared so that a change to them is recorded (delete sees outputs only).
  compared: [
    "name",
    "netns",
    "stp",
    "forwardDelay",
    "ageingTime",
    "mcastSnooping",
    "vlanFiltering",
    "mtu",
    "mac",
    "up",
    "uplink",
    "safeApply",
    "confirmTimeoutSeconds",
  ],
  expects: upLink,
  id: (p) => `bridge/${p.netns ?? "-"}/${p.name}`,
  planner,

  validate(p) {
    const issues: Array<[string, string]> = [];
    if (p.managedUplink !== undefined)
      issues.push([
        "managedUplink",
        "is an output that hostnet sets; remove it from the inputs",
      ]);
    if (p.uplink === p.name)
      issues.push(["uplink", `a bridge cannot be its own uplink (${p.name})`]);
    if (
      p.stp &&
      p.forwardDelay !== undefined &&
      p.forwardDelay < STP_FORWARD_DELAY.min
    ) {
      issues.push([
        "forwardDelay",
        `with stp on the kernel needs ${STP_FORWARD_DELAY.min}–${STP_FORWARD_DELAY.max} centiseconds (2–30 s), got ${p.forwardDelay}`,
      ]);
    }
    return issues;
  },

  async create(ctx, p) {
    const o = await observe(ctx, p);
    if (o.bridge) throw adoptHint(ctx, p);
    const management = p.uplink ? await managementAddresses(ctx) : [];
    const risky = p.uplink
      ? checkUplink(ctx, p, o.links, management) !== undefined
      : false;
    const steps = planner.plan(p, o, {
      owner: ctx.owner,
      management: risky ? management : [],
    });
    if (risky) {
      const path = pathOn(o, p.uplink!);
      await commitConfirmed(
        ctx,
        p,
        confirmable(steps),
        `create bridge ${p.name}, enslave ${p.uplink} and move ${moved(path)} onto ${p.name}`,
      );
    } else {
      await applyCreating(ctx.host, steps, {
        refuse: (err) =>
          /File exists/.test(String(err)) ? adoptHint(ctx, p) : undefined,
        explain: (err) => explainVlanFiltering(ctx, p, err),
      });
    }
    return p.uplink ? { managedUplink: p.uplink } : {};
  },

  async find(ctx, p) {
    const o = planner.observe(await ctx.host.snapshot(planner.scope(p)), p);
    return o?.bridge
      ? found(
          o.bridge.kind === "bridge" ? o.bridge.alias : undefined,
          ctx.owner,
        )
      : ABSENT;
  },

  /** A leftover of this resource: an uplink found enslaved to it was enslaved by hostnet. */
  converge(ctx, live, p) {
    return hostBridgeKind.update(ctx, { ...live, managedUplink: p.uplink }, p);
  },

  async read(ctx, p) {
    const o = await observe(ctx, p);
    return o.bridge ? liveProps(p, o.bridge, o.links) : null;
  },

  async update(ctx, olds, news) {
    const o = await observe(ctx, news);
    if (!o.bridge) {
      throw new Error(
        `${ctx.host.label} (${where(news)}): bridge ${news.name} is gone. Run pulumi up --refresh (or pulumi refresh, then up) to recreate it.`,
      );
    }
    const addrs =
      news.uplink || olds.uplink || news.safeApply
        ? await managementAddresses(ctx)
        : [];
    const uplinkRisk =
      news.uplink || olds.uplink
        ? checkUplinkChange(ctx, olds, news, o.links, addrs)
        : false;
    const safe = news.safeApply && (uplinkRisk || !!carries(o.bridge, addrs));
    const steps = planner.plan(news, o, {
      owner: ctx.owner,
      management: safe ? addrs : [],
      formerUplink: olds.uplink,
    });
    if (safe && steps.length > 0)
      await commitConfirmed(
        ctx,
        news,
        confirmable(steps),
        `update bridge ${news.name} on the management path`,
      );
    else if (!safe)
      await applyAtOnce(ctx, news, steps, `update bridge ${news.name}`);
    return { managedUplink: managedAfter(olds, news, o.links) };
  },

  async delete(ctx, p) {
    const o = await observe(ctx, p);
    if (!o.bridge) return;
    if (!isHostnetMark(o.bridge.alias)) {
      throw new Error(
        `${ctx.host.label} (${where(p)}): bridge ${p.name} does not carry the hostnet alias, so hostnet did not create it; ` +
          `not deleting it. Delete it by hand if it should go, then drop it from the state (pulumi state delete).`,
      );
    }
    const own = carries(o.bridge, await managementAddresses(ctx));
    if (own)
      return safeRelease(ctx, p, present(o, o.bridge), p.uplink, true, own);
    await detach(ctx, p, o, p.uplink, true);
  },

  /** An adopted bridge stays; only an uplink that hostnet itself enslaved is let go. */
  async release(ctx, p) {
    if (!p.managedUplink) return;
    const o = planner.observe(await ctx.host.snapshot(planner.scope(p)), p) ?? {
      links: [],
      routes: [],
    };
    const own = carries(o.bridge, await managementAddresses(ctx));
    const ours =
      o.links.find((l) => l.name === p.managedUplink)?.master === p.name;
    if (o.bridge && own && ours) {
      return safeRelease(
        ctx,
        p,
        present(o, o.bridge),
        p.managedUplink,
        false,
        own,
      );
    }
    await detach(ctx, p, o, p.managedUplink, false);
  },
};
