// check: the engine's first call for every resource. zod parses the props (values unknown at
// preview are judged at apply time), then the kind's cross-field rules, then one read of the host
// refuses addresses and routes that would cut the management path.
import { z } from "zod";
import {
  engineWarn,
  Host,
  hostFor,
  managementCollisions,
  managementPathOf,
} from "../host";
import { ResourceKind } from "../kinds/kind";
import { formatIssues } from "../schema";
import {
  connectionOf,
  containsUnknown,
  fullSchema,
  kindOf,
  Props,
  strip,
  valueAt,
} from "./props";

export async function check(kindName: string, _olds: Props, news: Props) {
  const kind = kindOf(kindName);
  const input = strip(news);
  const parsed = fullSchema(kind).safeParse(input);
  if (!parsed.success) {
    // Values computed by other resources are unknown during preview: judge them at apply time.
    const real = parsed.error.issues.filter(
      (i) => !containsUnknown(valueAt(input, i.path)),
    );
    if (real.length === 0) return { inputs: news };
    const lines = formatIssues(new z.ZodError(real));
    return {
      inputs: news,
      failures: real.map((issue, n) => ({
        property: String(issue.path[0] ?? ""),
        reason: lines[n],
      })),
    };
  }
  const crossField = kind.validate?.(parsed.data) ?? [];
  const problems =
    crossField.length > 0
      ? crossField
      : await managementPathProblems(kind, input, parsed.data);
  if (problems.length > 0) {
    return {
      inputs: news,
      failures: problems.map(([path, reason]) => ({
        property: path.split(/[.[]/)[0],
        reason: `${path}: ${reason}`,
      })),
    };
  }
  return { inputs: { ...news, ...parsed.data } };
}

/**
 * Addresses and routes that would cut the management path, found with one read of the host (its
 * SSH peer, the route to it, its gateways and management addresses). A host that cannot be read
 * at preview is not refused here: the apply itself will say it is unreachable.
 */
async function managementPathProblems(
  kind: ResourceKind,
  input: Props,
  p: any,
): Promise<Array<[string, string]>> {
  const uses = kind.addressUses?.(p) ?? [];
  if (
    uses.length === 0 ||
    kind.hostless ||
    containsUnknown(input.connection) ||
    containsUnknown(input.credentials)
  )
    return [];
  let host: Host;
  try {
    host = hostFor(connectionOf(p) as any);
  } catch {
    return []; // an unusable connection is reported by the step that needs it, with its own message
  }
  try {
    const mp = await managementPathOf(host);
    return mp ? managementCollisions(mp, uses, host.label) : [];
  } catch (err) {
    engineWarn(
      `${host.label}: could not read the management path at preview, so addresses of ${kind.type} ${kind.id(p)} were not checked against it: ${(err as Error).message}`,
    );
    return [];
  }
}
