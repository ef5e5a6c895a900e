// Lists the host holds as sets (a macvlan's source MACs, a vxlan device's flood destinations):
// compared regardless of order, and read back in the user's order when they match, so a different
// order is never drift.
export const sorted = (xs: readonly string[]): string[] => [...xs].sort();

export const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

/**
 * Items given more than once: index of each repeat → index of its first occurrence. Every
 * "listed twice" check (props, config) names both places from this one map.
 */
export function repeats(values: readonly string[]): Map<number, number> {
  const first = new Map<string, number>();
  const out = new Map<number, number>();
  values.forEach((v, i) => {
    const f = first.get(v);
    if (f === undefined) first.set(v, i);
    else out.set(i, f);
  });
  return out;
}

/** The live list in the declared order when it holds the same items, else sorted. */
export function asDeclared(
  declared: readonly string[],
  live: readonly string[],
): string[] {
  return sameSet(declared, live) ? [...declared] : sorted(live);
}
