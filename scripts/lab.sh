#!/usr/bin/env bash
# hostnet lab: N local "lab hosts" that tests and the demo reach over real SSH.
#
#   bash scripts/lab.sh up N     create/repair lab1..labN (idempotent; never removes hosts)
#   bash scripts/lab.sh status   table of every lab host, with a real ssh check (exit 1 if any is unhealthy)
#   bash scripts/lab.sh down     stop and remove every lab host, the bridge and the inventory (keys are kept)
#
# Lab host K ("labK"):
#   - network namespace hnlab-K; veth hnl-labK (root side, port of bridge hnlab0 = 198.18.0.1/24)
#     <-> mgmt0 (inside, 198.18.0.(10+K)/24); IPv6 disabled on all of it;
#   - its own mount and UTS namespace (private propagation): hostname labK, a tmpfs on /run/netns
#     (namespaces created on the host are its own), a tmpfs on /run/hostnet, and a per-host
#     /etc/machine-id and /etc/hosts (naming labK) bind-mounted over the real ones;
#   - an sshd (no system config) on 198.18.0.(10+K):22 accepting the lab client key for root and
#     for the non-root user hnlab (which has NOPASSWD sudo for a fixed list of tools).
# Everything the lab writes lives in <project>/.hostnet/lab/ (lab J>0: .hostnet/lab-J/; plus /etc/sudoers.d/hostnet-lab,
# the hnlab user, and the empty directories /run/sshd and /run/hostnet on the real filesystem).
set -euo pipefail

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)

# HOSTNET_LAB_ID=J (0-9, default 0) gives a second, independent lab on the same machine (bridge
# hnlabJ, 198.18.J.0/24, namespaces hnlabJ-K, files in .hostnet/lab-J), so two checkouts, or the
# test lanes of one checkout (scripts/test.sh), can run their tests side by side.
LAB_ID=${HOSTNET_LAB_ID:-0}
[[ $LAB_ID =~ ^[0-9]$ ]] || { printf 'lab: error: HOSTNET_LAB_ID must be one digit, got %s\n' "$LAB_ID" >&2; exit 2; }
if ((LAB_ID == 0)); then LAB="$ROOT/.hostnet/lab"; else LAB="$ROOT/.hostnet/lab-$LAB_ID"; fi
KEY="$LAB/id_ed25519"
AUTH="$LAB/authorized_keys"
KNOWN="$LAB/known_hosts"
INV="$LAB/inventory.json"
LOCKFILE="$LAB/.lock"
# The hnlab user and the sudoers drop-in are shared by every lab on the machine: changed under this lock.
MACHINE_LOCK=/run/lock/hostnet-lab-user.lock
if ((LAB_ID == 0)); then NSP=hnlab-; VETHP=hnl-lab; else NSP="hnlab$LAB_ID-"; VETHP="hnl$LAB_ID-lab"; fi
BRIDGE="hnlab$LAB_ID"
NET_PREFIX="198.18.$LAB_ID"
GATEWAY="$NET_PREFIX.1"
SUBNET="$NET_PREFIX.0/24"
LAB_USER=hnlab
SUDOERS_FILE=/etc/sudoers.d/hostnet-lab
SSHD=/usr/sbin/sshd
MAX_HOSTS=64
SSHD_WAIT_SECS=5

say() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<EOF
usage: bash scripts/lab.sh up N | status | down      (npm run lab -- up 3)
  up N    create or repair lab hosts lab1..labN (1..$MAX_HOSTS); hosts already healthy are left alone
  status  show every lab host and whether root can ssh to it
  down    remove every lab host, bridge $BRIDGE and the inventory (keys are kept)
files: $LAB/{inventory.json,known_hosts,id_ed25519,labK/}
EOF
}

# ---------------------------------------------------------------------------- naming
host_name() { printf 'lab%s' "$1"; }
host_addr() { printf '%s.%s' "$NET_PREFIX" $((10 + $1)); }
host_ns() { printf '%s%s' "$NSP" "$1"; }
host_veth() { printf '%s%s' "$VETHP" "$1"; }
host_dir() { printf '%s/lab%s' "$LAB" "$1"; }

# ---------------------------------------------------------------------------- prerequisites
require_root() {
  [[ $EUID -eq 0 ]] || die "must run as root (it creates namespaces, links and users)"
}

