// Hand-made host snapshots for the planners' unit tests: only what a test names is there.
import type {
  HostSnapshot,
  Link,
  NamespaceState,
  RouteRow,
} from "../../providers/state";

export const OWNER = "0123abcd-0123456789";
export const MARK = `hostnet:${OWNER}`;

let index = 1;
/** A link with the fields every link has (a fresh ifindex each); `more` sets what the test is about. */
export function link(name: string, more: Partial<Link> = {}): Link {
  return linkOf({ name, kind: "other", index: index++, ...more });
}

/** The same, from one object naming at least the link's name and kind (ifindex 1 unless given). */
export function linkOf(
  over: Partial<Link> & Pick<Link, "name" | "kind">,
): Link {
  return {
    index: 1,
    mtu: 1500,
    operUp: true,
    adminUp: true,
    addresses: [],
    ...over,
  };
}

/** A namespace holding `links` and nothing else unless `over` says so. */
export function namespaceOf(
  links: Link[],
  over: Partial<NamespaceState> = {},
): NamespaceState {
  return {
    links,
    fdb: [],
    neigh: [],
    routes: [],
    sysctls: {},
    nft: null,
    failedSections: [],
    ...over,
  };
}

export function ns(
  links: Link[],
  more: { routes?: RouteRow[]; sysctls?: Record<string, string> } = {},
): NamespaceState {
  return namespaceOf(links, more);
}

export function snapshot(
  namespaces: Record<string, NamespaceState>,
): HostSnapshot {
  return { machineId: "m", hostname: "h", namespaces, absent: [] };
}

/** A snapshot holding these namespaces ("" is the root namespace), each filled out as namespaceOf does. */
export function snapshotWith(
  namespaces: Record<string, Partial<NamespaceState>>,
): HostSnapshot {
  return snapshot(
    Object.fromEntries(
      Object.entries(namespaces).map(([name, n]) => [
        name,
        namespaceOf(n.links ?? [], n),
      ]),
    ),
  );
}
