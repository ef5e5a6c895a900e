// FilterChain: bridge-family nftables filtering for the ports it names, in the root namespace or a
// VM namespace. The spec is compiled by nftCompile.ts (one verdict-map lookup per frame, never one
// rule per port) and applied as ONE `nft -f` transaction that creates or replaces the whole table,
// so create and every update are atomic: the kernel holds either the old table or the new one.
//
// Drift. A table cannot be turned back into a spec, so after each apply the table is read back and
// its canonical form (canonicalNftTable: handles and counters stripped) is hashed into
// `appliedDigest`. read() hashes the live table the same way and reports `inSync: false` when the
// two differ. `inSync` is a compared prop whose desired value is always true, so drift shows in the
// generic diff as an update of `inSync`, and `up` re-applies the whole table. Dynamic sets filled
// by traffic (possible through `raw`) change the digest too: keep such state out of this table.
//
// Ownership. The table carries `comment "hostnet"`. nft 1.0.6 accepts table comments but leaves
// them out of its JSON output, so the snapshot cannot see them: create() checks an existing table
// with one text listing (`nft list table`), and only when the table is already there. A marked
// table is taken to be a leftover of ours and replaced; an unmarked one needs `adopt: true`.
//
// `raw` is checked with `nft -c` on the host before the apply, so a bad escape hatch fails this
// resource alone with nft's own error (the apply would be atomic anyway; the check also keeps a
// bad script from failing the transaction it would share with other resources' nft ops).
// The raw check needs the host, so it happens at `up`, not at preview.
import { scopeOf } from "../../host";
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { KindContext, OptionalNetns, ResourceKind } from "../kind";
import {
  compileFilterChain,
  FilterChainSpec,
  FilterChainSpecInput,
  removeScript,
} from "./nftCompile";
import { canonicalNftTable, NftRuleset, ROOT_NS } from "../../state";
import { isGone, judgeMark, OWNER_ALIAS, ownerMark } from "../../state";
import { formatIssues } from "../../schema";

const Spec = FilterChainSpec.shape;

