/**
 * The rule machinery under every string schema of this folder (names.ts, addresses.ts,
 * sysctl.ts): zod schemas for every string that can reach a host (shell, `ip -batch`, nft,
 * /proc/sys).
 *
 * Policy: anything outside a narrow, documented charset is REJECTED, never escaped. Each
 * schema reports the first problem it finds in one operator-readable sentence, so that a
 * bad stack config fails at preview time with a message that says exactly what to fix.
 *
 * All schemas accept ASCII only: every value here ends up in kernel names, nft scripts or
 * shell lines, where non-ASCII is either illegal or a lookalike-character trap.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------
// Rule machinery: a rule returns a problem sentence, or undefined when the value passes.
// Rules run in order and only the first problem is reported: for a single string, one
// precise sentence beats a cascade of consequences ("bad char", then "bad start", ...).
// ---------------------------------------------------------------------------------------

export type Rule = (s: string) => string | undefined;

export function firstProblem(
  s: string,
  rules: readonly Rule[],
): string | undefined {
  for (const rule of rules) {
    const problem = rule(s);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing (undefined)";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return `a number (${String(v)})`;
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/** Names a character so that invisible or ambiguous ones are still identifiable in logs. */
export function describeChar(c: string): string {
  const cp = c.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  const named: Record<string, string> = {
    " ": "a space",
    "\n": "a newline",
    "\r": "a carriage return",
    "\t": "a tab",
    "\0": "a NUL byte",
  };
  if (named[c] !== undefined) return named[c];
  if (cp < 0x20 || cp === 0x7f) return `control character ${hex}`;
  if (cp > 0x7e) return `non-ASCII character '${c}' (${hex})`;
  return c === "'" ? `"'"` : `'${c}'`;
}

/** Quotes a value for an error message; truncated so a 1 MB hostile input stays one line. */
export function show(s: string): string {
  return JSON.stringify(s.length > 48 ? `${s.slice(0, 48)}…` : s);
}

/** A string schema whose type error names what was expected and which runs `rules`. */
export function text(what: string, rules: readonly Rule[]) {
  return z
    .string({
      error: (issue) =>
        `expected ${what} as a string, got ${kindOf(issue.input)}`,
    })
    .superRefine((s, ctx) => {
      const problem = firstProblem(s, rules);
      if (problem !== undefined)
        ctx.addIssue({ code: "custom", message: problem });
    });
}

export const nonEmpty =
  (what: string): Rule =>
  (s) =>
    s.length === 0 ? `${what} must not be empty` : undefined;

export const maxChars =
  (what: string, max: number): Rule =>
  (s) =>
    s.length > max
      ? `${what} must be at most ${max} characters, got ${s.length}`
      : undefined;

export const findChar = (
  s: string,
  bad: (c: string) => boolean,
): string | undefined => {
  for (const c of s) if (bad(c)) return c;
  return undefined;
};

/** Control characters (NUL, newline, ...) are the classic command/line injection vectors. */
export const noControl =
  (what: string): Rule =>
  (s) => {
    const c = findChar(s, (ch) => ch < " " || ch === "\x7f");
    return c === undefined
      ? undefined
      : `${what} must not contain ${describeChar(c)}`;
  };

export const asciiOnly =
  (what: string): Rule =>
  (s) => {
    const c = findChar(s, (ch) => ch > "\x7e");
    return c === undefined
      ? undefined
      : `${what} must contain only ASCII characters, found ${describeChar(c)}`;
  };

/** Rejects characters outside `allowed` (a one-character class) and names the first one. */
export const onlyChars =
  (what: string, allowed: RegExp, desc: string): Rule =>
  (s) => {
    const c = findChar(s, (ch) => !allowed.test(ch));
    return c === undefined
      ? undefined
      : `${what} may contain only ${desc}, found ${describeChar(c)}`;
  };

export const startsWith =
  (what: string, allowed: RegExp, desc: string): Rule =>
  (s) =>
    allowed.test(s[0] ?? "")
      ? undefined
      : `${what} must start with ${desc}, got ${describeChar(s[0] ?? "")}`;

export const notDots =
  (what: string): Rule =>
  (s) =>
    s === "." || s === ".." ? `${what} must not be "." or ".."` : undefined;

/**
 * The checks every schema shares, in the order that gives the most useful first message.
 * Spaces are left to each schema's charset rule, which names the first offending character.
 */
export function baseRules(what: string, length: Rule): Rule[] {
  return [nonEmpty(what), length, noControl(what), asciiOnly(what)];
}
