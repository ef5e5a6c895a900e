// VmNetns: a named network namespace for one VM (seed 000): loopback up, namespace sysctls.
// Ownership is marked with an alias on the namespace's loopback, so a later run can tell a
// namespace hostnet made from one it found.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { CommonArgs, HostnetResource, Inputs } from "../dynamic";
import { ABSENT, found, isGone, isHostnetMark, ownerMark } from "../../state";
import { KindContext, ResourceKind } from "../kind";
import { batchLine } from "../../transport";
import { NetnsName, SysctlKey, SysctlValue } from "../../schema";

/** The sysctls a namespace snapshot reads, so drift on them is visible without extra round trips. */
export const NAMESPACE_SYSCTLS = [
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.forwarding",
  "net.ipv4.conf.all.proxy_arp",
  "net.ipv4.conf.all.rp_filter",
  "net.ipv4.conf.default.rp_filter",
  "net.ipv6.conf.all.disable_ipv6",
  "net.ipv6.conf.default.disable_ipv6",
  "net.ipv6.conf.all.forwarding",
] as const;

const ManagedSysctl = SysctlKey.refine(
  (k) => (NAMESPACE_SYSCTLS as readonly string[]).includes(k),
  {
    message: `hostnet manages these namespace sysctls: ${NAMESPACE_SYSCTLS.join(", ")}`,
  },
);

export const VmNetnsProps = z.object({
  name: NetnsName,
  /** Namespace-wide sysctls, e.g. { "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.disable_ipv6": "1" }. */
  sysctls: z.record(ManagedSysctl, SysctlValue).default({}),
  loopbackUp: z.boolean().default(true),
  /** Delete even when interfaces that hostnet does not own live inside. */
  force: z.boolean().default(false),
});
export type VmNetnsProps = z.infer<typeof VmNetnsProps>;

function sysctlCommands(sysctls: Record<string, string>): string[][] {
  return Object.entries(sysctls).map(([k, v]) => [
    "sysctl",
    "-q",
    "-w",
    `${k}=${v}`,
  ]);
}

async function configure(
  ctx: KindContext,
  p: VmNetnsProps,
  sysctls: Record<string, string>,
): Promise<void> {
  const lines = [
    batchLine(["link", "set", "lo", p.loopbackUp ? "up" : "down"]),
  ];
  await ctx.host.run({
    kind: "batch",
    tool: "ip",
    netns: p.name,
    lines,
    what: `set up loopback of netns ${p.name}`,
  });
  if (Object.keys(sysctls).length > 0) {
    await ctx.host.run({
      kind: "sh",
      netns: p.name,
      commands: sysctlCommands(sysctls),
      what: `set sysctls in netns ${p.name}`,
    });
  }
}

export const vmNetnsKind: ResourceKind<typeof VmNetnsProps> = {
  type: "VmNetns",
  schema: VmNetnsProps,
  replaceOn: ["name"],
  compared: ["name", "sysctls", "loopbackUp"],
  id: (p) => `netns/${p.name}`,

  async create(ctx, p) {
    const del = () =>
      ctx.host.run({
        kind: "batch",
        tool: "ip",
        lines: [batchLine(["netns", "del", p.name])],
        what: `remove half-made netns ${p.name}`,
      });
    try {
      // One step: a run killed in between would leave a namespace without its mark.
      await ctx.host.run({
        kind: "sh",
        commands: [
          ["ip", "netns", "add", p.name],
          [
            "ip",
            "-n",
            p.name,
            "link",
            "set",
            "lo",
            "alias",
            ownerMark(ctx.owner),
          ],
        ],
        what: `create netns ${p.name} and mark it as hostnet's`,
      });
    } catch (err) {
      if (/File exists/.test(String(err))) {
        throw new Error(
          `${ctx.host.label}: netns ${p.name} already exists and this VmNetns did not make it. Nothing was changed. To manage it with hostnet, set adopt: true on this VmNetns.`,
          { cause: err },
        );
      }
      await del().catch(() => undefined);
      throw err;
    }
    try {
      await configure(ctx, p, p.sysctls);
    } catch (err) {
      await del();
      throw err;
    }
    return {};
  },

  async find(ctx, p) {
    const ns = (await ctx.host.snapshot([p.name])).namespaces[p.name];
    return ns
      ? found(ns.links.find((l) => l.name === "lo")?.alias, ctx.owner)
      : ABSENT;
  },

  async read(ctx, p) {
    const ns = (await ctx.host.snapshot([p.name])).namespaces[p.name];
    if (!ns) return null;
    const lo = ns.links.find((l) => l.name === "lo");
    const sysctls: Record<string, string> = {};
    for (const k of Object.keys(p.sysctls))
      if (ns.sysctls[k] !== undefined) sysctls[k] = ns.sysctls[k];
    return { name: p.name, sysctls, loopbackUp: lo?.adminUp ?? false };
  },

  async update(ctx, olds, news) {
    const changed: Record<string, string> = {};
    for (const [k, v] of Object.entries(news.sysctls))
      if (olds.sysctls[k] !== v) changed[k] = v;
    await configure(ctx, news, changed);
    return {};
  },

  async delete(ctx, p) {
    const ns = (await ctx.host.snapshot([p.name])).namespaces[p.name];
    if (!ns) return;
    const foreign = ns.links
      .filter((l) => l.name !== "lo" && !isHostnetMark(l.alias))
      .map((l) => l.name);
    if (foreign.length > 0 && !p.force) {
      throw new Error(
        `${ctx.host.label}: netns ${p.name} still holds interfaces hostnet does not own (${foreign.join(", ")}); ` +
          `not deleting it. Move them out, or set force: true on this VmNetns.`,
      );
    }
    try {
      await ctx.host.run({
        kind: "batch",
        tool: "ip",
        lines: [batchLine(["netns", "del", p.name])],
        what: `delete netns ${p.name}`,
      });
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  },
};

export interface VmNetnsArgs
  extends CommonArgs, Partial<Inputs<z.input<typeof VmNetnsProps>>> {
  name: pulumi.Input<string>;
}

/** A per-VM network namespace. */
export class VmNetns extends HostnetResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly sysctls: pulumi.Output<Record<string, string>>;
  constructor(
    name: string,
    args: VmNetnsArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super("VmNetns", name, args, opts);
  }
}
