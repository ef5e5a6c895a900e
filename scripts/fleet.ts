// `npm run fleet -- up|preview|drift|destroy ENV [--parallel-hosts N]`: an environment rolled out
// as one stack per host (`<env>.<host>`), each in its own engine process (scripts/fleetHost.ts),
// from the same program and the same Pulumi.<env>.yaml.
//
// up: batches from rollout.serial; each batch's host stacks run in parallel (at most N at once);
// after each batch the gate counts the hosts that failed (the engine failed, or the health check
// found problems) over the WHOLE rollout so far; more than rollout.maxFailures stops the rollout and
// later batches are not touched. Every host stack re-checks its host's health on every up, so after
// a fix the next `fleet up` passes the gate and continues. drift: every host stack is refreshed and
// compared; exit 3 on any drift, naming host, object and property. Each run writes a JSON report
// to .hostnet/reports/<env>-fleet-<op>.json.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "./engine";
import { formatDrift } from "./stacks";
import type { HostResult } from "./fleetHost";
import { parseStackConfig, StackConfig } from "../stacks/config";
import { planBatches } from "../stacks/rollout";

export const EXIT_DRIFT = 3;
const OPS = ["up", "preview", "drift", "destroy"] as const;
type Op = (typeof OPS)[number];
type State =
  | "queued"
  | "applying"
  | "healthy"
  | "unhealthy"
  | "failed"
  | "applied"
  | "untouched"
  | "done";

interface HostRow {
  host: string;
  batch: number;
  state: State;
  seconds?: number;
  result?: HostResult;
}

/** Pulumi.<env>.yaml as the stack program would see it (secrets are not needed to plan). */
export function readEnvironment(
  env: string,
  configDir: string,
): { text: string; config: StackConfig } {
  const file = path.join(configDir, `Pulumi.${env}.yaml`);
  if (!fs.existsSync(file))
    throw new Error(
      `fleet: no ${file}: an environment is a Pulumi.<env>.yaml (see Pulumi.production.yaml.example)`,
    );
  const text = fs.readFileSync(file, "utf8");
  // js-yaml ships with @pulumi/pulumi; resolve it from there.
  const yaml = require(
    require.resolve("js-yaml", {
      paths: [path.dirname(require.resolve("@pulumi/pulumi/package.json"))],
    }),
  );
  const doc = (yaml.load(text) ?? {}) as { config?: Record<string, unknown> };
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    if (
      !k.startsWith("hostnet:") ||
      k === "hostnet:privateKey" ||
      k === "hostnet:privateKeyFile" // the key source: read by the stack program, not its config
    )
      continue;
    raw[k.slice("hostnet:".length)] = v;
  }
  if ("onlyHost" in raw)
    throw new Error(
      `fleet: ${file} sets hostnet:onlyHost; that key is the fleet runner's own (it marks a host stack)`,
    );
  return { text, config: parseStackConfig(raw) };
}

/** The host stack's config: the environment's file with hostnet:onlyHost added (salt and secrets kept). */
export function hostStackConfig(envText: string, host: string): string {
  const line = `  hostnet:onlyHost: ${JSON.stringify(host)}`;
  if (/^config:\s*$/m.test(envText))
    return envText.replace(/^config:\s*$/m, `config:\n${line}`);
  return `config:\n${line}\n${envText}`;
}

function runHost(
  fleetDir: string,
  env: string,
  host: string,
  op: Op,
): Promise<HostResult> {
  const log = path.join(fleetDir, "logs", `${host}.${op}.log`);
  fs.writeFileSync(log, "");
  const child = spawn(
    process.execPath,
    [path.join(__dirname, "fleetHost.js"), fleetDir, env, host, op, log],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      const line = out
        .split("\n")
        .reverse()
        .find((l) => l.startsWith("RESULT "));
      resolve(
        line
          ? JSON.parse(line.slice(7))
          : {
              ok: false,
              error: `host stack process exited ${code} without a result:\n${out.trim()}\n(engine log: ${log})`,
            },
      );
    }),
  );
}

async function inParallel<T>(
  items: T[],
  limit: number,
  f: (t: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift())
        await f(t);
    }),
  );
}

