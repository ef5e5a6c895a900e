/**
 * The only way strings reach a shell, an iproute2 batch line or an nft script.
 *
 * shellQuote can carry any string except NUL, so it escapes. The batch and nft helpers
 * cannot escape reliably (their tokenizers have their own, version-dependent rules), so
 * they REJECT anything unusual instead; validate.ts schemas keep such values out anyway.
 */

/** Characters that are never special to a POSIX shell, so such words need no quoting. */
const SHELL_BARE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Words the shell treats specially in command position, even when otherwise "bare". */
const RESERVED_WORDS: ReadonlySet<string> = new Set([
  "case",
  "do",
  "done",
  "elif",
  "else",
  "esac",
  "fi",
  "for",
  "function",
  "if",
  "in",
  "select",
  "then",
  "time",
  "until",
  "while",
  "coproc",
]);

function assertString(s: unknown, fn: string): asserts s is string {
  // Callers are typed, but values can come from untyped Pulumi inputs at runtime.
  if (typeof s !== "string")
    throw new TypeError(
      `${fn}: expected a string, got ${s === null ? "null" : typeof s}`,
    );
}

function describe(c: string): string {
  const hex = `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
  return c === " "
    ? "a space"
    : c > " " && c < "\x7f"
      ? `'${c}'`
      : `character ${hex}`;
}

/** POSIX single-quote quoting: inside '...' nothing is special except ' itself. */
export function shellQuote(s: string): string {
  assertString(s, "shellQuote");
  // C strings (argv, execve) end at NUL, so no quoting can carry one intact.
  if (s.includes("\0"))
    throw new Error(
      "shellQuote: string contains a NUL byte, which no shell word can carry",
    );
  if (s === "") return "''";
  if (SHELL_BARE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export type Argv = readonly string[];

/**
 * The command word gets extra care: a bare "A=b" there is a variable assignment, "%1"
 * is a job reference and "if" a reserved word; quoting any of them makes a plain word.
 */
function quoteCommandWord(s: string): string {
  const quoted = shellQuote(s);
  const special = RESERVED_WORDS.has(s) || s.includes("=") || s.startsWith("%");
  return quoted === s && special ? `'${s}'` : quoted;
}

/** Quotes each element and joins with spaces: the shell re-splits it into exactly `argv`. */
export function argvToShell(argv: Argv): string {
  if (!Array.isArray(argv) || argv.length === 0)
    throw new Error("argvToShell: argv must be a non-empty array");
  return argv
    .map((word, i) => (i === 0 ? quoteCommandWord(word) : shellQuote(word)))
    .join(" ");
}

/**
 * Finds the first character the iproute2 batch tokenizer would treat specially: it
 * splits on whitespace, cuts at '#', and interprets '"', '\' (and we refuse "'" too).
 */
function batchProblem(token: string): string | undefined {
  if (token === "") return "is empty";
  for (const c of token) {
    const printable = c > " " && c < "\x7f";
    if (!printable || `"'\\#`.includes(c)) return `contains ${describe(c)}`;
  }
  return undefined;
}

/** One line for `ip -batch -` / `bridge -batch -`; throws rather than escapes. */
export function batchLine(tokens: readonly string[]): string {
  if (!Array.isArray(tokens) || tokens.length === 0)
    throw new Error("batchLine: tokens must be a non-empty array");
  for (const [i, token] of tokens.entries()) {
    assertString(token, "batchLine");
    const problem = batchProblem(token);
    if (problem !== undefined) {
      throw new Error(
        `batchLine: token ${i} ${JSON.stringify(token)} ${problem}; batch lines cannot carry it`,
      );
    }
  }
  return tokens.join(" ");
}

const HEREDOC_TAG = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Lines compared after trimming, to stay clear of any shell's delimiter-matching leniency. */
function tagAppears(body: string, tag: string): boolean {
  return body.split("\n").some((line) => line.trim() === tag);
}

function pickTag(body: string, tag: string | undefined): string {
  if (tag !== undefined) {
    if (!HEREDOC_TAG.test(tag))
      throw new Error(
        `heredoc: tag ${JSON.stringify(tag)} must match ${HEREDOC_TAG}`,
      );
    if (tagAppears(body, tag))
      throw new Error(
        `heredoc: tag ${JSON.stringify(tag)} appears as a line in the body`,
      );
    return tag;
  }
  let n = 0;
  while (tagAppears(body, `HN_EOF_${n}`)) n++;
  return `HN_EOF_${n}`;
}

/**
 * Quoted here-document (`<<'TAG'`): the shell expands nothing inside, so `body` arrives
 * verbatim, followed by one newline. The caller must end the line after the result.
 */
export function heredoc(body: string, tag?: string): string {
  assertString(body, "heredoc");
  if (body.includes("\0")) throw new Error("heredoc: body contains a NUL byte");
  const t = pickTag(body, tag);
  return `<<'${t}'\n${body}\n${t}`;
}

/**
 * Double-quoted nft string (e.g. an interface name in a set). nft has no escape
 * sequences inside "...", so '"' and '\' cannot be represented and are refused.
 */
export function nftString(s: string): string {
  assertString(s, "nftString");
  if (s === "") throw new Error("nftString: string must not be empty");
  for (const c of s) {
    const printable = c >= " " && c < "\x7f";
    if (!printable || c === '"' || c === "\\") {
      throw new Error(
        `nftString: ${JSON.stringify(s)} contains ${describe(c)}, which nft strings cannot carry`,
      );
    }
  }
  return `"${s}"`;
}