export const FilterChainProps = z.object({
  /** Namespace holding the bridge ports; unset: the root namespace. */
  netns: OptionalNetns,
  table: Spec.table,
  ports: Spec.ports,
  raw: Spec.raw,
  /** Desired value is always true; read() reports false when the live table differs from the applied one. */
  inSync: z.boolean().default(true),
  /** An output: sha256 of the canonical table as applied. In the schema only so read() gets it from state. */
  appliedDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type FilterChainProps = z.infer<typeof FilterChainProps>;

const FAMILY = "bridge";

function where(p: FilterChainProps): string {
  return p.netns ? `netns ${p.netns}` : "the root namespace";
}

function specOf(p: FilterChainProps): FilterChainSpecInput {
  return {
    table: p.table,
    ports: p.ports,
    ...(p.raw !== undefined ? { raw: p.raw } : {}),
  };
}

/** The compiled script with the ownership comment in the table block it creates. */
export function ownedScript(
  p: FilterChainProps,
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

export function tableDigest(ruleset: NftRuleset, table: string): string | null {
  const canon = canonicalNftTable(ruleset, FAMILY, table);
  return canon === null
    ? null
    : createHash("sha256").update(canon, "utf8").digest("hex");
}

/** Cross-field rules of the spec (duplicate ports, raw problems) and anything the compiler refuses. */
function validate(p: FilterChainProps): Array<[string, string]> {
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
  return NftRuleset.parse(JSON.parse(line));
}

async function liveRuleset(
  ctx: KindContext,
  p: FilterChainProps,
): Promise<NftRuleset | null> {
  const snap = await ctx.host.snapshot(scopeOf(p.netns));
  const ns = snap.namespaces[p.netns ?? ROOT_NS];
  if (!ns) return null;
  if (ns.failedSections.includes("nft")) {
    throw new Error(
      `${ctx.host.label}: could not read the nft ruleset of ${where(p)}; is nft installed and working there? Nothing was changed.`,
    );
  }
  return ns.nft;
}

/** Apply the whole table (raw checked first), then read back what the kernel holds. */
async function apply(
  ctx: KindContext,
  p: FilterChainProps,
): Promise<Record<string, unknown>> {
  const { script, chains } = ownedScript(p, ownerMark(ctx.owner));
  const target = `table ${FAMILY} ${p.table} in ${where(p)}`;
  if (p.raw !== undefined && p.raw.trim() !== "") {
    await ctx.host.run({
      kind: "nft",
      checkOnly: true,
      netns: p.netns,
      script,
      what: `check ${target} with its raw rules (nft -c; nothing applied)`,
    });
  }
  await ctx.host.run({
    kind: "nft",
    netns: p.netns,
    script,
    what: `apply ${target}`,
  });
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
    chains,
    portCount: p.ports.length,
  };
}

async function assertOwnedOrAbsent(
  ctx: KindContext,
  p: FilterChainProps,
): Promise<void> {
  const rs = await liveRuleset(ctx, p);
  if (rs === null && p.netns) {
    throw new Error(
      `${ctx.host.label}: netns ${p.netns} does not exist; create it first (VmNetns) and make this FilterChain depend on it.`,
    );
  }
  if (rs === null || tableDigest(rs, p.table) === null) return;
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
  addressUses: (p) =>
    p.ports.flatMap((port, i) =>
      [
        ...port.ipv4.map((v, j) => [v, `ports[${i}].ipv4[${j}]`]),
        ...port.ipv6.map((v, j) => [v, `ports[${i}].ipv6[${j}]`]),
      ].map(([value, path]) => ({
        path,
        value,
        kind: "address" as const,
        rootNs: !p.netns,
      })),
    ),
  id: (p) => `nft/${p.netns ?? "-"}/${FAMILY}/${p.table}`,

  async create(ctx, p) {
    await assertOwnedOrAbsent(ctx, p);
    try {
      return await apply(ctx, p);
    } catch (err) {
      // The apply is atomic; only a failed read-back can leave a table behind.
      await ctx.host
        .run({
          kind: "nft",
          netns: p.netns,
          script: removeScript(p.table),
          what: `remove half-made table ${FAMILY} ${p.table}`,
        })
        .catch(() => undefined);
      throw err;
    }
  },

  async read(ctx, p) {
    const rs = await liveRuleset(ctx, p);
    const digest = rs === null ? null : tableDigest(rs, p.table);
    if (digest === null) return null;
    // Adopted tables have no applied digest yet: what is live now is the baseline.
    const inSync = p.appliedDigest === undefined || digest === p.appliedDigest;
    const live = {
      netns: p.netns,
      table: p.table,
      ports: p.ports,
      raw: p.raw,
      inSync,
      appliedDigest: p.appliedDigest ?? digest,
    };
    // The engine's struct encoding refuses undefined values.
    return Object.fromEntries(
      Object.entries(live).filter(([, v]) => v !== undefined),
    );
  },

  async update(ctx, _olds, news) {
    return apply(ctx, news);
  },

  async delete(ctx, p) {
    const rs = await liveRuleset(ctx, p).catch(() => undefined); // unreadable: try the delete anyway
    if (rs === null || (rs !== undefined && tableDigest(rs, p.table) === null))
      return; // already gone
    try {
      await ctx.host.run({
        kind: "nft",
        netns: p.netns,
        script: removeScript(p.table),
        what: `delete table ${FAMILY} ${p.table}`,
      });
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};

export interface FilterChainArgs
  extends
    CommonArgs,
    Partial<
      Inputs<Omit<z.input<typeof FilterChainProps>, "inSync" | "appliedDigest">>
    > {
  ports: pulumi.Input<z.input<typeof FilterChainProps>["ports"]>;
}

/** nftables (bridge family) filters for VM ports: one verdict-map dispatch, one atomic transaction. */
export class FilterChain extends HostnetResource {
  declare readonly table: pulumi.Output<string>;
  declare readonly appliedDigest: pulumi.Output<string>;
  declare readonly chains: pulumi.Output<string[]>;
  declare readonly portCount: pulumi.Output<number>;
  declare readonly inSync: pulumi.Output<boolean>;
  constructor(
    name: string,
    args: FilterChainArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    // Outputs that are not inputs must be named here, or the engine never exposes them.
    const props: CommonArgs & Record<string, unknown> = {
      ...args,
      inSync: undefined,
      appliedDigest: undefined,
      chains: undefined,
      portCount: undefined,
    };
    super("FilterChain", name, props, opts);
  }
}
