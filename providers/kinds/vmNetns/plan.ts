// The VmNetns planner (kinds/plan.ts): pure, from the desired props and what the snapshot holds.
// Ownership is marked with an alias on the namespace's loopback, set in the step that creates the
// namespace, so a later run can tell a namespace hostnet made from one it found.
import type { HostOp } from "../../host";
import { HostSnapshot, ownerMark } from "../../state";
import { batchLine } from "../../transport";
import type { Planner, Step } from "../plan";
import type { VmNetnsProps } from "./schema";

/** What the host holds of a VmNetns: the live values of its managed props and its mark. */
export interface VmNetnsObserved {
  name: string;
  /** Only the sysctls the desired props name. */
  sysctls: Record<string, string>;
  loopbackUp: boolean;
  /** The loopback's alias: hostnet's ownership mark when hostnet made the namespace. */
  mark?: string;
}

function loopbackStep(p: VmNetnsProps): Step {
  return {
    op: {
      kind: "batch",
      tool: "ip",
      netns: p.name,
      lines: [batchLine(["link", "set", "lo", p.loopbackUp ? "up" : "down"])],
      what: `set up loopback of netns ${p.name}`,
    },
  };
}

function sysctlSteps(netns: string, sysctls: Record<string, string>): Step[] {
  const entries = Object.entries(sysctls);
  if (entries.length === 0) return [];
  return [
    {
      op: {
        kind: "sh",
        netns,
        commands: entries.map(([k, v]) => ["sysctl", "-q", "-w", `${k}=${v}`]),
        what: `set sysctls in netns ${netns}`,
      },
    },
  ];
}

/** Delete the namespace (the undo of a half-made create, and delete itself). */
export function deleteNetnsOp(name: string, what: string): HostOp {
  return {
    kind: "batch",
    tool: "ip",
    lines: [batchLine(["netns", "del", name])],
    what,
  };
}

export const vmNetnsPlanner: Planner<VmNetnsProps, VmNetnsObserved> = {
  scope: (p) => [p.name],

  observe(snap: HostSnapshot, p) {
    const ns = snap.namespaces[p.name];
    if (!ns) return undefined;
    const lo = ns.links.find((l) => l.name === "lo");
    const sysctls: Record<string, string> = {};
    for (const k of Object.keys(p.sysctls))
      if (ns.sysctls[k] !== undefined) sysctls[k] = ns.sysctls[k];
    return {
      name: p.name,
      sysctls,
      loopbackUp: lo?.adminUp ?? false,
      mark: lo?.alias,
    };
  },

  plan(p, observed, ctx) {
    if (!observed) {
      return [
        {
          // One step: a run killed in between would leave a namespace without its mark.
          op: {
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
          },
          makes: true,
          undo: deleteNetnsOp(p.name, `remove half-made netns ${p.name}`),
        },
        loopbackStep(p),
        ...sysctlSteps(p.name, p.sysctls),
      ];
    }
    const changed: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.sysctls))
      if (observed.sysctls[k] !== v) changed[k] = v;
    return [
      ...(observed.loopbackUp === p.loopbackUp ? [] : [loopbackStep(p)]),
      ...sysctlSteps(p.name, changed),
    ];
  },
};
