// Shared machinery for resource lifecycle tests on lab hosts: a stack whose inline program reads a
// mutable config (so one test can up, change, preview and destroy), the engine's own account of
// each step (op and changed properties per resource), and an independent view of a host's state
// through a separate OpenSSH session for before/after comparisons.
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { inlineStack } from "../../scripts/engine";
import { changedProperties } from "../../scripts/stacks";
import { LabHost, sshRun } from "./lab";

export interface StepReport {
  /** URN name → op ("create" | "update" | "replace" | "same" | "delete" | "refresh" ...). */
  ops: Record<string, string>;
  /** URN name → property keys the engine says changed. */
  diffs: Record<string, string[]>;
  stdout: string;
}

function nameOf(urn: string): string {
  return urn.split("::").pop() ?? urn;
}

function collector() {
  const report: StepReport = { ops: {}, diffs: {}, stdout: "" };
  const onEvent = (e: EngineEvent) => {
    const md = e.resourcePreEvent?.metadata;
    if (!md || md.type === "pulumi:pulumi:Stack") return;
    const n = nameOf(md.urn);
    // A replace is reported as several steps (delete-replaced, create-replacement, replace);
    // keep the most telling one.
    if (report.ops[n] !== "replace") report.ops[n] = md.op === "create-replacement" || md.op === "delete-replaced" ? "replace" : md.op;
    const diffs = md.diffs?.length ? md.diffs : md.op === "same" ? [] : changedProperties(md.old?.outputs, md.new?.inputs);
    if (diffs.length) report.diffs[n] = [...new Set([...(report.diffs[n] ?? []), ...diffs])];
  };
  const onOutput = (s: string) => (report.stdout += s);
  return { report, onEvent, onOutput };
}

/** A test stack whose program is `program(config)`; change `config` between steps. */
export class TestStack<C> {
  config: C;
  private stack?: Stack;
  constructor(
    readonly name: string,
    initial: C,
    private readonly program: (config: C) => Promise<Record<string, unknown> | void>,
  ) {
    this.config = initial;
  }

  private async get(): Promise<Stack> {
    if (!this.stack) {
      this.stack = await inlineStack(this.name, async () => this.program(this.config) as Promise<Record<string, any>>);
    }
    return this.stack;
  }

  /** refresh: read the live state first (`up --refresh`), so drift is repaired. */
  async up(opts: { refresh?: boolean } = {}): Promise<StepReport & { outputs: Record<string, unknown> }> {
    const c = collector();
    const res = await (await this.get()).up({ onEvent: c.onEvent, onOutput: c.onOutput, color: "never", parallel: 64, refresh: opts.refresh });
    const outputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(res.outputs)) outputs[k] = v.value;
    return { ...c.report, outputs };
  }

  async preview(opts: { refresh?: boolean; expectNoChanges?: boolean } = {}): Promise<StepReport> {
    const c = collector();
    await (await this.get()).preview({
      onEvent: c.onEvent,
      onOutput: c.onOutput,
      color: "never",
      refresh: opts.refresh,
      expectNoChanges: opts.expectNoChanges,
      diff: true,
    });
    return c.report;
  }

  async refresh(): Promise<StepReport> {
    const c = collector();
    await (await this.get()).refresh({ onEvent: c.onEvent, onOutput: c.onOutput, color: "never" });
    return c.report;
  }

  async destroy(): Promise<void> {
    await (await this.get()).destroy({ color: "never", parallel: 64 });
  }

  /** Destroy (ignoring errors) and remove the stack: for after() hooks. */
  async dispose(): Promise<void> {
    if (!this.stack) return;
    await this.stack.destroy({ color: "never" }).catch(() => undefined);
    await this.stack.workspace.removeStack(this.name).catch(() => undefined);
  }

  async exportState(): Promise<string> {
    return JSON.stringify(await (await this.get()).exportStack());
  }
}

/** The bridge port flags worth comparing (timers and STP bookkeeping change on their own). */
function portFlagsOf(d: any): Record<string, unknown> | null {
  if (!d) return null;
  const keys = ["learning", "flood", "mcast_flood", "bcast_flood", "neigh_suppress", "isolated", "hairpin"];
  return Object.fromEntries(keys.filter((k) => k in d).map((k) => [k, d[k]]));
}

/**
 * What a host looks like, read over a separate OpenSSH session: namespaces, and per namespace the
 * links (name, kind, master, mtu, mac, admin state, alias, port flags), static fdb entries and nft
 * tables. Used to assert "destroy leaves nothing" and "bad input changes nothing".
 */
export function independentSnapshot(h: LabHost): Record<string, unknown> {
  const script = [
    'for ns in "" $(ip netns list | cut -d" " -f1); do',
    '  if [ -z "$ns" ]; then X=""; else X="ip netns exec $ns"; fi',
    '  echo "@@ns $ns"; $X ip -j -d link show',
    '  echo "@@fdb"; $X bridge -j fdb show 2>/dev/null || echo "[]"',
    '  echo "@@nft"; $X nft list tables 2>/dev/null | sort',
    "done",
  ].join("\n");
  const out = sshRun(h, `sh -c '${script.replace(/'/g, "'\\''")}'`);
  const result: Record<string, unknown> = {};
  for (const chunk of out.split("@@ns ").slice(1)) {
    const [head, rest] = [chunk.slice(0, chunk.indexOf("\n")), chunk.slice(chunk.indexOf("\n") + 1)];
    const [links, afterLinks] = rest.split("@@fdb\n");
    const [fdb, nft] = afterLinks.split("@@nft\n");
    result[head || "(root)"] = {
      links: (JSON.parse(links || "[]") as any[])
        .map((l) => ({
          name: l.ifname, kind: l.linkinfo?.info_kind ?? "", master: l.master ?? "", mtu: l.mtu, mac: l.address,
          up: (l.flags ?? []).includes("UP"), alias: l.ifalias ?? "", port: portFlagsOf(l.linkinfo?.info_slave_data),
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      fdb: (JSON.parse(fdb || "[]") as any[])
        .filter((e) => (e.state === "static" || e.state === "permanent") && !(e.flags ?? []).includes("self"))
        .map((e) => `${e.mac} ${e.ifname ?? ""} ${e.master ?? ""} ${e.state}`)
        .sort(),
      nft: nft.trim().split("\n").filter(Boolean),
    };
  }
  return result;
}
