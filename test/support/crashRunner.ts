// One engine operation on a test topology, in a process of its own so a test can SIGKILL the engine
// (the `pulumi` child of this process) or the dynamic provider (the engine's child) in mid-run.
//   node dist/test/support/crashRunner.js <up|up-refresh|preview-clean|destroy|cancel|rm> <stack> <vms> <lab host index>
// `cancel` is `pulumi cancel`: a killed engine leaves its lock in a DIY backend (file, S3, Postgres).
// Topology: one lab host, one host bridge, <vms> VMs in the isolated-netns + managed-fdb attachment
// with ARP suppression (per VM: namespace, inner bridge, veth to the host bridge, tap, FilterChain,
// static fdb entry with its neighbour). The engine runs with hostnet's runner settings (engine.ts).
// Prints one line `@@result {"ok":bool,"ops":{op:count},"error":...}` and exits 0 when ok.
import { HostTopology } from "../../components/hostTopology";
import { BridgeSpec, VmSpec } from "../../components/spec";
import { inlineStack } from "../../scripts/engine";
import { TestStack } from "./harness";
import { inventory, labConnection } from "./lab";

export const CRASH_BRIDGE = "br-cr";
export const CRASH_NS_PREFIX = "vm-c";

export function crashVms(n: number, host: string): VmSpec[] {
  const hex2 = (x: number) => x.toString(16).padStart(2, "0");
  return Array.from({ length: n }, (_, i) =>
    VmSpec.parse({
      name: `c${String(i + 1).padStart(3, "0")}`,
      host,
      mac: `02:00:00:c1:${hex2((i + 1) >> 8)}:${hex2((i + 1) & 255)}`,
      ipv4: [
        `198.19.${200 + Math.floor((i + 1) / 250)}.${((i + 1) % 250) + 1}/16`,
      ],
      attachment: "isolated-netns",
      bridge: CRASH_BRIDGE,
      managedFdb: true,
      arpSuppress: true,
    }),
  );
}

async function main(): Promise<void> {
  const [op, stackName, vmCount, hostIndex] = process.argv.slice(2);
  const h = inventory().hosts[Number(hostIndex)];
  const stack = new TestStack(stackName, null, async () => {
    new HostTopology("cr", {
      hostName: h.name,
      connection: labConnection(h),
      bridges: [BridgeSpec.parse({ name: CRASH_BRIDGE })],
      vms: crashVms(Number(vmCount), h.name),
    });
  });
  const ops: Record<string, number> = {};
  const count = (r: { ops: Record<string, string> }) =>
    Object.values(r.ops).forEach((o) => (ops[o] = (ops[o] ?? 0) + 1));
  try {
    if (op === "up" || op === "up-refresh")
      count(await stack.up({ refresh: op === "up-refresh" }));
    else if (op === "preview-clean")
      count(await stack.preview({ refresh: true, expectNoChanges: true }));
    else if (op === "destroy") await stack.destroy();
    else if (op === "cancel")
      await (await inlineStack(stackName, async () => undefined)).cancel();
    else if (op === "rm") {
      await (
        await inlineStack(stackName, async () => undefined)
      )
        .cancel()
        .catch(() => undefined);
      await stack.destroy();
      await stack.remove();
    } else throw new Error(`unknown op ${op}`);
    console.log(`@@result ${JSON.stringify({ ok: true, ops })}`);
    process.exit(0);
  } catch (err) {
    console.log(
      `@@result ${JSON.stringify({ ok: false, ops, error: String((err as Error).message ?? err).slice(-6000) })}`,
    );
    process.exit(1);
  }
}

if (require.main === module) void main();
