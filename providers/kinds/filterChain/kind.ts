// FilterChain: bridge-family nftables filtering for the ports it names. The table's apply, drift
// (`inSync` against the digest recorded at apply) and ownership (the table's comment) are the shared
// whole-table mechanics of kinds/nftTable.ts; this file adds the spec's validation and the
// management-path check. The raw check needs the host, so it happens at `up`, not at preview.
import { ResourceKind } from "../kind";
import { specIssues } from "../nftTable";
import { compileFilterChain } from "./nftCompile";
import { FilterChainSpec } from "./nftSpec";
import { FAMILY, FilterChainProps, specOf } from "./schema";
import { filterChainTable, ownedScript } from "./plan";

type P = FilterChainProps;

/** Cross-field rules of the spec (duplicate ports, raw problems) and anything the compiler refuses. */
function validate(p: P): Array<[string, string]> {
  const issues = specIssues(FilterChainSpec.safeParse(specOf(p)));
  if (issues.length > 0) return issues;
  try {
    ownedScript(p);
  } catch (err) {
    return [["ports", (err as Error).message]];
  }
  return [];
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
  // A table applied by an older compiler with another set of chains (a clean-traffic port's own
  // from-vm rules got their own chain, so they no longer bypass its checks) is applied again.
  outdated: (p, olds) =>
    Array.isArray(olds.chains) &&
    JSON.stringify(olds.chains) !==
      JSON.stringify(compileFilterChain(specOf(p)).chains)
      ? ["chains"]
      : [],
  planner: filterChainTable.planner,
  ...filterChainTable.lifecycle,
};
