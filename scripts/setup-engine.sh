#!/usr/bin/env bash
# Installs the Pulumi engine at exactly the version of @pulumi/pulumi in package.json, into
# .hostnet/engine (git-ignored). Sources, in order of preference:
#   1. a `pulumi` already on PATH whose version matches;
#   2. a build from the Go module proxy through the wrapper module in engine/.
# No step downloads anything but Go modules.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENGINE="$ROOT/.hostnet/engine"
BIN="$ENGINE/bin"
QUIET="${QUIET:-0}"
say() { [ "$QUIET" = 1 ] || echo "engine: $*"; }

WANT="$(node -p "require('$ROOT/package.json').dependencies['@pulumi/pulumi']")"
mkdir -p "$BIN"

version_of() { "$1" version 2>/dev/null | tr -d '[:space:]' | sed 's/^v//'; }

write_launcher() {
  # The engine starts dynamic providers as `pulumi-resource-pulumi-nodejs`. The release bundle
  # ships this as a tiny script; ours also pins the checkout (HOSTNET_HOME) so state written by
  # another checkout path still loads this checkout's provider code.
  local launcher="$BIN/pulumi-resource-pulumi-nodejs"
  cat > "$launcher.tmp" <<'EOF'
#!/bin/sh
HERE="$(cd "$(dirname "$0")" && pwd)"
HOSTNET_HOME="${HOSTNET_HOME:-$(cd "$HERE/../../.." && pwd)}"
export HOSTNET_HOME
cd "$HOSTNET_HOME" || exit 1
exec node "$HOSTNET_HOME/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js" "$@"
EOF
  chmod 0755 "$launcher.tmp"
  mv "$launcher.tmp" "$launcher"
}

# 1. A matching CLI we already built or that is on PATH.
if [ -x "$BIN/pulumi" ] && [ "$(version_of "$BIN/pulumi")" = "$WANT" ]; then
  write_launcher
  say "pulumi v$WANT ready ($BIN/pulumi)"
  exit 0
fi
ONPATH="$(command -v pulumi || true)"
if [ -n "$ONPATH" ] && [ "$ONPATH" != "$BIN/pulumi" ] && [ "$(version_of "$ONPATH")" = "$WANT" ]; then
  ln -sf "$ONPATH" "$BIN/pulumi"
  write_launcher
  say "using pulumi v$WANT from PATH ($ONPATH)"
  exit 0
fi

# 2. Build from the Go module proxy.
if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<EOF
hostnet needs the Pulumi CLI v$WANT and found neither a matching 'pulumi' on PATH
(found: ${ONPATH:-none}${ONPATH:+ v$(version_of "$ONPATH")}) nor Go to build it.
Either install pulumi v$WANT and put it on PATH, or install Go >= 1.25
(https://go.dev/doc/install, or Debian's golang package when new enough) and re-run 'npm run setup'.
EOF
  exit 1
fi

cd "$ROOT/engine"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
PINNED="$(go list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3 2>/dev/null || true)"
if [ "$PINNED" != "v$WANT" ]; then
  say "engine/go.mod pins $PINNED, package.json wants v$WANT: updating engine/go.mod (commit it)"
  go get "github.com/pulumi/pulumi/pkg/v3@v$WANT" "github.com/pulumi/pulumi/sdk/v3@v$WANT"
  go mod tidy
fi

say "building pulumi v$WANT from the Go module proxy (cold build takes several minutes)"
start=$(date +%s)
# -v names each package as it is compiled: count them so a newcomer sees progress.
go build -v -trimpath \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$WANT" \
  -o "$BIN/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>&1 |
  awk -v q="$QUIET" '{ n++; if (q != 1 && n % 100 == 0) { printf "engine: compiled %d packages...\n", n; fflush() } }
       /^#|^go: |: (error|cannot|undefined)/ { print > "/dev/stderr" }'
mv "$BIN/pulumi.tmp" "$BIN/pulumi"
write_launcher
say "pulumi v$WANT built in $(( $(date +%s) - start ))s"

# The Node.js language host (sdk/nodejs/cmd/pulumi-language-nodejs) and the pulumi-command
# provider are not served by the module proxy reachable here (403 for every version), so hostnet
# runs its programs through the Automation API's in-process language runtime (the engine's
# --client mode) and prepares hosts through its own SSH layer. See README "Engine".
