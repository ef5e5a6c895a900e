// The typed per-port filter spec of a FilterChain (zod: the single source of its types), and the
// checks of its `raw` escape hatch. nftCompile.ts turns a parsed spec into one `nft -f` script.
import { z } from "zod";
import {
  GuestIpv4Address,
  GuestIpv6Address,
  IfName,
  MacAddress,
  Ipv4Address,
  Ipv6Address,
  Ipv4Cidr,
  Ipv6Cidr,
  NftIdentifier,
  formatIssues,
} from "../../schema";

/* ------------------------------------------------------------------------------------------ */
/* Schemas                                                                                     */
/* ------------------------------------------------------------------------------------------ */

export const PortPolicy = z.enum(["clean-traffic", "accept-all", "drop-all"]);
export type PortPolicy = z.infer<typeof PortPolicy>;

export const RuleProto = z.enum([
  "arp",
  "ipv4",
  "ipv6",
  "tcp",
  "udp",
  "icmp",
  "icmpv6",
]);
export type RuleProto = z.infer<typeof RuleProto>;

/** An address or prefix of either family (a bare address means a host route). */
export const RuleCidr = z.union([Ipv4Cidr, Ipv6Cidr, Ipv4Address, Ipv6Address]);

const L4Port = z.number().int().min(1).max(65535);

export const RuleComment = z
  .string()
  .regex(
    /^[A-Za-z0-9 _.,:-]{0,64}$/,
    "comment: at most 64 of [A-Za-z0-9 _.,:-]",
  );

export type Family = "ipv4" | "ipv6";

export function familyOf(addr: string): Family {
  return addr.includes(":") ? "ipv6" : "ipv4";
}

/** Which address family a protocol implies (undefined: either). */
export function protoFamily(proto: RuleProto | undefined): Family | undefined {
  switch (proto) {
    case "arp":
    case "ipv4":
    case "icmp":
      return "ipv4";
    case "ipv6":
    case "icmpv6":
      return "ipv6";
    default:
      return undefined;
  }
}

