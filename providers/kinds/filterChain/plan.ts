// FilterChain's pure planner (kinds/plan.ts). The spec is compiled by nftCompile.ts (one
// verdict-map lookup per frame, never one rule per port) and applied as ONE `nft -f` transaction
// that creates or replaces the whole table, so create and every update are atomic: the kernel holds
// either the old table or the new one. A table cannot be turned back into a spec: what the host
// holds is observed as the digest of its canonical form (handles and counters stripped), and the
// plan is empty only when that digest is the one recorded at the last apply.
import { createHash } from "crypto";
import type { HostOp } from "../../host";
import { scopeOf } from "../../host";
import type { HostSnapshot } from "../../state";
import {
  canonicalNftTable,
  NftRuleset,
  OWNER_ALIAS,
  ownerMark,
  ROOT_NS,
} from "../../state";
import type { Planner, Step } from "../plan";
import { compileFilterChain, removeScript } from "./nftCompile";
import { FAMILY, FilterChainProps, specOf, where } from "./schema";

type P = FilterChainProps;

/** The live table, as the digest of its canonical form. */
export interface FilterChainObserved {
  digest: string;
}

/** The compiled script with the ownership comment in the table block it creates. */
export function ownedScript(
  p: P,
  mark = OWNER_ALIAS,
): { script: string; chains: string[] } {
  const compiled = compileFilterChain(specOf(p));
  const head = `\ntable ${FAMILY} ${compiled.table} {\n`;
  const at = compiled.script.indexOf(head);
  if (at < 0 || compiled.script.indexOf(head, at + 1) >= 0)
    throw new Error(
      `internal: cannot find the table block of ${compiled.table}`,
    );
  const script = compiled.script.replace(head, `${head}\tcomment "${mark}"\n`);
  return { script, chains: compiled.chains };
}

/** sha256 of the canonical form of the table, or null when the ruleset has no such table. */
export function tableDigest(ruleset: NftRuleset, table: string): string | null {
  const canon = canonicalNftTable(ruleset, FAMILY, table);
  return canon === null
    ? null
    : createHash("sha256").update(canon, "utf8").digest("hex");
}

const target = (p: P): string => `table ${FAMILY} ${p.table} in ${where(p)}`;

/** The step that deletes the table (deleting an absent table is not an error). */
export function removal(p: P, what: string): Step {
  return {
    op: { kind: "nft", netns: p.netns, script: removeScript(p.table), what },
  };
}

export const filterChainPlanner: Planner<P, FilterChainObserved> = {
  scope: (p) => scopeOf(p.netns),

  observe(snap: HostSnapshot, p: P): FilterChainObserved | undefined {
    const nft = snap.namespaces[p.netns ?? ROOT_NS]?.nft;
    const digest = nft ? tableDigest(nft, p.table) : null;
    return digest === null ? undefined : { digest };
  },

  plan(p, live, ctx): Step[] {
    if (live && p.inSync && live.digest === p.appliedDigest) return [];
    const { script } = ownedScript(p, ownerMark(ctx.owner));
    const steps: Step[] = [];
    // `raw` is checked with `nft -c` first, so a bad escape hatch fails this resource alone with
    // nft's own error (and never the transaction it would share with other resources' nft ops).
    if (p.raw !== undefined && p.raw.trim() !== "") {
      const check: HostOp = {
        kind: "nft",
        checkOnly: true,
        netns: p.netns,
        script,
        what: `check ${target(p)} with its raw rules (nft -c; nothing applied)`,
      };
      steps.push({ op: check });
    }
    steps.push({
      op: { kind: "nft", netns: p.netns, script, what: `apply ${target(p)}` },
      undo: live
        ? undefined
        : removal(p, `remove table ${FAMILY} ${p.table}`).op,
    });
    return steps;
  },
};
