// The one POSIX sh script that dumps every namespace of a host in a single round trip; its
// output is read by parse.ts.
import { heredoc, shellQuote } from "../transport";
import { NetnsName } from "../schema";

/** Marker lines; nothing iproute2 or nft print can start with this. */
export const MARK = "@@hostnet";

/** Section order inside a namespace; bports/fdb/nsids print [] when links show they are moot. */
export const SECTIONS = [
  "links",
  "routes",
  "routes6",
  "bports",
  "fdb",
  "neigh",
  "nsids",
  "sysctl",
  "nft",
  "hooks",
] as const;

/**
 * Runs inside one namespace ($1 = its name, "" for root), via `ip netns exec NS sh -c`, so
 * the ip/bridge/nft calls below need no per-call netns switch. Each JSON section is
 * captured before it is printed, so a command that dies half-way leaves `[]` and an rc,
 * never truncated JSON. `ip -d addr show` is `ip -d link show` plus addresses: one process.
 */
/**
 * The namespace-wide sysctls every snapshot reads (VmNetns manages exactly these), so drift on them
 * is visible without extra round trips. Constants: they reach the script as written.
 */
export const NAMESPACE_SYSCTLS = [
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.forwarding",
  "net.ipv4.conf.all.proxy_arp",
  "net.ipv4.conf.all.rp_filter",
  "net.ipv4.conf.default.rp_filter",
  "net.ipv6.conf.all.disable_ipv6",
  "net.ipv6.conf.default.disable_ipv6",
  "net.ipv6.conf.all.forwarding",
] as const;

const PER_NS_SCRIPT = `ns=$1
mark() { printf '${MARK} ns=%s section=%s%s\\n' "$ns" "$1" "\${2:+ rc=$2}"; }
sec() {
  s=$1; shift
  out=$("$@"); rc=$?
  if [ "$rc" -eq 0 ]; then mark "$s"; [ -z "$out" ] || printf '%s\\n' "$out"
  else mark "$s" "$rc"; printf '[]\\n'; fi
}
moot() { mark "$1"; printf '%s\\n' "\${2:-[]}"; }
show() { { read -r v || [ -n "$v" ]; } 2>/dev/null <"$1" && printf '%s=%s\\n' "\${1#/proc/sys/}" "$v"; }
sysctls() {
  for k in ${NAMESPACE_SYSCTLS.map((k) => k.slice("net.".length).replace(/\./g, "/")).join(" ")}; do
    show "/proc/sys/net/$k"
  done
  for d in /proc/sys/net/ipv4/conf/*; do
    i=\${d##*/}
    case $i in all|default|lo) continue ;; esac
    show "$d/proxy_arp"; show "$d/forwarding"; show "/proc/sys/net/ipv6/conf/$i/forwarding"
    show "/proc/sys/net/ipv6/conf/$i/disable_ipv6"; show "/proc/sys/net/ipv6/conf/$i/force_forwarding"
  done
}
sec links ip -j -d addr show
links=$out
sec routes ip -j route show
sec routes6 ip -j -6 route show
case $links in
  *'"info_slave_kind"'*) sec bports bridge -j -d link show ;;
  *) moot bports ;;
esac
case $links in
  *bridge*|*vxlan*|*macv*) sec fdb bridge -j fdb show ;;
  *) moot fdb ;;
esac
case $links in
  *'"info_kind":"bridge"'*) sec neigh ip -j neigh show nud permanent ;;
  *) moot neigh ;;
esac
case $links in
  *link_netnsid*) sec nsids ip -j netns list-id ;;
  *) moot nsids ;;
esac
mark sysctl
sysctls
if command -v nft >/dev/null 2>&1; then
  sec nft nft -j list ruleset
  # nft's JSON leaves out the devices a netdev chain hooks; only then is the text listing needed.
  case $out in *'"netdev"'*) sec hooks nft list chains netdev ;; *) moot hooks ;; esac
else moot nft null; moot hooks; fi
exit 0`;