export const CustomRule = z
  .strictObject({
    direction: z.enum(["from-vm", "to-vm"]),
    action: z.enum(["accept", "drop"]),
    proto: RuleProto.optional(),
    src: RuleCidr.optional(),
    dst: RuleCidr.optional(),
    dport: z.union([L4Port, z.tuple([L4Port, L4Port])]).optional(),
    comment: RuleComment.optional(),
  })
  .superRefine((r, ctx) => {
    const want = protoFamily(r.proto);
    for (const key of ["src", "dst"] as const) {
      const a = r[key];
      if (a === undefined) continue;
      if (want !== undefined && familyOf(a) !== want) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${familyOf(a)} prefix ${a} does not match proto ${r.proto}`,
        });
      }
    }
    if (
      r.src !== undefined &&
      r.dst !== undefined &&
      familyOf(r.src) !== familyOf(r.dst)
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["dst"],
        message: "src and dst must be of the same address family",
      });
    }
    if (r.dport !== undefined) {
      if (r.proto !== "tcp" && r.proto !== "udp") {
        ctx.addIssue({
          code: "custom",
          path: ["dport"],
          message: "dport needs proto tcp or udp",
        });
      }
      if (Array.isArray(r.dport) && r.dport[0] > r.dport[1]) {
        ctx.addIssue({
          code: "custom",
          path: ["dport"],
          message: `port range [${r.dport[0]}, ${r.dport[1]}] is reversed`,
        });
      }
    }
  });
export type CustomRule = z.infer<typeof CustomRule>;

export const PortFilter = z
  .strictObject({
    port: IfName,
    policy: PortPolicy,
    mac: MacAddress.optional(),
    ipv4: z.array(GuestIpv4Address).default([]),
    ipv6: z.array(GuestIpv6Address).default([]),
    allowDhcp: z.boolean().default(true),
    allowIpv6: z.boolean().default(false),
    rules: z.array(CustomRule).default([]),
  })
  .superRefine((p, ctx) => {
    if (p.policy === "clean-traffic" && p.mac === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["mac"],
        message: "mac is required for policy clean-traffic",
      });
    }
  });
export type PortFilter = z.infer<typeof PortFilter>;

/** Reasons raw text is refused (it is otherwise checked by `nft -c` when applied). */
export function rawProblems(raw: string): string[] {
  const problems: string[] = [];
  if (raw.includes("\0")) problems.push("contains a NUL byte");
  // Statements split on newlines and ';' outside strings and comments; track brace depth.
  const forbidden = new Set([
    "table",
    "delete",
    "destroy",
    "flush",
    "include",
    "define",
    "undefine",
    "redefine",
    "reset",
    "list",
    "add",
    "create",
    "insert",
    "replace",
    "rename",
    "monitor",
    "describe",
    "import",
    "export",
  ]);
  let depth = 0;
  let inString = false;
  let inComment = false;
  let stmt = "";
  let wentNegative = false;
  const endStatement = (): void => {
    const words = stmt.trim().split(/\s+/);
    const first = words[0] ?? "";
    // `add @set { ... }` / `delete @set { ... }` are rule statements (dynamic sets), not commands
    const setStatement = (words[1] ?? "").startsWith("@");
    if (first !== "" && forbidden.has(first.toLowerCase()) && !setStatement) {
      problems.push(
        `statement starting with "${first}" is not allowed inside the table block`,
      );
    }
    stmt = "";
  };
  for (const ch of raw) {
    if (inComment) {
      if (ch === "\n") {
        inComment = false;
        endStatement();
      }
      continue;
    }
    if (inString) {
      if (ch === '"') inString = false;
      if (ch === "\n") {
        problems.push("unterminated string");
        inString = false;
        endStatement();
        continue;
      }
      stmt += ch;
      continue;
    }
    switch (ch) {
      case '"':
        inString = true;
        stmt += ch;
        break;
      case "#":
        inComment = true;
        break;
      case "{":
        depth++;
        endStatement();
        break;
      case "}":
        depth--;
        if (depth < 0) wentNegative = true;
        endStatement();
        break;
      case "\n":
      case ";":
        endStatement();
        break;
      default:
        stmt += ch;
    }
  }
  if (inString) problems.push("unterminated string");
  endStatement();
  if (wentNegative)
    problems.push("unbalanced braces: a '}' closes more than was opened");
  else if (depth !== 0)
    problems.push(`unbalanced braces: ${depth} '{' left open`);
  return [...new Set(problems)];
}

export const FilterChainSpec = z
  .strictObject({
    table: NftIdentifier.default("hostnet"),
    ports: z.array(PortFilter).min(1, "at least one port is required"),
    raw: z.string().optional(),
  })
  .superRefine((s, ctx) => {
    const seen = new Map<string, number>();
    s.ports.forEach((p, i) => {
      const first = seen.get(p.port);
      if (first === undefined) {
        seen.set(p.port, i);
      } else {
        ctx.addIssue({
          code: "custom",
          path: ["ports", i, "port"],
          message: `duplicate port "${p.port}" at ports[${i}].port (first at ports[${first}].port)`,
        });
      }
    });
    if (s.raw !== undefined) {
      for (const problem of rawProblems(s.raw)) {
        ctx.addIssue({ code: "custom", path: ["raw"], message: problem });
      }
    }
  });
export type FilterChainSpec = z.infer<typeof FilterChainSpec>;
export type FilterChainSpecInput = z.input<typeof FilterChainSpec>;

/** Thrown by compileFilterChain for an invalid spec; `issues` are `spec.path: message` lines. */
export class FilterSpecError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid filter spec:\n${issues.join("\n")}`);
    this.name = "FilterSpecError";
  }
}

/** Parse (with defaults) or throw FilterSpecError. */
export function parseFilterChainSpec(input: unknown): FilterChainSpec {
  const r = FilterChainSpec.safeParse(input);
  if (!r.success) throw new FilterSpecError(formatIssues(r.error, "spec"));
  return r.data;
}
