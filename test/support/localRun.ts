/**
 * Running local commands from the lab-free netns tests (nftCompile.nft, arpAnswer.nft): argv
 * arrays only, never a shell.
 */
import { spawnSync } from "child_process";

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(argv: string[], input?: string): Result {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    input,
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024, // `nft -j list` of 300 ports is several MB
  });
  return {
    status: r.status,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? (r.error ? String(r.error) : ""),
  };
}

/** run(), or an error naming the command and its stderr. */
export function must(argv: string[], input?: string): string {
  const r = run(argv, input);
  if (r.status !== 0)
    throw new Error(
      `${argv.join(" ")} failed (${r.status}): ${r.stderr.trim()}`,
    );
  return r.stdout;
}

/** argv run inside network namespace `ns`. */
export const inNs = (ns: string, argv: string[]): string[] => [
  "ip",
  "netns",
  "exec",
  ns,
  ...argv,
];

/** A fresh namespace with IPv6 off (no autoconfiguration noise in counters) and lo up. */
export function quietNamespace(ns: string): void {
  must(["ip", "netns", "add", ns]);
  for (const k of ["all", "default"])
    must(inNs(ns, ["sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]));
  must(["ip", "-n", ns, "link", "set", "lo", "up"]);
}

/**
 * A "VM" behind a bridge port: veth `port` on `bridge` in `hostNs`, its peer eth0 in `vmNs` with
 * `mac` and `ip`/24, both up.
 */
export function vmBehindPort(
  hostNs: string,
  bridge: string,
  port: string,
  vm: { ns: string; mac: string; ip: string },
): void {
  must(
    ["ip", "-n", hostNs, "link", "add", port, "type", "veth"].concat([
      "peer",
      "name",
      "eth0",
      "netns",
      vm.ns,
    ]),
  );
  must(["ip", "-n", hostNs, "link", "set", port, "master", bridge, "up"]);
  must(["ip", "-n", vm.ns, "link", "set", "eth0", "address", vm.mac]);
  must(["ip", "-n", vm.ns, "addr", "add", `${vm.ip}/24`, "dev", "eth0"]);
  must(["ip", "-n", vm.ns, "link", "set", "eth0", "up"]);
}