function verdict(op: Op, r: HostResult, healthCheck: boolean): State {
  if (!r.ok) return "failed";
  if (op !== "up") return "done";
  if (!healthCheck || !r.health) return "applied";
  return r.health.healthy ? "healthy" : "unhealthy";
}

function why(row: HostRow): string {
  const r = row.result;
  if (!r) return "";
  if (!r.ok)
    return (
      (r.error ?? "")
        .split("\n")
        .find((l) => /error|failed|locked/i.test(l))
        ?.trim() ?? (r.error ?? "").split("\n")[0]
    );
  if (r.health && !r.health.healthy) return r.health.problems.join("; ");
  if (r.drift)
    return r.drift.length ? `${r.drift.length} drifted object(s)` : "no drift";
  return r.changes
    ? Object.entries(r.changes)
        .filter(([k, n]) => k !== "same" && n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ") || "no changes"
    : "";
}

export function summaryTable(rows: HostRow[]): string {
  const lines = [
    ["HOST", "BATCH", "STATE", "TIME", "DETAIL"],
    ...rows.map((r) => [
      r.host,
      String(r.batch + 1),
      r.state,
      r.seconds === undefined ? "-" : `${r.seconds.toFixed(0)}s`,
      why(r),
    ]),
  ];
  const widths = [0, 1, 2, 3].map((i) =>
    Math.max(...lines.map((l) => l[i].length)),
  );
  return lines
    .map((l) =>
      l
        .map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export async function fleet(
  op: Op,
  env: string,
  opts: {
    parallelHosts: number;
    configDir: string;
    print: (s: string) => void;
  },
): Promise<number> {
  const { text, config } = readEnvironment(env, opts.configDir);
  const fleetDir = path.join(PROJECT_ROOT, ".hostnet", "fleet", env);
  fs.mkdirSync(path.join(fleetDir, "logs"), { recursive: true });
  fs.writeFileSync(
    path.join(fleetDir, "Pulumi.yaml"),
    "name: hostnet\nruntime: nodejs\ndescription: hostnet host stacks (written by npm run fleet)\n",
  );
  const hosts = config.hosts.filter(
    (h) =>
      config.vms.some((v) => v.host === h.name) || config.bridges.length > 0,
  );
  for (const h of hosts) {
    const file = path.join(fleetDir, `Pulumi.${env}.${h.name}.yaml`);
    // An environment without secrets has no salt; keep the one the engine gave the host stack.
    const salt =
      !/^encryptionsalt:/m.test(text) && fs.existsSync(file)
        ? fs.readFileSync(file, "utf8").match(/^encryptionsalt:.*$/m)?.[0]
        : undefined;
    fs.writeFileSync(
      file,
      hostStackConfig(text, h.name) + (salt ? `\n${salt}\n` : ""),
    );
  }
  const batches = planBatches(
    hosts.map((h) => h.name),
    op === "up" ? config.rollout.serial : ["100%"],
  );
  if (op === "destroy") batches.reverse();
  const rows: HostRow[] = batches.flatMap((b, i) =>
    b.map((host) => ({ host, batch: i, state: "queued" as State })),
  );
  const say = (row: HostRow) =>
    opts.print(
      `fleet ${op} ${env}: ${row.host.padEnd(12)} ${row.state}${row.state === "applying" || row.state === "queued" ? "" : ` (${row.seconds?.toFixed(0)}s) ${why(row)}`}\n`,
    );
  rows.forEach(say);
  let stopped = "";
  for (let i = 0; i < batches.length && !stopped; i++) {
    await inParallel(
      rows.filter((r) => r.batch === i),
      opts.parallelHosts,
      async (row) => {
        row.state = "applying";
        say(row);
        const t0 = Date.now();
        row.result = await runHost(fleetDir, env, row.host, op);
        row.seconds = (Date.now() - t0) / 1000;
        row.state = verdict(op, row.result, config.rollout.healthCheck);
        say(row);
      },
    );
    const failed = rows.filter(
      (r) => r.state === "failed" || r.state === "unhealthy",
    );
    if (op === "up" && failed.length > config.rollout.maxFailures) {
      const later = rows.filter((r) => r.batch > i);
      later.forEach((r) => (r.state = "untouched"));
      stopped =
        `rollout stopped after batch ${i + 1} of ${batches.length}: ${failed.length} failed or unhealthy host(s) so far, failure budget maxFailures=${config.rollout.maxFailures}.\n` +
        failed.map((r) => `  ${r.host}: ${r.state}: ${why(r)}`).join("\n") +
        `\n${later.length ? `Later batches were not touched (${later.map((r) => r.host).join(", ")})` : "That was the last batch"}. Fix the hosts above (or raise maxFailures) and run ` +
        `'npm run fleet -- up ${env}' again: every host stack is applied again and every host re-checked.`;
    }
  }
  const reportDir = path.join(PROJECT_ROOT, ".hostnet", "reports");
  fs.mkdirSync(reportDir, { recursive: true });
  const drift = rows.flatMap((r) =>
    (r.result?.drift ?? []).map((d) => ({ host: r.host, ...d })),
  );
  fs.writeFileSync(
    path.join(reportDir, `${env}-fleet-${op}.json`),
    JSON.stringify(
      {
        env,
        op,
        at: new Date().toISOString(),
        stopped: stopped || undefined,
        drift: op === "drift" ? drift : undefined,
        hosts: rows.map((r) => ({
          host: r.host,
          batch: r.batch + 1,
          state: r.state,
          seconds: r.seconds,
          ...r.result,
        })),
      },
      null,
      2,
    ),
  );
  opts.print(`\n${summaryTable(rows)}\n`);
  if (op === "drift") {
    for (const r of rows.filter((x) => x.result?.drift?.length)) {
      opts.print(
        formatDrift(r.result!.drift!)
          .split("\n")
          .slice(1)
          .map((l) => l.replace("DRIFT ", `DRIFT ${r.host} `))
          .join("\n") + "\n",
      );
    }
    opts.print(
      `fleet drift ${env}: ${drift.length === 0 ? "no drift on any host" : `${drift.length} drifted object(s) on ${new Set(drift.map((d) => d.host)).size} host(s)`}\n`,
    );
  }
  const errors = rows.filter((r) => r.state === "failed");
  if (stopped) opts.print(`\n${stopped}\n`);
  else if (errors.length)
    opts.print(
      `\n${errors.length} host stack(s) failed; their engine logs are in ${path.join(fleetDir, "logs")}\n`,
    );
  if (stopped || errors.length) return 1;
  return op === "drift" && drift.length > 0 ? EXIT_DRIFT : 0;
}

/** Host stacks at once unless --parallel-hosts says otherwise: one per core, at most 8. */
export function defaultParallelHosts(): number {
  return Math.max(1, Math.min(8, os.cpus().length));
}

function parseArgs(argv: string[]): {
  op: Op;
  env: string;
  parallelHosts: number;
} {
  const rest: string[] = [];
  let parallelHosts = defaultParallelHosts();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value =
      a === "--parallel-hosts"
        ? argv[++i]
        : a.startsWith("--parallel-hosts=")
          ? a.slice(17)
          : undefined;
    if (value !== undefined) {
      if (!/^[1-9][0-9]{0,2}$/.test(value))
        throw new Error(
          `fleet: --parallel-hosts must be a whole number from 1 to 999 (got '${value}')`,
        );
      parallelHosts = Number(value);
    } else rest.push(a);
  }
  const [op, env] = rest;
  if (
    !(OPS as readonly string[]).includes(op) ||
    !env ||
    !/^[A-Za-z0-9_-]+$/.test(env) ||
    rest.length > 2
  ) {
    throw new Error(
      "usage: npm run fleet -- up|preview|drift|destroy ENV [--parallel-hosts N]",
    );
  }
  return { op: op as Op, env, parallelHosts };
}

if (require.main === module) {
  Promise.resolve()
    .then(() => parseArgs(process.argv.slice(2)))
    .then(({ op, env, parallelHosts }) =>
      fleet(op, env, {
        parallelHosts,
        configDir: process.env.HOSTNET_CONFIG_DIR ?? PROJECT_ROOT,
        print: (s) => process.stdout.write(s),
      }),
    )
    .then(
      (code) => process.exit(code),
      (err) => {
        console.error(err instanceof Error ? err.message : String(err));
        process.exit(2);
      },
    );
}
