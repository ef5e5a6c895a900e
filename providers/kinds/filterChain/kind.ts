// FilterChain: bridge-family nftables filtering for the ports it names (plan.ts: one atomic
// `nft -f` per apply). Every write is "read the scoped snapshot → observe → plan → apply".
//
// Drift. After each apply the table is read back and the digest of its canonical form is recorded
// in `appliedDigest`. read() digests the live table the same way and reports `inSync: false` when
// the two differ. `inSync` is a compared prop whose desired value is always true, so drift shows in
// the generic diff as an update of `inSync`, and `up` re-applies the whole table. Dynamic sets
// filled by traffic (possible through `raw`) change the digest too: keep such state out of this table.
//
// Ownership. The table carries `comment "hostnet:<owner token>"`. nft 1.0.6 accepts table comments
// but leaves them out of its JSON output, so the snapshot cannot see them: create() checks an
// existing table with one text listing (`nft list table`), and only when the table is already
// there. This resource's own table, or one of an older release (plain "hostnet"), is replaced;
// another's needs `adopt: true`. The raw check needs the host, so it happens at `up`, not at preview.
import type { HostSnapshot, NftRuleset } from "../../state";
import {
  isGone,
  judgeMark,
  NftRuleset as NftRulesetSchema,
  OWNER_ALIAS,
  ROOT_NS,
} from "../../state";
import { formatIssues } from "../../schema";
import { applySteps } from "../plan";
import { KindContext, ResourceKind } from "../kind";
import { FilterChainSpec } from "./nftSpec";
import { FAMILY, FilterChainProps, specOf, where } from "./schema";
import {
  filterChainPlanner as planner,
  ownedScript,
  removal,
  tableDigest,
} from "./plan";

type P = FilterChainProps;

/** Cross-field rules of the spec (duplicate ports, raw problems) and anything the compiler refuses. */
function validate(p: P): Array<[string, string]> {
  const r = FilterChainSpec.safeParse(specOf(p));
  if (!r.success) {
    return formatIssues(r.error).map((line) => {
      const cut = line.indexOf(": ");
      return [line.slice(0, cut), line.slice(cut + 2)] as [string, string];
    });
  }
  try {
    ownedScript(p);
  } catch (err) {
    return [["ports", (err as Error).message]];
  }
  return [];
}

/** The nft JSON document in a command's output (stderr is merged into it by the queue). */
function parseListing(out: string, what: string): NftRuleset {
  const line = out.split("\n").find((l) => l.startsWith('{"nftables"'));
  if (line === undefined)
    throw new Error(
      `${what}: nft printed no JSON: ${out.trim().slice(0, 400)}`,
    );
  return NftRulesetSchema.parse(JSON.parse(line));
}

/** The scoped snapshot; throws rather than calling an unreadable ruleset empty. */
async function snapshotOf(ctx: KindContext, p: P): Promise<HostSnapshot> {
  const snap = await ctx.host.snapshot(planner.scope(p));
  if (snap.namespaces[p.netns ?? ROOT_NS]?.failedSections.includes("nft")) {
    throw new Error(
      `${ctx.host.label}: could not read the nft ruleset of ${where(p)}; is nft installed and working there? Nothing was changed.`,
    );
  }
  return snap;
}

/** Plan against the fresh snapshot and apply, then read back what the kernel holds. */
async function apply(
  ctx: KindContext,
  p: P,
  snap?: HostSnapshot,
): Promise<Record<string, unknown>> {
  const live = planner.observe(snap ?? (await snapshotOf(ctx, p)), p);
  await applySteps(ctx.host, planner.plan(p, live, { owner: ctx.owner }));
  const target = `table ${FAMILY} ${p.table} in ${where(p)}`;
  const out = await ctx.host.run({
    kind: "sh",
    netns: p.netns,
    commands: [["nft", "-j", "list", "table", FAMILY, p.table]],
    what: `read back ${target}`,
  });
  const digest = tableDigest(
    parseListing(out, `${ctx.host.label}: read back ${target}`),
    p.table,
  );
  if (digest === null)
    throw new Error(
      `${ctx.host.label}: ${target} is missing right after it was applied; is another tool deleting it?`,
    );
  return {
    appliedDigest: digest,
    inSync: true,
    chains: ownedScript(p).chains,
    portCount: p.ports.length,
  };
}

