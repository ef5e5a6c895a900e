// What the kinds that own one whole nftables table share (FilterChain: bridge family, ArpAnswer:
// netdev family): the planner and the create/read/update/delete around it.
//
// Apply. The kind compiles its props into ONE `nft -f` script that deletes and re-creates the whole
// table, so create and every update are atomic: the kernel holds either the old table or the new one.
//
// Drift. A table cannot be turned back into props: what the host holds is observed as the sha256 of
// the table's canonical form (handles and counters stripped, state/nftCanonical.ts). After each apply
// the table is read back and that digest recorded in `appliedDigest`. read() digests the live table
// the same way and reports `inSync: false` when the two differ. `inSync` is a compared prop whose
// desired value is always true, so drift shows in the generic diff as an update of `inSync`, and
// `up` re-applies the whole table. Dynamic sets filled by traffic change the digest too: keep such
// state out of these tables.
//
// Ownership. The table carries `comment "hostnet:<owner token>"`. nft 1.0.6 accepts table comments
// but leaves them out of its JSON output, so the snapshot cannot see them: create() checks an
// existing table with one text listing (`nft list table`), and only when the table is already
// there. This resource's own table, or one of an older release (plain "hostnet"), is replaced;
// another's needs `adopt: true`.
import { createHash } from "crypto";
import { z } from "zod";
import type { HostOp } from "../host";
import { scopeOf } from "../host";
import type { HostSnapshot, NamespaceState } from "../state";
import {
  canonicalNftTable,
  isGone,
  judgeMark,
  NftRuleset,
  OWNER_ALIAS,
  ownerMark,
  ROOT_NS,
} from "../state";
import { formatIssues, NftIdentifier } from "../schema";
import { KindContext, OptionalNetns, ResourceKind } from "./kind";
import { applySteps, Planner, Step } from "./plan";

/** The props every whole-table kind has besides its own content. */
export const NftTableCommon = {
  /** Namespace the table lives in; unset: the root namespace. */
  netns: OptionalNetns,
  table: NftIdentifier,
  /** Desired value is always true; read() reports false when the live table differs from the applied one. */
  inSync: z.boolean().default(true),
  /** An output: sha256 of the canonical table as applied. In the schema only so read() gets it from state. */
  appliedDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
};
export const NftTableProps = z.object(NftTableCommon);
export type NftTableProps = z.infer<typeof NftTableProps>;

/** What a whole-table kind supplies; the rest is shared. */
export interface NftTableModel<P extends NftTableProps> {
  /** The kind's type token, for messages. */
  type: string;
  /** The table's nft family. */
  family: "bridge" | "netdev";
  /** The script that deletes and re-creates the whole table (validated; throws on bad props). */
  compile(p: P): string;
  /** Steps that must succeed before the apply and apply nothing (FilterChain: `nft -c` of raw text). */
  checks?(p: P, script: string): HostOp[];
  /** Outputs besides appliedDigest and inSync, computed at apply. */
  outputs?(p: P): Record<string, unknown>;
  /**
   * Props read from the namespace beyond the table's digest (ArpAnswer: the ports its chains are
   * hooked on, which nft's JSON, and so the digest, leaves out).
   */
  liveProps?(p: P, ns: NamespaceState): Partial<P>;
}

/** The live table, as the digest of its canonical form. */
export interface NftTableObserved {
  digest: string;
}

/** A spec's cross-field issues as the [path, message] pairs of ResourceKind.validate. */
export function specIssues(
  r: z.ZodSafeParseResult<unknown>,
): Array<[string, string]> {
  if (r.success) return [];
  return formatIssues(r.error).map((line) => {
    const cut = line.indexOf(": ");
    return [line.slice(0, cut), line.slice(cut + 2)] as [string, string];
  });
}

/** Words for the operator: where the table lives. */
export const where = (p: { netns?: string }): string =>
  p.netns ? `netns ${p.netns}` : "the root namespace";

/** `nft -f` text that deletes `table <family> <table>`; an absent table is not an error. */
export function tableResetLines(family: string, table: string): string[] {
  return [`table ${family} ${table} {}`, `delete table ${family} ${table}`];
}

/** sha256 of the canonical form of the table, or null when the ruleset has no such table. */
export function tableDigest(
  ruleset: NftRuleset,
  family: string,
  table: string,
): string | null {
  const canon = canonicalNftTable(ruleset, family, table);
  return canon === null
    ? null
    : createHash("sha256").update(canon, "utf8").digest("hex");
}

/** The script with the ownership comment in the (one) table block it creates. */
export function withOwnerComment(
  script: string,
  family: string,
  table: string,
  mark: string,
): string {
  const head = `\ntable ${family} ${table} {\n`;
  const at = script.indexOf(head);
  if (at < 0 || script.indexOf(head, at + 1) >= 0)
    throw new Error(
      `internal: cannot find the table block of ${family} ${table}`,
    );
  return script.replace(head, `${head}\tcomment "${mark}"\n`);
}

