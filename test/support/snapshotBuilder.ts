// Hand-made host snapshots for the planner unit tests: just the fields a planner reads.
import type {
  HostSnapshot,
  Link,
  NamespaceState,
  RouteRow,
} from "../../providers/state";

export const OWNER = "0123abcd-0123456789";
export const MARK = `hostnet:${OWNER}`;

let index = 1;
export function link(name: string, more: Partial<Link> = {}): Link {
  return {
    name,
    index: index++,
    kind: "other",
    mtu: 1500,
    operUp: true,
    adminUp: true,
    addresses: [],
    ...more,
  } as Link;
}

export function ns(
  links: Link[],
  more: { routes?: RouteRow[]; sysctls?: Record<string, string> } = {},
): NamespaceState {
  return {
    links,
    fdb: [],
    neigh: [],
    routes: more.routes ?? [],
    sysctls: more.sysctls ?? {},
    nft: null,
    failedSections: [],
  };
}

export function snapshot(
  namespaces: Record<string, NamespaceState>,
): HostSnapshot {
  return { machineId: "m", hostname: "h", namespaces, absent: [] };
}