async function assertOwnedOrAbsent(
  ctx: KindContext,
  snap: HostSnapshot,
  p: P,
): Promise<void> {
  const ns = snap.namespaces[p.netns ?? ROOT_NS];
  if (!ns && p.netns) {
    throw new Error(
      `${ctx.host.label}: netns ${p.netns} does not exist; create it first (VmNetns) and make this FilterChain depend on it.`,
    );
  }
  if (!planner.observe(snap, p)) return;
  const text = await ctx.host.run({
    kind: "sh",
    netns: p.netns,
    commands: [["nft", "list", "table", FAMILY, p.table]],
    what: `inspect existing table ${FAMILY} ${p.table}`,
  });
  const comment = new RegExp(
    `^table ${FAMILY} ${p.table} \\{\\n\\s*comment "([^"]*)"\\s*$`,
    "m",
  ).exec(text)?.[1];
  // This resource's own table (a run that died before the state was written made it) or one of an
  // older release (plain "hostnet") is replaced; another resource's table or a stranger's is not.
  const verdict = judgeMark(comment, ctx.owner);
  if (verdict !== "mine" && comment !== OWNER_ALIAS) {
    const whose =
      verdict === "none"
        ? `hostnet did not make it (no comment "${OWNER_ALIAS}")`
        : `another hostnet resource made it (comment "${comment}")`;
    throw new Error(
      `${ctx.host.label}: table ${FAMILY} ${p.table} already exists in ${where(p)} and ${whose}. Nothing was changed. ` +
        `To manage it with this FilterChain, set adopt: true on it (the next change replaces its contents), or choose another table name.`,
    );
  }
}

export const filterChainKind: ResourceKind<typeof FilterChainProps> = {
  type: "FilterChain",
  schema: FilterChainProps,
  replaceOn: ["netns", "table"],
  compared: ["netns", "table", "ports", "raw", "inSync"],
  validate,
  // A port the management path runs through (the management interface, or the port of its
  // bridge the session crosses) is refused at preview: a VM's filter never belongs there.
  addressUses: (p) =>
    p.ports.flatMap((port, i) => [
      {
        path: `ports[${i}].port`,
        value: port.port,
        kind: "interface" as const,
        rootNs: !p.netns,
      },
      ...[
        ...port.ipv4.map((v, j) => [v, `ports[${i}].ipv4[${j}]`]),
        ...port.ipv6.map((v, j) => [v, `ports[${i}].ipv6[${j}]`]),
      ].map(([value, path]) => ({
        path,
        value,
        kind: "address" as const,
        rootNs: !p.netns,
      })),
    ]),
  id: (p) => `nft/${p.netns ?? "-"}/${FAMILY}/${p.table}`,
  planner,

  async create(ctx, p) {
    const snap = await snapshotOf(ctx, p);
    await assertOwnedOrAbsent(ctx, snap, p);
    try {
      return await apply(ctx, p, snap);
    } catch (err) {
      // The apply is atomic; only a failed read-back can leave a table behind.
      await ctx.host
        .run(removal(p, `remove half-made table ${FAMILY} ${p.table}`).op)
        .catch(() => undefined);
      throw err;
    }
  },

  async read(ctx, p) {
    const live = planner.observe(await snapshotOf(ctx, p), p);
    if (!live) return null;
    // Adopted tables have no applied digest yet: what is live now is the baseline.
    const inSync =
      p.appliedDigest === undefined || live.digest === p.appliedDigest;
    const props = {
      netns: p.netns,
      table: p.table,
      ports: p.ports,
      raw: p.raw,
      inSync,
      appliedDigest: p.appliedDigest ?? live.digest,
    };
    // The engine's struct encoding refuses undefined values.
    return Object.fromEntries(
      Object.entries(props).filter(([, v]) => v !== undefined),
    );
  },

  update: (ctx, _olds, news) => apply(ctx, news),

  async delete(ctx, p) {
    // Unreadable: try the delete anyway.
    const snap = await snapshotOf(ctx, p).catch(() => undefined);
    if (snap && !planner.observe(snap, p)) return; // already gone
    try {
      await ctx.host.run(removal(p, `delete table ${FAMILY} ${p.table}`).op);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};
