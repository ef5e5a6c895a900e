// HostHealth and RolloutGate: the health gate of a fleet rollout. HostHealth verifies one host
// after its batch was applied (links up, fdb entries present, VM-side namespaces reach each other)
// and records the result without failing — again on every up and refresh, not only when the
// topology changes; RolloutGate fails the update when more hosts are
// unhealthy than the failure budget allows, so later batches — which depend on it — are not touched.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import {
  CommonArgs,
  HostnetResource,
  HostlessResource,
  Inputs,
} from "../dynamic";
import { findLink, HostSnapshot, isManagedFdbRow } from "../../state";
import { KindContext, ResourceKind } from "../kind";
import { IfName, IpAddress, MacAddress, NetnsName } from "../../schema";

export const HealthChecks = z
  .object({
    links: z
      .array(z.object({ netns: NetnsName.optional(), name: IfName }).strict())
      .default([]),
    fdb: z
      .array(
        z
          .object({
            netns: NetnsName.optional(),
            bridge: IfName,
            mac: MacAddress,
          })
          .strict(),
      )
      .default([]),
    /** `to` of either family: an IPv6 address is pinged with `ping -6` and its failure says so. */
    pings: z
      .array(z.object({ netns: NetnsName, to: IpAddress }).strict())
      .default([]),
  })
  .strict();
export type HealthChecks = z.infer<typeof HealthChecks>;

export const HostHealthProps = z.object({
  hostName: z.string().min(1),
  checks: HealthChecks,
  /** Changes whenever the host's desired topology changes (the check also runs on every up and refresh). */
  trigger: z.string().default(""),
});
type HostHealthProps = z.infer<typeof HostHealthProps>;

function linkProblems(snap: HostSnapshot, checks: HealthChecks): string[] {
  return checks.links.flatMap(({ netns, name }) => {
    const l = findLink(snap, netns ?? "", name);
    const where = `${netns ? `netns ${netns}` : "root namespace"}`;
    if (!l) return [`link ${name} missing (${where})`];
    return l.adminUp ? [] : [`link ${name} is down (${where})`];
  });
}

function fdbProblems(snap: HostSnapshot, checks: HealthChecks): string[] {
  return checks.fdb.flatMap(({ netns, bridge, mac }) => {
    const row = snap.namespaces[netns ?? ""]?.fdb.find((f) =>
      isManagedFdbRow(f, { mac, bridge }),
    );
    return row
      ? []
      : [
          `static fdb entry ${mac} on ${bridge} missing${netns ? ` (netns ${netns})` : ""}`,
        ];
  });
}

async function pingProblems(
  ctx: KindContext,
  checks: HealthChecks,
): Promise<string[]> {
  const family = (to: string) => (to.includes(":") ? "IPv6" : "IPv4");
  const results = await Promise.allSettled(
    checks.pings.map(({ netns, to }) =>
      ctx.host.run({
        kind: "sh",
        netns,
        commands: [
          [
            "ping",
            ...(family(to) === "IPv6" ? ["-6"] : []),
            ...["-c", "1", "-W", "2", "-q", to],
          ],
        ],
        what: `ping ${to} from netns ${netns}`,
      }),
    ),
  );
  return results.flatMap((r, i) => {
    const { netns, to } = checks.pings[i];
    return r.status === "fulfilled"
      ? []
      : [`netns ${netns} cannot reach ${to} over ${family(to)}`];
  });
}

async function runChecks(ctx: KindContext, p: HostHealthProps) {
  ctx.host.invalidate();
  const snap = await ctx.host.snapshot();
  const problems = [
    ...linkProblems(snap, p.checks),
    ...fdbProblems(snap, p.checks),
    ...(await pingProblems(ctx, p.checks)),
  ];
  return { healthy: problems.length === 0, problems };
}

export const hostHealthKind: ResourceKind<typeof HostHealthProps> = {
  type: "HostHealth",
  schema: HostHealthProps,
  replaceOn: [],
  compared: ["hostName", "checks", "trigger"],
  id: (p) => `health/${p.hostName}`,
  create: runChecks,
  // The verdict is live state: refresh records the host's health now, and every diff (each preview
  // and up) checks again, so a host fixed by hand passes the gate on the next up without a config change.
  read: async (ctx, p) => ({ ...p, ...(await runChecks(ctx, p)) }),
  recheck: async (ctx, p, olds) => {
    const now = await runChecks(ctx, p);
    return now.healthy === olds.healthy &&
      JSON.stringify(now.problems) === JSON.stringify(olds.problems ?? [])
      ? []
      : ["healthy"];
  },
  update: (ctx, _o, n) => runChecks(ctx, n),
  delete: async () => undefined,
};

export interface HostHealthArgs
  extends CommonArgs, Inputs<z.input<typeof HostHealthProps>> {}

export class HostHealth extends HostnetResource {
  declare readonly healthy: pulumi.Output<boolean>;
  declare readonly problems: pulumi.Output<string[]>;
  constructor(
    name: string,
    args: HostHealthArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      "HostHealth",
      name,
      { ...args, healthy: undefined, problems: undefined } as HostHealthArgs,
      opts,
    );
  }
}

export const RolloutGateProps = z.object({
  batch: z.number().int().min(0),
  maxFailures: z.number().int().min(0),
  results: z.array(
    z.object({
      host: z.string(),
      healthy: z.boolean(),
      problems: z.array(z.string()),
    }),
  ),
});
type RolloutGateProps = z.infer<typeof RolloutGateProps>;

function judge(p: RolloutGateProps): Record<string, unknown> {
  const failed = p.results.filter((r) => !r.healthy);
  if (failed.length > p.maxFailures) {
    const detail = failed
      .map((f) => `  ${f.host}: ${f.problems.join("; ")}`)
      .join("\n");
    throw new Error(
      `rollout stopped after batch ${p.batch}: ${failed.length} unhealthy host(s), failure budget maxFailures=${p.maxFailures}.\n${detail}\n` +
        `Later batches were not touched. Fix the hosts above (or raise maxFailures) and run up again.`,
    );
  }
  return { failedHosts: failed.map((f) => f.host) };
}

export const rolloutGateKind: ResourceKind<typeof RolloutGateProps> = {
  type: "RolloutGate",
  hostless: true,
  schema: RolloutGateProps,
  replaceOn: [],
  id: (p) => `gate/${p.batch}`,
  create: async (_ctx, p) => judge(p),
  read: async (_ctx, p) => ({ ...p }),
  update: async (_ctx, _o, n) => judge(n),
  delete: async () => undefined,
};

export type RolloutGateArgs = Inputs<z.input<typeof RolloutGateProps>>;

export class RolloutGate extends HostlessResource {
  declare readonly failedHosts: pulumi.Output<string[]>;
  constructor(
    name: string,
    args: RolloutGateArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("RolloutGate", name, { ...args, failedHosts: undefined }, opts);
  }
}
