// ArpAnswer: broadcast ARP requests for known VMs answered at the asking port's ingress, so they
// never enter the bridge and are never cloned to its ports (compile.ts says how and what is left
// alone). Apply, drift and ownership are the whole-table mechanics of kinds/nftTable.ts.
import { ResourceKind } from "../kind";
import { asDeclared } from "../lists";
import { nftTableKind, specIssues } from "../nftTable";
import { ArpAnswerSpec, compileArpAnswer } from "./compile";
import { ArpAnswerProps, FAMILY, specOf } from "./schema";

export const arpAnswerTable = nftTableKind<ArpAnswerProps>({
  type: "ArpAnswer",
  family: FAMILY,
  compile: (p) => compileArpAnswer(specOf(p)).script,
  outputs: (p) => ({
    chains: compileArpAnswer(specOf(p)).chains.map((c) => c.name),
    portCount: p.ports.length,
  }),
  // A port hooked by hand, or one an older kernel unhooked when its device went away (a VM's tap
  // made again), shows as a change of ports; the update re-applies the table.
  liveProps: (p, ns) => {
    const hooked = ns.netdevHooks?.[p.table];
    return hooked === undefined ? {} : { ports: asDeclared(p.ports, hooked) };
  },
});

export const arpAnswerPlanner = arpAnswerTable.planner;

export const arpAnswerKind: ResourceKind<typeof ArpAnswerProps> = {
  type: "ArpAnswer",
  schema: ArpAnswerProps,
  replaceOn: ["netns", "table"],
  compared: ["netns", "table", "ports", "entries", "inSync"],
  validate: (p) => specIssues(ArpAnswerSpec.safeParse(specOf(p))),
  // The management path's own interface never gets its ARP answered by a VM table.
  addressUses: (p) =>
    p.ports.map((port, i) => ({
      path: `ports[${i}]`,
      value: port,
      kind: "interface" as const,
      rootNs: !p.netns,
    })),
  id: (p) => `nft/${p.netns ?? "-"}/${FAMILY}/${p.table}`,
  planner: arpAnswerTable.planner,
  ...arpAnswerTable.lifecycle,
};
