// FilterChain's pure planner (kinds/plan.ts), built by the shared whole-table mechanics
// (kinds/nftTable.ts): one atomic `nft -f` per apply, drift by the digest of the canonical table.
// The spec is compiled by nftCompile.ts (one verdict-map lookup per frame, never one rule per port).
// `raw` is checked with `nft -c` first, so a bad escape hatch fails this resource alone with nft's
// own error (and never the transaction it would share with other resources' nft ops).
import { OWNER_ALIAS } from "../../state";
import { nftTableKind } from "../nftTable";
import { compileFilterChain } from "./nftCompile";
import { FAMILY, FilterChainProps, specOf } from "./schema";

type P = FilterChainProps;

export const filterChainTable = nftTableKind<P>({
  type: "FilterChain",
  family: FAMILY,
  compile: (p) => compileFilterChain(specOf(p)).script,
  checks: (p, script) =>
    p.raw !== undefined && p.raw.trim() !== ""
      ? [
          {
            kind: "nft",
            checkOnly: true,
            netns: p.netns,
            script,
            what: `check table ${FAMILY} ${p.table} with its raw rules (nft -c; nothing applied)`,
          },
        ]
      : [],
  outputs: (p) => ({
    chains: compileFilterChain(specOf(p)).chains,
    portCount: p.ports.length,
  }),
});

export const filterChainPlanner = filterChainTable.planner;

/** The compiled script with the ownership comment in the table block it creates. */
export function ownedScript(
  p: P,
  mark = OWNER_ALIAS,
): { script: string; chains: string[] } {
  return {
    script: filterChainTable.owned(p, mark),
    chains: compileFilterChain(specOf(p)).chains,
  };
}
