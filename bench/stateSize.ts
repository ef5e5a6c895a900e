// Where the bytes of a stack's state are: average bytes per resource and the largest fields,
// summed over every resource (inputs.* and outputs.* separately, the engine's own fields by name).
//
//   node dist/scripts/pulumi.js stack export -s lab > /tmp/state.json
//   node dist/bench/stateSize.js /tmp/state.json        (or: ... stack export -s lab | node dist/bench/stateSize.js)
//
// bench/provision.ts reports the same "bytes per resource" (JSON length of the export / resources).
import * as fs from "fs";
import { SECRET_SIG } from "../scripts/engine";

export interface StateSize {
  bytes: number;
  resources: number;
  perResource: number;
  /** [field, total bytes, bytes per resource], largest first. */
  fields: Array<[string, number, number]>;
  /** Resources whose inputs or outputs hold a secret (its ciphertext, or its plaintext in an export made with --show-secrets). */
  withSecrets: number;
}

export function stateSize(exported: unknown): StateSize {
  const resources: Array<Record<string, unknown>> =
    (
      exported as {
        deployment?: { resources?: Array<Record<string, unknown>> };
      }
    )?.deployment?.resources ?? [];
  const bytes = JSON.stringify(exported).length;
  const totals = new Map<string, number>();
  const add = (k: string, v: unknown) =>
    totals.set(k, (totals.get(k) ?? 0) + JSON.stringify(v).length);
  let withSecrets = 0;
  for (const r of resources) {
    for (const [k, v] of Object.entries(r)) {
      if ((k === "inputs" || k === "outputs") && v && typeof v === "object")
        for (const [f, x] of Object.entries(v)) add(`${k}.${f}`, x);
      else add(k, v);
    }
    if (JSON.stringify([r.inputs, r.outputs]).includes(SECRET_SIG))
      withSecrets++;
  }
  const n = Math.max(resources.length, 1);
  return {
    bytes,
    resources: resources.length,
    perResource: Math.round(bytes / n),
    fields: [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, v, Math.round(v / n)]),
    withSecrets,
  };
}

export function formatStateSize(s: StateSize, top = 15): string {
  return [
    `${s.bytes} bytes, ${s.resources} resources: ${s.perResource} bytes per resource; ` +
      `${s.withSecrets} resource(s) hold a secret`,
    "field                                     total  per resource",
    ...s.fields
      .slice(0, top)
      .map(
        ([k, v, per]) =>
          `${k.padEnd(38)} ${String(v).padStart(8)}  ${String(per).padStart(12)}`,
      ),
  ].join("\n");
}

if (require.main === module) {
  const file = process.argv[2];
  const text = fs.readFileSync(file && file !== "-" ? file : 0, "utf8");
  console.log(formatStateSize(stateSize(JSON.parse(text))));
}
