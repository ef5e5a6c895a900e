// Reporting: a ZodError as `field.path: message` lines, and the error that lists them all.
import { z } from "zod";

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && PLAIN_KEY.test(key))
      out += out === "" ? key : `.${key}`;
    else
      out += `[${typeof key === "string" ? JSON.stringify(key) : String(key)}]`;
  }
  return out === "" ? "value" : out;
}

/**
 * An issue's own words. For a record key (or a map/set element) that failed its schema, zod says
 * only "Invalid key in record"; the reasons are in the nested issues, so those are what we print.
 */
function messageOf(issue: z.core.$ZodIssue): string {
  if (
    (issue.code === "invalid_key" || issue.code === "invalid_element") &&
    issue.issues.length > 0
  )
    return issue.issues.map((i) => i.message).join("; ");
  return issue.message;
}

/** One line per issue: "root.path.to[3].field: message". */
export function formatIssues(error: z.ZodError, root = ""): string[] {
  return error.issues.map(
    (issue) => `${formatPath(root, issue.path)}: ${messageOf(issue)}`,
  );
}

/** Error thrown by parseOrThrow; `issues` holds the formatted lines for programmatic use. */
export class ValidationError extends Error {
  constructor(
    readonly root: string,
    readonly issues: readonly string[],
  ) {
    super(
      `invalid ${root}:\n${issues.map((line) => `  - ${line}`).join("\n")}`,
    );
    this.name = "ValidationError";
  }
}

/** Parses or throws a ValidationError listing EVERY issue, so one run shows all fixes. */
export function parseOrThrow<T>(
  schema: z.ZodType<T>,
  value: unknown,
  root: string,
): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(root, formatIssues(result.error, root));
}
