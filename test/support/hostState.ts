// The whole network state of a lab host, read over a separate OpenSSH session, for "equals the
// desired state" comparisons: per namespace the links (kind, master, mtu, admin state, alias, port
// flags, peer), addresses, routes, permanent neighbours, static fdb entries, the nft ruleset and the
// namespace sysctls hostnet manages. What the kernel picks at random on each creation (MACs of
// veth/tap ends, IPv6 link-local addresses and their routes, nft counters) is left out, so the
// state of two runs that made the same objects compares equal.
import { NAMESPACE_SYSCTLS } from "../../providers/kinds/vmNetns";
import { LabHost, sshExec } from "./lab";

const PORT_FLAGS = [
  "learning",
  "flood",
  "mcast_flood",
  "bcast_flood",
  "neigh_suppress",
  "isolated",
  "hairpin",
];

const SCRIPT = [
  'for ns in "" $(ip netns list | cut -d" " -f1); do',
  '  if [ -z "$ns" ]; then N=""; X=""; else N="-n $ns"; X="ip netns exec $ns"; fi',
  '  echo "@@ns $ns"; ip $N -j -d link show',
  '  echo "@@addr"; ip $N -j addr show',
  '  echo "@@route"; ip $N -j route show table main; ip $N -j -6 route show table main 2>/dev/null || echo "[]"',
  '  echo "@@neigh"; ip $N -j neigh show nud permanent',
  '  echo "@@fdb"; bridge $N -j fdb show 2>/dev/null || echo "[]"',
  '  echo "@@sysctl"; $X sysctl ' +
    NAMESPACE_SYSCTLS.join(" ") +
    " 2>/dev/null",
  '  echo "@@nft"; $X nft list ruleset 2>/dev/null',
  "done",
].join("\n");

const json = (s: string | undefined): any[] =>
  s && s.trim()
    ? s
        .trim()
        .split("\n")
        .flatMap((l) => (l.startsWith("[") ? JSON.parse(l) : []))
    : [];

function section(text: string, name: string, next: string): string {
  const start = text.indexOf(`@@${name}\n`);
  const end = next ? text.indexOf(`@@${next}\n`, start) : text.length;
  return text.slice(start + name.length + 3, end);
}

function links(raw: any[], root: boolean) {
  return raw
    .map((l) => {
      const kind =
        l.linkinfo?.info_kind ?? (l.link_type === "loopback" ? "loopback" : "");
      const port = l.linkinfo?.info_slave_data;
      return {
        name: l.ifname,
        kind,
        master: l.master ?? "",
        mtu: l.mtu,
        up: (l.flags ?? []).includes("UP"),
        alias: l.ifalias ?? "",
        // Host bridges get a fixed MAC from hostnet; VM-namespace bridges and other ends a random one.
        mac: kind === "bridge" && root ? l.address : "",
        peer: l.link ?? "",
        port: port
          ? Object.fromEntries(
              PORT_FLAGS.filter((k) => k in port).map((k) => [k, port[k]]),
            )
          : null,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Every namespace of the host (root as "(root)"), in a form two runs can be compared by. */
export function fullHostState(h: LabHost): Record<string, unknown> {
  // 100 namespaces print megabytes of JSON: more than sshRun's default buffer.
  const out = sshExec(h, ["sh -s"], {
    input: SCRIPT,
    maxBuffer: 256 * 1024 * 1024,
  });
  const result: Record<string, unknown> = {};
  for (const chunk of out.split("@@ns ").slice(1)) {
    const name = chunk.slice(0, chunk.indexOf("\n")) || "(root)";
    const body = chunk.slice(chunk.indexOf("\n") + 1);
    const linkList = json(body.slice(0, body.indexOf("@@addr\n")));
    const addrs = json(section(body, "addr", "route"))
      .flatMap((l) =>
        (l.addr_info ?? []).map(
          (a: any) => `${l.ifname} ${a.local}/${a.prefixlen}`,
        ),
      )
      .filter((a: string) => !/ fe80:/.test(a))
      .sort();
    const routes = json(section(body, "route", "neigh"))
      .filter(
        (r) =>
          !String(r.dst).startsWith("fe80:") &&
          !String(r.dst).startsWith("ff00:"),
      )
      .map(
        (r) =>
          `${r.dst} ${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev}${r.scope ? ` scope ${r.scope}` : ""}`,
      )
      .sort();
    const neigh = json(section(body, "neigh", "fdb"))
      .map((n) => `${n.dst} ${n.lladdr ?? ""} dev ${n.dev}`)
      .sort();
    const fdb = json(section(body, "fdb", "sysctl"))
      .filter((e) => e.state === "static" && !(e.flags ?? []).includes("self"))
      .map(
        (e) =>
          `${e.mac} dev ${e.ifname} master ${e.master ?? ""}${e.vlan ? ` vlan ${e.vlan}` : ""}`,
      )
      .sort();
    const sysctl = section(body, "sysctl", "nft")
      .trim()
      .split("\n")
      .filter(Boolean)
      .sort();
    const nft = section(body, "nft", "")
      .replace(/counter packets \d+ bytes \d+/g, "counter")
      .trim();
    result[name] = {
      links: links(linkList, name === "(root)"),
      addrs,
      routes,
      neigh,
      fdb,
      sysctl,
      nft,
    };
  }
  return result;
}
