// Bridge port flags (seed 002: learning and unicast flood off on VM ports; neigh_suppress for ARP
// suppression). They belong to the resource that attaches the port: VethLink ends, TapPort.
// Unset flags are left as the kernel has them and are not compared for drift.
import { z } from "zod";
import type { Host } from "../host";
import type { Link } from "../state";
import { batchLine } from "../transport";

export const PortFlagsInput = z
  .object({
    learning: z.boolean().optional(),
    flood: z.boolean().optional(),
    mcastFlood: z.boolean().optional(),
    bcastFlood: z.boolean().optional(),
    isolated: z.boolean().optional(),
    neighSuppress: z.boolean().optional(),
    hairpin: z.boolean().optional(),
  })
  .strict();
export type PortFlagsInput = z.infer<typeof PortFlagsInput>;

const KEYWORD: Record<keyof PortFlagsInput, string> = {
  learning: "learning",
  flood: "flood",
  mcastFlood: "mcast_flood",
  bcastFlood: "bcast_flood",
  isolated: "isolated",
  neighSuppress: "neigh_suppress",
  hairpin: "hairpin",
};

/** One `bridge -batch` line setting the given flags on a port, or none when nothing is set. */
export function portFlagLines(
  port: string,
  flags: PortFlagsInput | undefined,
): string[] {
  const tokens: string[] = [];
  for (const [k, v] of Object.entries(flags ?? {}) as Array<
    [keyof PortFlagsInput, boolean | undefined]
  >) {
    if (v !== undefined) tokens.push(KEYWORD[k], v ? "on" : "off");
  }
  return tokens.length === 0
    ? []
    : [batchLine(["link", "set", "dev", port, ...tokens])];
}

/** The live values of exactly the flags the resource manages (for drift). */
export function livePortFlags(
  link: Link | undefined,
  managed: PortFlagsInput | undefined,
): PortFlagsInput {
  const out: PortFlagsInput = {};
  for (const k of Object.keys(managed ?? {}) as Array<keyof PortFlagsInput>) {
    const v = link?.port?.[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Flags that differ between two settings (only those set in `news`). */
export function changedPortFlags(
  olds: PortFlagsInput | undefined,
  news: PortFlagsInput | undefined,
): PortFlagsInput {
  const out: PortFlagsInput = {};
  for (const [k, v] of Object.entries(news ?? {}) as Array<
    [keyof PortFlagsInput, boolean | undefined]
  >) {
    if (v !== undefined && olds?.[k] !== v) out[k] = v;
  }
  return out;
}

/** Sets the flags of bridge port `name` in one `bridge -batch` (nothing to do: no round trip). */
export async function setPortFlags(
  host: Host,
  port: { name: string; netns?: string },
  flags: PortFlagsInput | undefined,
  what: string,
): Promise<void> {
  const lines = portFlagLines(port.name, flags);
  if (lines.length > 0)
    await host.run({
      kind: "batch",
      tool: "bridge",
      netns: port.netns,
      lines,
      what,
    });
}
