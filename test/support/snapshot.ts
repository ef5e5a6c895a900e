// Hand-made host snapshots for the planners' unit tests.
import type { Link, NamespaceState } from "../../providers/state";

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
