// Transport benchmark (issue 3): 1,000 link operations on one lab host, coalesced by the host queue
// vs one SSH round trip each; and the time to read the whole host snapshot with 10, 100 and 300
// namespaces. `node dist/bench/transport.js` (lab host lab3; creates and removes `bt*` objects).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostFor } from "../providers/host";
import { batchLine } from "../providers/shell";
import { closeAllSessions } from "../providers/sshPool";

const ROOT = path.resolve(__dirname, "..", "..");

function lab() {
  execFileSync("bash", [path.join(ROOT, "scripts", "lab.sh"), "up", "3"], { stdio: "ignore" });
  const inv = JSON.parse(fs.readFileSync(path.join(ROOT, ".hostnet", "lab", "inventory.json"), "utf8"));
  const h = inv.hosts[2];
  return { host: h.address, port: h.port, hostKey: h.hostKey, privateKey: fs.readFileSync(inv.privateKeyPath, "utf8") };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runTransportBench(opts: { ops?: number; reps?: number } = {}) {
  const N = opts.ops ?? 1000;
  const reps = opts.reps ?? 3;
  const conn = lab();
  const host = hostFor(conn);
  const ops = (tag: string) => Array.from({ length: N }, (_, i) => batchLine(["link", "add", `bt${tag}${i}`, "type", "bridge"]));
  const reset = () => host.read("ip netns del btq 2>/dev/null; ip netns add btq\n", "reset");
  const coalesced: number[] = [];
  const single: number[] = [];
  const trips: number[] = [];
  for (let r = 0; r < reps; r++) {
    await reset();
    const e0 = host.session.stats.execs;
    let t = Date.now();
    await Promise.all(ops("c").map((line) => host.run({ kind: "batch", tool: "ip", netns: "btq", lines: [line], what: "bench" })));
    coalesced.push(Date.now() - t);
    trips.push(host.session.stats.execs - e0);
    await reset();
    t = Date.now();
    for (const line of ops("s")) await host.read(`ip -n btq ${line}\n`, "bench single");
    single.push(Date.now() - t);
  }
  await host.read("ip netns del btq 2>/dev/null; true\n", "clean up");

  const snapshots: Record<number, number> = {};
  for (const n of [10, 100, 300]) {
    await host.read(`for i in $(seq 1 ${n}); do echo netns add bts-$i; done | ip -batch -\n`, "make namespaces");
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      host.invalidate();
      const t = Date.now();
      await host.snapshot();
      times.push(Date.now() - t);
    }
    snapshots[n] = median(times);
    await host.read(`for i in $(seq 1 ${n}); do echo netns del bts-$i; done | ip -batch -\n`, "remove namespaces");
  }
  closeAllSessions();
  return {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ""}, kernel ${os.release()}, load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
    ops: N,
    coalescedMs: median(coalesced),
    coalescedRoundTrips: median(trips),
    oneRoundTripEachMs: median(single),
    speedup: median(single) / median(coalesced),
    snapshotMs: snapshots,
  };
}

if (require.main === module) {
  runTransportBench().then(
    (r) => {
      fs.mkdirSync(path.join(ROOT, "bench", "results"), { recursive: true });
      fs.writeFileSync(path.join(ROOT, "bench", "results", "transport.json"), JSON.stringify(r, null, 2));
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
