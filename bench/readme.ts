// bench/README.md keeps the latest figures of each benchmark between result markers; a run rewrites
// only its own block and leaves the prose around it alone.
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "../scripts/engine";
import type { BenchSection } from "./provision";

export const BENCH_README = path.join(PROJECT_ROOT, "bench", "README.md");

/** `text` with the block between `name`'s markers replaced (or put under `## heading`, or appended). */
export function replaceResultBlock(
  text: string,
  name: string,
  heading: string,
  block: string,
): string {
  const begin = `<!-- ${name}-results:begin (written by npm run bench) -->`;
  const end = `<!-- ${name}-results:end -->`;
  const marked = `${begin}\n${block}\n${end}`;
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  if (b >= 0 && e > b)
    return text.slice(0, b) + marked + text.slice(e + end.length);
  const found = new RegExp(`^## ${heading}[^\\n]*\\n`, "m").exec(text);
  if (found) {
    const at = found.index + found[0].length;
    return text.slice(0, at) + "\n" + marked + "\n" + text.slice(at);
  }
  const head =
    text.trim() === "" ? "# hostnet benchmarks\n" : text.replace(/\s*$/, "\n");
  return `${head}\n## ${heading}\n\n${marked}\n`;
}

export function writeResultBlock(
  name: string,
  heading: string,
  block: string,
): void {
  const text = fs.existsSync(BENCH_README)
    ? fs.readFileSync(BENCH_README, "utf8")
    : "";
  fs.writeFileSync(
    BENCH_README,
    replaceResultBlock(text, name, heading, block),
  );
}

/** The same section as Markdown (for the README). */
export function markdownTable(s: BenchSection): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  const lines = [
    `| ${s.columns.map(esc).join(" | ")} |`,
    `|${s.columns.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
  ];
  for (const r of s.rows) lines.push(`| ${r.map(esc).join(" | ")} |`);
  return [
    `**${s.title}**`,
    "",
    ...lines,
    ...(s.notes ?? []).map((n) => `\n_${n}_`),
  ].join("\n");
}
