// Hand-built host snapshots for the planners' unit tests: only what a test names is there.
import type { HostSnapshot, Link, NamespaceState } from "../../providers/state";

/** A link with the fields every link has; override what the test is about. */
export function link(over: Partial<Link> & Pick<Link, "name" | "kind">): Link {
  return {
    index: 1,
    mtu: 1500,
    operUp: true,
    adminUp: true,
    addresses: [],
    ...over,
  };
}

/** A snapshot holding these namespaces ("" is the root namespace). */
export function snapshotWith(
  namespaces: Record<string, Partial<NamespaceState>>,
): HostSnapshot {
  const full: Record<string, NamespaceState> = {};
  for (const [name, ns] of Object.entries(namespaces))
    full[name] = {
      links: [],
      fdb: [],
      neigh: [],
      routes: [],
      sysctls: {},
      nft: null,
      failedSections: [],
      ...ns,
    };
  return { machineId: "m", hostname: "h", namespaces: full, absent: [] };
}
