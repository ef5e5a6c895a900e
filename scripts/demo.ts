// README command 1: lab hosts, the `lab` stack with every attachment kind applied through the real
// engine, a table of what was made, the topology pictures, an out-of-band change caught by the
// drift gate, and the repair. Safe to run again.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { vmKey } from "../components/spec";
import { hostFor } from "../providers/host";
import { parseStackConfig, readLabInventory } from "../stacks/config";
import { ENGINE_PARALLEL, PROJECT_ROOT } from "./engine";
import { renderSvg, topologyDot } from "./picture";
import { driftReport, environmentStack, formatDrift } from "./stacks";

const step = (s: string) => console.log(`\n== ${s}`);

function labConnection(
  h: { address: string; port: number; hostKey: string },
  key: string,
) {
  return {
    host: h.address,
    port: h.port,
    user: "root",
    hostKey: h.hostKey,
    privateKey: key,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((r) => r[i].length)),
  );
  return rows
    .map((r) => "  " + r.map((c, i) => c.padEnd(widths[i])).join("  "))
    .join("\n");
}

async function main(): Promise<void> {
  step("lab hosts (npm run lab -- up 2)");
  execFileSync(
    "bash",
    [path.join(PROJECT_ROOT, "scripts", "lab.sh"), "up", "2"],
    { stdio: "inherit" },
  );
  const inv = readLabInventory();
  const key = fs.readFileSync(inv.privateKeyPath, "utf8");

  step("pulumi up -s lab (real engine, real SSH)");
  const stack = await environmentStack("lab");
  const t0 = Date.now();
  const up = await stack.up({ color: "never", parallel: ENGINE_PARALLEL });
  console.log(
    `  ${up.summary.result} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(up.summary.resourceChanges)}`,
  );

  step("what hostnet made");
  const cfg = await stack.getAllConfig();
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg))
    raw[k.replace(/^hostnet:/, "")] =
      k === "hostnet:inventory" ? v.value : JSON.parse(v.value);
  const config = parseStackConfig(raw);
  console.log(
    table([
      [
        "HOST",
        "VM",
        "IFNAME",
        "ATTACHMENT",
        "MANAGED FDB",
        "FILTER",
        "ADDRESS",
      ],
      ...config.vms.map((v) => [
        v.host,
        v.name,
        vmKey(v),
        v.attachment +
          (v.attachment === "macvlan" ? ` (${v.macvlanMode})` : ""),
        v.managedFdb ? "yes" : "-",
        v.attachment === "macvlan" || v.attachment === "routed"
          ? "-"
          : v.filter,
        v.ipv4.join(" "),
      ]),
    ]),
  );

  step("topology pictures (Graphviz, from the live hosts)");
  const outDir = path.join(PROJECT_ROOT, ".hostnet", "pictures");
  for (const h of inv.hosts.filter((x) =>
    config.vms.some((v) => v.host === x.name),
  )) {
    const snap = await hostFor(labConnection(h, key)).snapshot();
    const file = path.join(outDir, `${h.name}.svg`);
    renderSvg(topologyDot(snap, h.name), file);
    console.log(`  ${file}`);
  }

  const lab1 = inv.hosts.find((h) => h.name === "lab1")!;
  if (
    config.vms.some((v) => v.name === "seg1") &&
    config.vms.some((v) => v.name === "seg2")
  ) {
    step(
      "one L2 segment across lab1 and lab2 (VXLAN): seg1@lab1 pings seg2@lab2; ARP is answered on lab1",
    );
    const tx = "ip -s link show vx-demo | awk '/TX:/ { getline; print $2 }'";
    const out = await hostFor(labConnection(lab1, key)).read(
      `ip -n guest-seg1 neigh flush all; a=$(${tx}); ip netns exec guest-seg1 ping -c 3 -W 1 198.19.13.42 | tail -2; b=$(${tx}); ` +
        `echo "vxlan packets sent by lab1: $((b - a)) for 3 pings (the ARP request never left lab1)"\n`,
      "ping across the segment",
    );
    console.log(
      out
        .trimEnd()
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n"),
    );
  }

  step(
    "an out-of-band change on lab1: delete web1's static fdb entry, turn learning back on",
  );
  await hostFor(labConnection(lab1, key)).read(
    "bridge fdb del 02:00:00:0a:01:01 dev hv-web1 master static 2>/dev/null; bridge link set dev hv-web1 learning on\n",
    "make a change behind hostnet's back",
  );

  step("drift gate (pulumi preview --refresh --expect-no-changes)");
  console.log(formatDrift(await driftReport(stack)));

  step("repair: pulumi up --refresh -s lab");
  const fix = await stack.up({
    color: "never",
    parallel: ENGINE_PARALLEL,
    refresh: true,
  });
  console.log(
    `  ${fix.summary.result}: ${JSON.stringify(fix.summary.resourceChanges)}`,
  );
  console.log(`  ${formatDrift(await driftReport(stack))}`);

  step("explore further");
  console.log(
    [
      "  npm run pulumi -- stack -s lab                                 # the lab stack's resources",
      "  npm run pulumi -- preview --refresh --expect-no-changes -s lab # the drift gate (non-zero exit on drift)",
      "  npm run gitops -- drift lab                                    # the same, naming each drifted property",
      "  npm run picture -- lab --drift                                 # redraw .hostnet/pictures/*.svg, drift in red",
      '  export PATH="$PWD/.hostnet/engine/bin:$PATH"; pulumi up -s lab  # plain pulumi works too',
      "  npm run lab -- status                                          # lab hosts; ssh with .hostnet/lab/id_ed25519",
      "  npm run pulumi -- destroy -s lab --yes && npm run lab -- down  # clean up",
    ].join("\n"),
  );
  process.exit(0);
}

main().catch((err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
