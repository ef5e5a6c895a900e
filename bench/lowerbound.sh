#!/usr/bin/env bash
# The plain-shell lower bound of the provisioning benchmark: the same end state hostnet builds for N
# isolated-netns + managed-fdb VMs (namespace with loopback up and IPv6 off, inner bridge br0, tap0,
# veth hv-<vm>/up0 with learning and unicast flood off on the host bridge, static fdb entry, the
# VM's nft table), built by ONE generated script over ONE ssh session with `ip -batch`,
# `bridge -batch` and `nft -f`. No reads, no diffing, no error attribution: what is left when
# everything hostnet adds on top of the kernel calls is taken away.
#
# usage: lowerbound.sh build|teardown|print-build|print-teardown --vms FILE [--nft TEMPLATE]
#          [--bridge br-bp] [--host ADDR] [--port 22] [--user root] [--key FILE] [--known-hosts FILE]
#   --vms FILE       one VM per line: "<name> <mac> <ipv4>" (names as in the stack config)
#   --nft TEMPLATE   the compiled table of one VM (compileFilterChain via the benchmark) with
#                    @MAC@ and @IPV4@ where the VM's MAC and address go
# build/teardown print "build_ms=<n>" / "teardown_ms=<n>": wall time of the ssh session alone
# (generating the script is local and not counted). print-* print the script and run nothing.
set -euo pipefail

cmd=${1:-}
shift || true
VMS="" NFT="" BRIDGE="br-bp" HOST="" PORT=22 USER_="root" KEY="" KNOWN=""
while [ $# -gt 0 ]; do
  case $1 in
    --vms) VMS=$2 ;;
    --nft) NFT=$2 ;;
    --bridge) BRIDGE=$2 ;;
    --host) HOST=$2 ;;
    --port) PORT=$2 ;;
    --user) USER_=$2 ;;
    --key) KEY=$2 ;;
    --known-hosts) KNOWN=$2 ;;
    *) echo "lowerbound.sh: unknown argument $1 (see the usage at the top of this file)" >&2; exit 2 ;;
  esac
  shift 2
done

die() { echo "lowerbound.sh: $*" >&2; exit 2; }
[ -r "$VMS" ] || die "--vms FILE is required and must be readable (got '${VMS}')"

build_script() {
  [ -r "$NFT" ] || die "build needs --nft TEMPLATE (got '${NFT}')"
  local tmpl name mac ip body
  tmpl=$(cat "$NFT")
  echo "set -e"
  # Root namespace, one ip process: host bridge, namespaces, veth pairs onto the host bridge.
  echo "ip -batch - <<'HN_IP_EOF'"
  echo "link add $BRIDGE type bridge stp_state 0"
  echo "link set $BRIDGE alias hostnet"
  echo "link set $BRIDGE up"
  while read -r name mac ip; do
    echo "netns add vm-$name"
    echo "link add hv-$name type veth peer name up0 netns vm-$name"
    echo "link set dev hv-$name alias hostnet"
    echo "link set dev hv-$name master $BRIDGE"
    echo "link set dev hv-$name up"
  done <"$VMS"
  echo "HN_IP_EOF"
  # Root namespace, one bridge process: managed fdb (seed 002).
  echo "bridge -batch - <<'HN_BR_EOF'"
  while read -r name mac ip; do
    echo "link set dev hv-$name learning off flood off"
    echo "fdb add $mac dev hv-$name master static"
  done <"$VMS"
  echo "HN_BR_EOF"
  # Inside each namespace: one ip process, then one nft transaction (with the sysctl in the same shell).
  while read -r name mac ip; do
    echo "ip -n vm-$name -batch - <<'HN_IP_EOF'"
    echo "link set lo alias hostnet"
    echo "link set lo up"
    echo "link add br0 type bridge stp_state 0"
    echo "link set br0 alias hostnet"
    echo "link set br0 up"
    echo "link set dev up0 alias hostnet"
    echo "link set dev up0 master br0"
    echo "link set dev up0 up"
    echo "tuntap add dev tap0 mode tap vnet_hdr"
    echo "link set tap0 alias hostnet master br0 up"
    echo "HN_IP_EOF"
    body=${tmpl//@MAC@/$mac}
    body=${body//@IPV4@/$ip}
    echo "ip netns exec vm-$name sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 && exec nft -f -' <<'HN_NFT_EOF'"
    printf '%s\n' "$body"
    echo "HN_NFT_EOF"
  done <"$VMS"
}

# Deleting the host end of a veth deletes its peer synchronously; the namespaces' remaining
# contents (br0, tap0, nft table) go with the namespace.
teardown_script() {
  local name mac ip
  echo "ip -force -batch - <<'HN_IP_EOF'"
  while read -r name mac ip; do
    echo "link del dev hv-$name"
    echo "netns del vm-$name"
  done <"$VMS"
  echo "link del $BRIDGE"
  echo "HN_IP_EOF"
}

run_remote() {
  local label=$1 script=$2 t0 t1
  [ -n "$HOST" ] || die "--host is required for $label"
  local ssh=(ssh -o BatchMode=yes -o ConnectTimeout=30 -p "$PORT")
  [ -z "$KEY" ] || ssh+=(-i "$KEY")
  [ -z "$KNOWN" ] || ssh+=(-o "UserKnownHostsFile=$KNOWN" -o StrictHostKeyChecking=yes)
  t0=$(date +%s%N)
  if ! printf '%s\n' "$script" | "${ssh[@]}" "$USER_@$HOST" sh -s; then
    die "$label failed on $HOST; run '$0 teardown --vms $VMS --host $HOST ...' to remove what was made"
  fi
  t1=$(date +%s%N)
  echo "${label}_ms=$(((t1 - t0) / 1000000))"
}

case $cmd in
  build) run_remote build "$(build_script)" ;;
  teardown) run_remote teardown "$(teardown_script)" ;;
  print-build) build_script ;;
  print-teardown) teardown_script ;;
  *) die "first argument must be build, teardown, print-build or print-teardown" ;;
esac
