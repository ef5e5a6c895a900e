#!/usr/bin/env bash
# Everything a fresh Debian machine needs to run hostnet, its demo and its tests. Idempotent: a warm
# run checks and returns in seconds. Installs only from Debian's packages, the npm registry and the
# Go module proxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUIET=0
[ "${1:-}" = "--quiet" ] && QUIET=1
export QUIET
say() { [ "$QUIET" = 1 ] || echo "setup: $*"; }
cd "$ROOT"

# 1. Debian packages (binary -> package). Only when something is missing, so warm runs stay offline.
declare -A PKG=(
  [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client [ip]=iproute2
  [bridge]=iproute2 [nft]=nftables [ebtables]=ebtables [dot]=graphviz [sudo]=sudo
  [unshare]=util-linux [pgrep]=procps [flock]=util-linux [visudo]=sudo
  [ping]=iputils-ping [tcpdump]=tcpdump
  [ebtables-nft]=iptables [python3]=python3 [systemd-analyze]=systemd
)
missing=()
for bin in "${!PKG[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then missing+=("${PKG[$bin]}"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Node modules, exactly as locked.
# providers/stub is installed as a copy (.npmrc install-links): a changed stub needs a reinstall too.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
   ! diff -rq providers/stub node_modules/hostnet-provider >/dev/null 2>&1; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 3. The Pulumi engine.
bash scripts/setup-engine.sh

# 4. Compile TypeScript when any source is newer than the last build.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find providers components stacks scripts test bench tsconfig.json package.json \
      -newer "$stamp" \( -name '*.ts' -o -name '*.json' \) -print -quit 2>/dev/null)" ]; then
  say "compiling TypeScript"
  rm -rf dist
  npx tsc -p tsconfig.json
  mkdir -p dist && touch "$stamp"
fi
say "ready"
