// Fleet rollout plan: hosts in batches, a canary first, like Ansible's `serial: [1, 5, "20%"]`.
// Pure: the program turns each batch into HostTopologies that depend on the previous batch's gate.

export type BatchSize = number | string;

export function batchSizes(serial: BatchSize[], total: number): number[] {
  const sizes: number[] = [];
  let placed = 0;
  let i = 0;
  while (placed < total) {
    const spec = serial[Math.min(i, serial.length - 1)];
    const n =
      typeof spec === "number"
        ? spec
        : Math.max(1, Math.ceil((total * Number(spec.slice(0, -1))) / 100));
    const size = Math.min(n, total - placed);
    sizes.push(size);
    placed += size;
    i++;
  }
  return sizes;
}

export function planBatches<T>(hosts: T[], serial: BatchSize[]): T[][] {
  const out: T[][] = [];
  let at = 0;
  for (const size of batchSizes(serial, hosts.length)) {
    out.push(hosts.slice(at, at + size));
    at += size;
  }
  return out;
}