# The project path ends up inside sshd options (AuthorizedKeysFile is a whitespace-separated list
# in which % starts a token) and inside JSON; refuse anything that would need escaping there.
check_root_path() {
  [[ $ROOT =~ ^[A-Za-z0-9_./+@:=,-]+$ ]] ||
    die "project path '$ROOT' contains characters the lab cannot pass to sshd (whitespace, %, quotes...)"
}

ensure_packages() {
  local missing=() c
  for c in sshd ssh ssh-keygen ip bridge nft sudo visudo unshare setsid flock nsenter sysctl ps mount umount; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  if ((${#missing[@]})); then
    say "missing ${missing[*]}: installing Debian packages"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install: openssh-server iproute2 nftables sudo util-linux procps"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      openssh-server iproute2 nftables sudo util-linux procps >&2
    for c in "${missing[@]}"; do
      command -v "$c" >/dev/null 2>&1 || die "'$c' still missing after apt-get install"
    done
  fi
  local c2
  for c2 in useradd usermod getent hostname timeout find grep od; do
    command -v "$c2" >/dev/null 2>&1 || die "'$c2' not found (base system tool)"
  done
}

take_lock() {
  mkdir -p "$LAB"
  chmod 0700 "$LAB"
  exec 9>"$LOCKFILE"
  flock -w 120 9 || die "another lab.sh holds $LOCKFILE for more than 120 s"
}

# ---------------------------------------------------------------------------- keys, user, sudo
ensure_client_key() {
  if [[ ! -s $KEY ]]; then
    say "generating client key $KEY"
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C hostnet-lab -f "$KEY" </dev/null
  fi
  [[ -s $KEY.pub ]] || ssh-keygen -y -f "$KEY" >"$KEY.pub"
  chmod 0600 "$KEY"
  write_if_changed "$AUTH" 0600 "$(cat "$KEY.pub")"
}

# write_if_changed FILE MODE CONTENT: atomic replace, only when the content differs.
write_if_changed() {
  local file=$1 mode=$2 content=$3 tmp
  if [[ -f $file ]] && [[ "$(cat "$file")" == "$content" ]]; then
    chmod "$mode" "$file"
    return 0
  fi
  tmp="$file.tmp.$$"
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$file"
}

ensure_lab_user() {
  if ! getent passwd "$LAB_USER" >/dev/null; then
    say "creating user $LAB_USER"
    useradd --system --create-home --shell /bin/sh "$LAB_USER"
  fi
  # sshd runs with UsePAM=no, and then refuses accounts whose password field starts with "!"
  # (useradd's default "locked" marker). "*" means "no password" without being "locked".
  local pw
  pw=$(getent shadow "$LAB_USER" | cut -d: -f2)
  if [[ $pw == '!'* ]]; then
    usermod -p '*' "$LAB_USER"
  fi
  local home
  home=$(getent passwd "$LAB_USER" | cut -d: -f6)
  [[ -n $home && -d $home ]] || die "home directory of $LAB_USER ('$home') is missing"
  install -d -m 0700 -o "$LAB_USER" -g "$(id -gn "$LAB_USER")" "$home/.ssh"
  # One system user serves every checkout's lab (HOSTNET_LAB_ID): add this lab's key, keep theirs.
  local mine
  mine=$(cat "$KEY.pub")
  grep -qxF -- "$mine" "$home/.ssh/authorized_keys" 2>/dev/null || printf '%s\n' "$mine" >>"$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"
  chown "$LAB_USER:$(id -gn "$LAB_USER")" "$home/.ssh/authorized_keys"
}

ensure_sudoers() {
  local tmp="$LAB/sudoers.tmp.$$"
  cat >"$tmp" <<EOF
# Managed by hostnet scripts/lab.sh for the local lab (safe to delete when the lab is unused).
# NOPASSWD for the lab's non-root SSH user. NOTE: allowing /bin/sh makes this rule
# equivalent to full root; it exists so the lab can exercise the "sudo sh" path.
# docs/ lists the narrower set of commands to grant on real hosts.
$LAB_USER ALL=(root) NOPASSWD: /usr/sbin/ip, /usr/sbin/bridge, /usr/sbin/nft, /usr/sbin/sysctl, /usr/bin/flock, /bin/sh
EOF
  if [[ -f $SUDOERS_FILE ]] && cmp -s "$tmp" "$SUDOERS_FILE"; then
    rm -f "$tmp"
    return 0
  fi
  [[ -d /etc/sudoers.d ]] || die "/etc/sudoers.d does not exist (is sudo installed?)"
  if ! visudo -cqf "$tmp" >/dev/null; then
    rm -f "$tmp"
    die "generated sudoers drop-in failed visudo -c"
  fi
  say "installing $SUDOERS_FILE"
  install -m 0440 -o root -g root "$tmp" "$SUDOERS_FILE"
  rm -f "$tmp"
}

# ---------------------------------------------------------------------------- network
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
netns_exists() { [[ -e /run/netns/$1 ]] && ip netns list | grep -qE "^$1( |\$)"; }
netns_inode() { stat -L -c %i "/run/netns/$1" 2>/dev/null; }

ensure_bridge() {
  local conflict
  conflict=$(ip -o -4 addr show to "$SUBNET" | awk -v b="$BRIDGE" '$2 != b {print $2}' | sort -u | tr '\n' ' ')
  [[ -z $conflict ]] || die "$SUBNET is already used on: $conflict(the lab needs it for $BRIDGE)"
  if ! link_exists "$BRIDGE"; then
    say "creating bridge $BRIDGE ($GATEWAY/24)"
    ip link add "$BRIDGE" type bridge
  fi
  ip -d -o link show dev "$BRIDGE" | grep -q ' bridge ' || die "$BRIDGE exists but is not a bridge"
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1" >/dev/null
  ip addr replace "$GATEWAY/24" dev "$BRIDGE"
  ip link set dev "$BRIDGE" up
}

ensure_host_net() {
  local k=$1 ns veth addr
  ns=$(host_ns "$k"); veth=$(host_veth "$k"); addr=$(host_addr "$k")
  if ! netns_exists "$ns"; then
    say "$(host_name "$k"): creating netns $ns"
    ip netns add "$ns"
  fi
  nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
  ip -n "$ns" link set dev lo up
  if ! link_exists "$veth" || ! ip -n "$ns" link show dev mgmt0 >/dev/null 2>&1 ||
    [[ "$(ip -o link show dev "$veth")" != *"@if"* ]]; then
    # veth pairs live and die together; anything half-present is stale.
    link_exists "$veth" && ip link del dev "$veth"
    ip -n "$ns" link show dev mgmt0 >/dev/null 2>&1 && ip -n "$ns" link del dev mgmt0
    say "$(host_name "$k"): creating veth $veth <-> $ns/mgmt0 ($addr/24)"
    ip link add "$veth" type veth peer name mgmt0 netns "$ns"
    # a new mgmt0 has a new MAC: forget what the root namespace cached for the old one
    ip neigh flush to "$addr" dev "$BRIDGE" 2>/dev/null || true
  fi
  sysctl -qw "net.ipv6.conf.$veth.disable_ipv6=1" >/dev/null
  ip link set dev "$veth" master "$BRIDGE"
  ip link set dev "$veth" up
  ip -n "$ns" addr replace "$addr/24" dev mgmt0
  ip -n "$ns" link set dev mgmt0 up
}

ensure_host_files() {
  local k=$1 dir
  dir=$(host_dir "$k")
  install -d -m 0700 "$dir"
  if [[ ! -s $dir/ssh_host_ed25519_key ]]; then
    say "$(host_name "$k"): generating host key"
    rm -f "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$(host_name "$k")" -f "$dir/ssh_host_ed25519_key" </dev/null
  fi
  [[ -s $dir/ssh_host_ed25519_key.pub ]] ||
    ssh-keygen -y -f "$dir/ssh_host_ed25519_key" >"$dir/ssh_host_ed25519_key.pub"
  chmod 0600 "$dir/ssh_host_ed25519_key"
  if ! grep -qxE '[0-9a-f]{32}' "$dir/machine-id" 2>/dev/null; then
    rm -f "$dir/machine-id"
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/machine-id"
    printf '\n' >>"$dir/machine-id"
  fi
  chmod 0444 "$dir/machine-id"
  # sudo resolves the host name; without this it tries DNS (and complains) on every call.
  write_if_changed "$dir/hosts" 0644 "127.0.0.1	localhost
127.0.1.1	$(host_name "$k")
::1	localhost ip6-localhost ip6-loopback"
}

# ---------------------------------------------------------------------------- processes
ns_of() { readlink "/proc/$1/ns/$2" 2>/dev/null || true; }
SELF_MNT=$(ns_of $$ mnt)
SELF_UTS=$(ns_of $$ uts)
SELF_NET=$(ns_of $$ net)

proc_gone() { # zombies count as gone
  local st
  [[ -r /proc/$1/stat ]] || return 0
  st=$(sed -n 's/.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 0
  [[ -z $st || $st == Z || $st == X ]]
}

# is_lab_sshd PID K: PID is the sshd this script started for lab host K.
is_lab_sshd() {
  local pid=$1 k=$2 exe
  [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$SSHD" || $exe == "$SSHD (deleted)" ]] || return 1
  # sshd rewrites its argv ("sshd: /usr/sbin/sshd -D ... [listener] ..."), so match a word.
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ " $cmd " == *" PidFile=$(host_dir "$k")/sshd.pid "* ]]
}

# healthy_sshd_pid K: prints the pid of a running sshd for K that lives in netns hnlab-K.
healthy_sshd_pid() {
  local k=$1 pid ino
  pid=$(cat "$(host_dir "$k")/sshd.pid" 2>/dev/null) || return 1
  is_lab_sshd "$pid" "$k" || return 1
  ino=$(netns_inode "$(host_ns "$k")") || return 1
  [[ "$(ns_of "$pid" net)" == "net:[$ino]" ]] || return 1
  printf '%s' "$pid"
}

# sshd_banner ADDR: the server at ADDR:22 accepts a TCP connection and speaks SSH.
# A busy 2-core machine (three test lanes) can take seconds to fork sshd for a connection: a short
# wait here would take a live sshd for a wedged one and restart it under a lane's feet.
sshd_banner() {
  timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 10 line <&3 && [[ $line == SSH-2.0-* ]]' _ "$1" 2>/dev/null
}

regex_escape() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# Every mount namespace of lab host K - its own and any cloned from it later, e.g. by
# `ip netns exec` or `unshare` run on the host - carries this tmpfs on /run/netns.
netns_marker() { printf '%s%s-netns' "$NSP" "$1"; }

# lab_processes K...: pids (one per line) of every process that belongs to the given lab hosts:
# the sshd this script started (pid file, or found by its PidFile argument), everything in netns
# hnlab-K (what `ip netns pids hnlab-K` reports), everything whose mounts carry the host's marker,
# everything sharing such a process's mount/UTS/network namespace, and all their descendants.
# The caller's own namespaces are never used as a criterion.
lab_processes() {
  local -A net_of=() mnt_of=() uts_of=() want=() victim=() children=() lab_mnt=()
  local line pid kind target k ino seed s re markers=()
  while read -r pid kind target; do
    pid=${pid#/proc/}; pid=${pid%/ns}
    [[ -n $target ]] || continue # unreadable (e.g. pid 1 here)
    case $kind in
      net) net_of[$pid]=$target ;;
      mnt) mnt_of[$pid]=$target ;;
      uts) uts_of[$pid]=$target ;;
    esac
  done < <(find /proc/[0-9]*/ns -maxdepth 1 \( -name net -o -name mnt -o -name uts \) -printf '%h %f %l\n' 2>/dev/null || true)

  local seeds=()
  for k in "$@"; do
    markers+=("$(netns_marker "$k")")
    ino=$(netns_inode "$(host_ns "$k")") && want["net:[$ino]"]=1
    s=$(cat "$(host_dir "$k")/sshd.pid" 2>/dev/null || true)
    is_lab_sshd "$s" "$k" && seeds+=("$s")
    # an sshd left behind without its pid file
    re="PidFile=$(regex_escape "$(host_dir "$k")")/sshd[.]pid"
    while IFS= read -r line; do
      s=${line#/proc/}; s=${s%/cmdline}
      is_lab_sshd "$s" "$k" && seeds+=("$s")
    done < <(grep -laE -- "$re" /proc/[0-9]*/cmdline 2>/dev/null || true)
  done
  # processes whose mount table carries a marker (these are lab processes by construction)
  re=" - tmpfs ($(IFS='|'; echo "${markers[*]}")) "
  while IFS= read -r line; do
    s=${line#/proc/}; s=${s%/mountinfo}
    seeds+=("$s"); lab_mnt[$s]=1
  done < <(grep -lE -- "$re" /proc/[0-9]*/mountinfo 2>/dev/null || true)
  for pid in "${!net_of[@]}"; do
    [[ -n ${want[${net_of[$pid]}]:-} ]] && seeds+=("$pid")
  done
  for seed in "${seeds[@]}"; do
    victim[$seed]=1
    # Only a process living in a lab mount table lends its namespaces to the search: a stray
    # process that merely entered the lab netns (nsenter --net) must not drag in the mount
    # namespace that every other process of this machine shares.
    [[ -n ${lab_mnt[$seed]:-} ]] || continue
    [[ -n ${mnt_of[$seed]:-} && ${mnt_of[$seed]} != "$SELF_MNT" ]] && want[${mnt_of[$seed]}]=1
    [[ -n ${uts_of[$seed]:-} && ${uts_of[$seed]} != "$SELF_UTS" ]] && want[${uts_of[$seed]}]=1
    [[ -n ${net_of[$seed]:-} && ${net_of[$seed]} != "$SELF_NET" ]] && want[${net_of[$seed]}]=1
  done
  for pid in "${!net_of[@]}" "${!mnt_of[@]}" "${!uts_of[@]}"; do
    if [[ -n ${want[${net_of[$pid]:-x}]:-} || -n ${want[${mnt_of[$pid]:-x}]:-} || -n ${want[${uts_of[$pid]:-x}]:-} ]]; then
      victim[$pid]=1
    fi
  done
  # descendants (a child that unshared every namespace is still ours while it has a parent here)
  local p pp
  while read -r p pp; do children[$pp]+="$p "; done < <(ps -e -o pid=,ppid=)
  local queue=("${!victim[@]}")
  while ((${#queue[@]})); do
    p=${queue[0]}; queue=("${queue[@]:1}")
    for s in ${children[$p]:-}; do
      [[ -n ${victim[$s]:-} ]] || { victim[$s]=1; queue+=("$s"); }
    done
  done
  # never ourselves or an ancestor
  p=$$
  while [[ $p =~ ^[0-9]+$ && $p -gt 1 ]]; do
    unset "victim[$p]"
    p=$(sed -n 's/.*) [A-Za-z] \([0-9][0-9]*\) .*/\1/p' "/proc/$p/stat" 2>/dev/null || echo 0)
  done
  unset "victim[$BASHPID]" "victim[1]" "victim[2]"
  for pid in "${!victim[@]}"; do
    proc_gone "$pid" || printf '%s\n' "$pid"
  done
}

wait_gone() { # wait_gone SECONDS PID...
  local secs=$1 deadline p alive; shift
  deadline=$(($(date +%s%N) + secs * 1000000000))
  while :; do
    alive=0
    for p in "$@"; do proc_gone "$p" || { alive=1; break; }; done
    ((alive)) || return 0
    (($(date +%s%N) < deadline)) || return 1
    sleep 0.05
  done
}

# stop_hosts K...: terminate every process of the given lab hosts (sessions first, then sshd).
stop_hosts() {
  local round pids=() sshds=() others=() p k
  for round in 1 2 3 4; do
    mapfile -t pids < <(lab_processes "$@")
    ((${#pids[@]})) || return 0
    KILLED+=("${pids[@]}")
    if ((round == 1)); then
      sshds=(); others=()
      for p in "${pids[@]}"; do
        local listener=0
        for k in "$@"; do
          [[ "$(cat "$(host_dir "$k")/sshd.pid" 2>/dev/null)" == "$p" ]] && listener=1
        done
        ((listener)) && sshds+=("$p") || others+=("$p")
      done
      if ((${#others[@]})); then
        say "stopping ${#others[@]} lab process(es): ${others[*]}"
        kill -TERM "${others[@]}" 2>/dev/null || true
        wait_gone 2 "${others[@]}" || true
      fi
      if ((${#sshds[@]})); then
        say "stopping sshd: ${sshds[*]}"
        kill -TERM "${sshds[@]}" 2>/dev/null || true
        wait_gone 3 "${sshds[@]}" || true
      fi
    else
      say "killing ${#pids[@]} remaining lab process(es): ${pids[*]}"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      wait_gone 2 "${pids[@]}" || true
    fi
  done
  mapfile -t pids < <(lab_processes "$@")
  ((${#pids[@]} == 0)) || die "lab processes survived SIGKILL: ${pids[*]}"
}

# wait (bounded) until killed pids have been reaped by their new parent: a zombie holds no
# namespace or mount, but callers checking "is pid X gone" should not see it either. The lab's
# sshds are orphans (the script that started them has exited), so init reaps them; on some
# machines init only does so every ~2 s, which is most of the time `down` takes.
wait_reaped() {
  local deadline=$(($(date +%s%N) + 3000000000)) p left
  while :; do
    left=0
    for p in "$@"; do [[ -e /proc/$p ]] && { left=1; break; }; done
    ((left)) && (($(date +%s%N) < deadline)) || return 0
    sleep 0.02
  done
}

start_sshd() {
  local k=$1 dir ns addr log
  dir=$(host_dir "$k"); ns=$(host_ns "$k"); addr=$(host_addr "$k"); log="$dir/sshd.log"
  install -d -m 0755 /run/sshd /run/hostnet
  rm -f "$dir/sshd.pid"
  if [[ -f $log ]] && (($(stat -c %s "$log") > 1048576)); then # keep the log bounded
    tail -n 2000 "$log" >"$log.tmp" && mv -f "$log.tmp" "$log"
  fi
  printf -- '--- %s lab.sh: starting sshd for %s on %s:22\n' "$(date -u +%FT%TZ)" "$(host_name "$k")" "$addr" >>"$log"
  # Runs inside the host's fresh mount+UTS namespace, then becomes sshd (exec, same pid).
  # /run/netns is first detached (it is the root namespace's copy, holding nsfs mounts of the
  # other lab hosts), then replaced by an empty tmpfs that `ip netns add` on the host can
  # make shared and populate.
  # shellcheck disable=SC2016
  local inner='set -e
hostname "$1"
umount -l /run/netns 2>/dev/null || true
mount -t tmpfs -o mode=0755,size=1m "$4" /run/netns
mount -t tmpfs -o mode=0755,size=16m hnlab-hostnet /run/hostnet
mount --bind "$2" /etc/machine-id
mount --bind "$3" /etc/hosts
shift 4
exec "$@"'
  # SetEnv=SHLVL=1: a lab host is this machine's root account, whose ~/.bashrc is the developer's
  # interactive setup (here pyenv, which rehashes under a lock file on every shell start). Debian's
  # bash sources ~/.bashrc for every command sshd runs at shell level 1, so each hostnet round trip
  # paid ~0.4 s for it, and a session killed mid-rehash (the fault tests kill sshd on purpose) left
  # the lock behind and made every later command wait 60 s. Level 2 is not a top-level shell, so
  # bash skips ~/.bashrc; a real host's login files are its owner's business, not the lab's.
  setsid nohup ip netns exec "$ns" unshare --mount --uts --propagation private \
    sh -c "$inner" lab-init "$(host_name "$k")" "$dir/machine-id" "$dir/hosts" "$(netns_marker "$k")" \
    "$SSHD" -D -e -f /dev/null \
    -o "PidFile=$dir/sshd.pid" \
    -h "$dir/ssh_host_ed25519_key" \
    -o Port=22 \
    -o "ListenAddress=$addr" \
    -o "AuthorizedKeysFile=%h/.ssh/authorized_keys $AUTH" \
    -o PermitRootLogin=prohibit-password \
    -o PasswordAuthentication=no \
    -o KbdInteractiveAuthentication=no \
    -o StrictModes=no \
    -o UsePAM=no \
    -o MaxSessions=10 \
    -o MaxStartups=100:30:200 \
    -o LogLevel=INFO \
    -o PrintMotd=no \
    -o PrintLastLog=no \
    -o SetEnv=SHLVL=1 \
    </dev/null >>"$log" 2>&1 9>&- &
  STARTED_PID[$k]=$!
}

# ---------------------------------------------------------------------------- discovery
# Indexes of lab hosts that exist in any form (netns, root-side link, or a running sshd pid file).
existing_hosts() {
  {
    ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^$NSP\\([1-9][0-9]*\\)\$/\\1/p"
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | sed -n "s/^$VETHP\\([1-9][0-9]*\\)\$/\\1/p"
    local f k
    for f in "$LAB"/lab*/sshd.pid; do
      [[ -e $f ]] || continue
      k=${f%/sshd.pid}; k=${k##*/lab}
      [[ $k =~ ^[1-9][0-9]*$ ]] && is_lab_sshd "$(cat "$f" 2>/dev/null)" "$k" && echo "$k"
    done
    if [[ -f $INV ]]; then
      grep -oE '"name":"lab[0-9]+"' "$INV" | grep -oE '[0-9]+' || true
    fi
    # processes still carrying a lab host's mounts
    grep -ohE " - tmpfs $NSP[1-9][0-9]*-netns " /proc/[0-9]*/mountinfo 2>/dev/null | sed -E "s/.* $NSP([0-9]+)-netns .*/\\1/" || true
  } | sort -n -u
}

# ---------------------------------------------------------------------------- outputs
json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

host_pubkey() { awk '{print $1" "$2}' "$(host_dir "$1")/ssh_host_ed25519_key.pub"; }
host_fpr() { ssh-keygen -l -E sha256 -f "$(host_dir "$1")/ssh_host_ed25519_key.pub" | awk '{print $2}'; }

write_outputs() { # write_outputs K... (hosts to list, all healthy)
  local k known="" hosts="" sep="" pid f
  # known_hosts pins every host key the lab has ever generated (they survive down/up), so it is
  # valid for any lab host whatever its current state.
  for f in "$LAB"/lab*/ssh_host_ed25519_key.pub; do
    [[ -e $f ]] || continue
    k=${f%/ssh_host_ed25519_key.pub}; k=${k##*/lab}
    [[ $k =~ ^[1-9][0-9]*$ ]] || continue
    known+="$(host_addr "$k") $(host_pubkey "$k")"$'\n'
  done
  for k in "$@"; do
    pid=$(healthy_sshd_pid "$k")
    hosts+="$sep{\"name\":$(json_str "$(host_name "$k")"),\"address\":$(json_str "$(host_addr "$k")"),\"port\":22,\"user\":\"root\""
    hosts+=",\"hostKey\":$(json_str "$(host_pubkey "$k")"),\"hostKeyFingerprint\":$(json_str "$(host_fpr "$k")")"
    hosts+=",\"netns\":$(json_str "$(host_ns "$k")"),\"rootVeth\":$(json_str "$(host_veth "$k")"),\"sshdPid\":$pid"
    hosts+=",\"machineId\":$(json_str "$(tr -d '\n' <"$(host_dir "$k")/machine-id")")}"
    sep=","
  done
  write_if_changed "$KNOWN" 0644 "${known%$'\n'}"
  local json="{\"version\":1,\"bridge\":$(json_str "$BRIDGE"),\"gateway\":$(json_str "$GATEWAY")"
  json+=",\"privateKeyPath\":$(json_str "$KEY"),\"knownHostsPath\":$(json_str "$KNOWN")"
  json+=",\"sudoUser\":$(json_str "$LAB_USER"),\"hosts\":[$hosts]}"
  write_if_changed "$INV" 0644 "$json"
}

ssh_check() { # ssh_check K -> prints remote hostname, fails if ssh fails
  timeout 20 ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$KNOWN" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
    -o ConnectTimeout=10 -o LogLevel=ERROR "root@$(host_addr "$1")" hostname </dev/null 2>/dev/null
}

# ---------------------------------------------------------------------------- commands
declare -A STARTED_PID=()
KILLED=()

cmd_up() {
  local n=${1:-}
  [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= MAX_HOSTS)) || { usage; die "up needs a host count 1..$MAX_HOSTS (got '${n}')"; }
  require_root
  check_root_path
  ensure_packages
  take_lock
  ensure_client_key
  exec 8>"$MACHINE_LOCK"
  flock -w 120 8 || die "another lab.sh holds $MACHINE_LOCK for more than 120 s"
  ensure_lab_user
  ensure_sudoers
  exec 8>&-
  ensure_bridge

  local k pid
  local -A action=()
  for ((k = 1; k <= n; k++)); do
    ensure_host_files "$k"
    ensure_host_net "$k"
    if pid=$(healthy_sshd_pid "$k") && sshd_banner "$(host_addr "$k")"; then
      action[$k]=kept
      continue
    fi
    stop_hosts "$k" # stale sessions or a wedged sshd of this host
    say "$(host_name "$k"): starting sshd on $(host_addr "$k"):22"
    start_sshd "$k"
    action[$k]=started
  done

  # bounded wait for every sshd we started
  local deadline=$(($(date +%s%N) + SSHD_WAIT_SECS * 1000000000)) pending
  while :; do
    pending=()
    for k in "${!STARTED_PID[@]}"; do
      if healthy_sshd_pid "$k" >/dev/null && sshd_banner "$(host_addr "$k")"; then
        unset "STARTED_PID[$k]"
      else
        pending+=("$k")
      fi
    done
    ((${#pending[@]})) || break
    if (($(date +%s%N) >= deadline)); then
      for k in "${pending[@]}"; do
        printf 'lab: error: sshd of %s did not accept SSH on %s:22 within %ss; tail of %s:\n' \
          "$(host_name "$k")" "$(host_addr "$k")" "$SSHD_WAIT_SECS" "$(host_dir "$k")/sshd.log" >&2
        tail -n 15 "$(host_dir "$k")/sshd.log" | sed 's/^/    /' >&2 || true
      done
      exit 1
    fi
    sleep 0.05
  done

  # hosts above N are left alone; list them too when they are healthy
  local listed=()
  for ((k = 1; k <= n; k++)); do listed+=("$k"); done
  for k in $(existing_hosts); do
    ((k > n)) || continue
    if healthy_sshd_pid "$k" >/dev/null; then
      listed+=("$k"); action[$k]=kept
    else
      say "warning: $(host_name "$k") exists but is not healthy (not in the inventory; 'up $k' repairs it, 'down' removes it)"
    fi
  done
  write_outputs "${listed[@]}"

  printf '%-6s %-12s %-9s %-8s %s\n' NAME ADDRESS NETNS PID STATE
  for k in "${listed[@]}"; do
    printf '%-6s %-12s %-9s %-8s %s\n' "$(host_name "$k")" "$(host_addr "$k")" "$(host_ns "$k")" \
      "$(healthy_sshd_pid "$k")" "${action[$k]}"
  done
  say "inventory: $INV"
}

cmd_status() {
  require_root
  take_lock
  local hosts k pid alive sshok rc=0 name
  mapfile -t hosts < <(existing_hosts)
  if ! ((${#hosts[@]})); then
    say "lab is down (no lab hosts)"
    link_exists "$BRIDGE" && say "warning: bridge $BRIDGE exists without hosts ('down' removes it)"
    return 0
  fi
  if link_exists "$BRIDGE"; then say "bridge $BRIDGE $GATEWAY/24"; else say "bridge $BRIDGE: MISSING"; rc=1; fi
  printf '%-6s %-12s %-9s %-8s %-6s %s\n' NAME ADDRESS NETNS PID ALIVE SSH
  for k in "${hosts[@]}"; do
    name=$(host_name "$k")
    pid=$(cat "$(host_dir "$k")/sshd.pid" 2>/dev/null || echo -)
    if healthy_sshd_pid "$k" >/dev/null; then alive=yes; else alive=no; rc=1; fi
    if [[ -f $KNOWN && "$(ssh_check "$k" || true)" == "$name" ]]; then sshok=ok; else sshok=FAIL; rc=1; fi
    netns_exists "$(host_ns "$k")" || { rc=1; }
    printf '%-6s %-12s %-9s %-8s %-6s %s\n' "$name" "$(host_addr "$k")" \
      "$(netns_exists "$(host_ns "$k")" && host_ns "$k" || echo MISSING)" "$pid" "$alive" "$sshok"
  done
  return $rc
}

cmd_down() {
  require_root
  [[ -d $LAB ]] || mkdir -p "$LAB"
  take_lock
  local hosts k ns veth
  mapfile -t hosts < <(existing_hosts)
  if ((${#hosts[@]})); then
    say "stopping lab hosts: $(for k in "${hosts[@]}"; do printf '%s ' "$(host_name "$k")"; done)"
    stop_hosts "${hosts[@]}"
    wait_reaped "${KILLED[@]}"
    for k in "${hosts[@]}"; do
      ns=$(host_ns "$k"); veth=$(host_veth "$k")
      if link_exists "$veth"; then ip link del dev "$veth"; fi
      if [[ -e /run/netns/$ns ]]; then
        say "$(host_name "$k"): deleting netns $ns"
        ip netns del "$ns"
      fi
      rm -f "$(host_dir "$k")/sshd.pid"
    done
  fi
  if link_exists "$BRIDGE"; then
    say "deleting bridge $BRIDGE"
    ip link del dev "$BRIDGE"
  fi
  rm -f "$INV"
  # verify
  local left
  left=$( { ip netns list | awk '{print $1}' | grep -E "^$NSP[1-9]" || true; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^($VETHP[0-9]+|$BRIDGE)\$" || true; } | tr '\n' ' ')
  left+=$(grep -lE " - tmpfs $NSP[1-9][0-9]*-netns " /proc/[0-9]*/mountinfo 2>/dev/null | tr '\n' ' ' || true)
  [[ -z $left ]] || die "left behind after down: $left"
  say "lab is down"
}

main() {
  local cmd=${1:-}
  case $cmd in
    up) shift; cmd_up "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