/**
 * Namespaces are dealt round-robin to `parallel` background workers, each writing its own
 * temp file (concurrent writers on one pipe would interleave sections); the files are
 * concatenated at the end, in any order, since every marker names its namespace. Without
 * mktemp, or with parallel=1, namespaces are dumped one by one straight to stdout.
 */
const DISPATCH = `hn_shard() {
  hn_i=0
  while IFS= read -r hn_l; do
    [ -n "$hn_l" ] && [ $((hn_i % $2)) -eq "$1" ] && hn_one "\${hn_l% (id: *)}" </dev/null
    hn_i=$((hn_i + 1))
  done
}
hn_all() {
  hn_tmp=
  [ "$1" -le 1 ] || hn_tmp=$(mktemp -d 2>/dev/null) || hn_tmp=
  if [ -z "$hn_tmp" ]; then printf '%s\\n' "$hn_list" | hn_shard 0 1; return; fi
  trap 'rm -rf "$hn_tmp"' EXIT
  trap 'exit 1' HUP INT TERM
  hn_w=0
  while [ "$hn_w" -lt "$1" ]; do
    printf '%s\\n' "$hn_list" | hn_shard "$hn_w" "$1" >"$hn_tmp/$hn_w" &
    hn_w=$((hn_w + 1))
  done
  wait
  cat "$hn_tmp"/*
  rm -rf "$hn_tmp"; trap - EXIT HUP INT TERM
}`;

/**
 * The whole body sits in a function so the shell has read all of it before anything
 * runs (the script may arrive on stdin via `sh -s`), and children get /dev/null as stdin
 * so none of them can swallow the rest of the script.
 */
function outerScript(listNamespaces: string, parallel: number): string {
  return `hn_main() {
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
HN_NS=$(cat ${heredoc(PER_NS_SCRIPT, "HN_PER_NS")}
)
hn_head() {
  printf '${MARK} section=%s\\n' "$1"; shift
  for f in "$@"; do { read -r v || [ -n "$v" ]; } 2>/dev/null <"$f" && { printf '%s\\n' "$v"; return; }; done
}
hn_one() {
  if [ ! -e "/run/netns/$1" ] && [ ! -e "/var/run/netns/$1" ]; then printf '${MARK} ns=%s section=absent\\n' "$1"; return; fi
  ip netns exec "$1" sh -c "$HN_NS" hn "$1" || printf '${MARK} ns=%s section=error rc=%s\\n' "$1" "$?"
}
${DISPATCH}
hn_head machine-id /etc/machine-id /var/lib/dbus/machine-id
hn_head hostname /proc/sys/kernel/hostname
sh -c "$HN_NS" hn ""
hn_list=${listNamespaces}
hn_all ${parallel}
printf '${MARK} end\\n'
}
hn_main </dev/null
`;
}

/** `ip netns list` prints "name (id: N)" once nsids exist; hn_shard strips that suffix. */
function namespaceList(namespaces: readonly string[] | undefined): string {
  if (namespaces === undefined) return "$(ip netns list 2>/dev/null)";
  if (namespaces.length === 0) return "";
  return `$(printf '%s\\n' ${namespaces.map((n) => shellQuote(NetnsName.parse(n))).join(" ")})`;
}

export type SnapshotOptions = {
  /** Only these named namespaces (root is always included); default: all of `ip netns list`. */
  namespaces?: readonly string[];
  /** Namespaces dumped concurrently (1–64, default 4). */
  parallel?: number;
};

/**
 * One POSIX sh script (run as root) printing machine-id, hostname and every section for the
 * root namespace and for each named namespace (an empty `namespaces` list means root only).
 */
export function snapshotScript(opts: SnapshotOptions = {}): string {
  const parallel = opts.parallel ?? 4;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) {
    throw new RangeError(
      `snapshotScript: parallel must be an integer 1–64, got ${String(parallel)}`,
    );
  }
  return outerScript(namespaceList(opts.namespaces), parallel);
}