/** The whole-table mechanics of one kind: its planner and its lifecycle. */
export function nftTableKind<P extends NftTableProps>(m: NftTableModel<P>) {
  const target = (p: P): string =>
    `table ${m.family} ${p.table} in ${where(p)}`;
  const owned = (p: P, mark: string): string =>
    withOwnerComment(m.compile(p), m.family, p.table, mark);
  const removal = (p: P, what: string): HostOp => ({
    kind: "nft",
    netns: p.netns,
    script: tableResetLines(m.family, p.table).join("\n") + "\n",
    what,
  });

  const planner: Planner<P, NftTableObserved> = {
    scope: (p) => scopeOf(p.netns),
    observe(snap: HostSnapshot, p: P): NftTableObserved | undefined {
      const nft = snap.namespaces[p.netns ?? ROOT_NS]?.nft;
      const digest = nft ? tableDigest(nft, m.family, p.table) : null;
      return digest === null ? undefined : { digest };
    },
    plan(p, live, ctx): Step[] {
      if (live && p.inSync && live.digest === p.appliedDigest) return [];
      const script = owned(p, ownerMark(ctx.owner));
      return [
        ...(m.checks?.(p, script) ?? []).map((op) => ({ op })),
        {
          op: {
            kind: "nft",
            netns: p.netns,
            script,
            what: `apply ${target(p)}`,
          },
          undo: live
            ? undefined
            : removal(p, `remove table ${m.family} ${p.table}`),
        },
      ];
    },
  };

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

  /** The nft JSON document in a command's output (stderr is merged into it by the queue). */
  function parseListing(out: string, what: string): NftRuleset {
    const line = out.split("\n").find((l) => l.startsWith('{"nftables"'));
    if (line === undefined)
      throw new Error(
        `${what}: nft printed no JSON: ${out.trim().slice(0, 400)}`,
      );
    return NftRuleset.parse(JSON.parse(line));
  }

  /** Plan against the fresh snapshot and apply, then read back what the kernel holds. */
  async function apply(
    ctx: KindContext,
    p: P,
    snap?: HostSnapshot,
  ): Promise<Record<string, unknown>> {
    const live = planner.observe(snap ?? (await snapshotOf(ctx, p)), p);
    await applySteps(ctx.host, planner.plan(p, live, { owner: ctx.owner }));
    const out = await ctx.host.run({
      kind: "sh",
      netns: p.netns,
      commands: [["nft", "-j", "list", "table", m.family, p.table]],
      what: `read back ${target(p)}`,
    });
    const digest = tableDigest(
      parseListing(out, `${ctx.host.label}: read back ${target(p)}`),
      m.family,
      p.table,
    );
    if (digest === null)
      throw new Error(
        `${ctx.host.label}: ${target(p)} is missing right after it was applied; is another tool deleting it?`,
      );
    return { appliedDigest: digest, inSync: true, ...m.outputs?.(p) };
  }

  async function assertOwnedOrAbsent(
    ctx: KindContext,
    snap: HostSnapshot,
    p: P,
  ): Promise<void> {
    const ns = snap.namespaces[p.netns ?? ROOT_NS];
    if (!ns && p.netns) {
      throw new Error(
        `${ctx.host.label}: netns ${p.netns} does not exist; create it first (VmNetns) and make this ${m.type} depend on it.`,
      );
    }
    if (!planner.observe(snap, p)) return;
    const text = await ctx.host.run({
      kind: "sh",
      netns: p.netns,
      commands: [["nft", "list", "table", m.family, p.table]],
      what: `inspect existing table ${m.family} ${p.table}`,
    });
    const comment = new RegExp(
      `^table ${m.family} ${p.table} \\{\\n\\s*comment "([^"]*)"\\s*$`,
      "m",
    ).exec(text)?.[1];
    // This resource's own table (a run that died before the state was written made it) or one of
    // an older release (plain "hostnet") is replaced; another resource's table or a stranger's is not.
    const verdict = judgeMark(comment, ctx.owner);
    if (verdict !== "mine" && comment !== OWNER_ALIAS) {
      const whose =
        verdict === "none"
          ? `hostnet did not make it (no comment "${OWNER_ALIAS}")`
          : `another hostnet resource made it (comment "${comment}")`;
      throw new Error(
        `${ctx.host.label}: table ${m.family} ${p.table} already exists in ${where(p)} and ${whose}. Nothing was changed. ` +
          `To manage it with this ${m.type}, set adopt: true on it (the next change replaces its contents), or choose another table name.`,
      );
    }
  }

  const lifecycle: Pick<ResourceKind, "create" | "read" | "update" | "delete"> =
    {
      async create(ctx, raw) {
        const p = raw as P;
        const snap = await snapshotOf(ctx, p);
        await assertOwnedOrAbsent(ctx, snap, p);
        try {
          return await apply(ctx, p, snap);
        } catch (err) {
          // The apply is atomic; only a failed read-back can leave a table behind.
          await ctx.host
            .run(removal(p, `remove half-made table ${m.family} ${p.table}`))
            .catch(() => undefined);
          throw err;
        }
      },

      async read(ctx, raw) {
        const p = raw as P;
        const snap = await snapshotOf(ctx, p);
        const live = planner.observe(snap, p);
        if (!live) return null;
        // Adopted tables have no applied digest yet: what is live now is the baseline.
        const inSync =
          p.appliedDigest === undefined || live.digest === p.appliedDigest;
        const props = {
          ...p,
          ...m.liveProps?.(p, snap.namespaces[p.netns ?? ROOT_NS]),
          inSync,
          appliedDigest: p.appliedDigest ?? live.digest,
        };
        // The engine's struct encoding refuses undefined values.
        return Object.fromEntries(
          Object.entries(props).filter(([, v]) => v !== undefined),
        );
      },

      update: (ctx, _olds, news) => apply(ctx, news as P),

      async delete(ctx, raw) {
        const p = raw as P;
        // Unreadable: try the delete anyway.
        const snap = await snapshotOf(ctx, p).catch(() => undefined);
        if (snap && !planner.observe(snap, p)) return; // already gone
        try {
          await ctx.host.run(removal(p, `delete table ${m.family} ${p.table}`));
        } catch (err) {
          if (!isGone(err)) throw err;
        }
      },
    };

  return { planner, lifecycle, owned, removal, target };
}
