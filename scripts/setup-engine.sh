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

# The CLI itself lives in .hostnet/engine/cli; .hostnet/engine/bin holds what goes on PATH: the
# `pulumi` wrapper, the language host and the dynamic-provider launcher (README "Plain pulumi").
CLI="$ENGINE/cli"
WRAPPER_MARK="hostnet: the project's Pulumi CLI wrapper"
mkdir -p "$CLI"
if [ -e "$BIN/pulumi" ] && ! grep -qs "$WRAPPER_MARK" "$BIN/pulumi"; then
  mv -f "$BIN/pulumi" "$CLI/pulumi" # an engine from before the wrapper: keep it
fi

write_script() { # write_script DIR NAME < body: atomically, executable
  cat > "$1/$2.tmp"
  chmod 0755 "$1/$2.tmp"
  mv "$1/$2.tmp" "$1/$2"
}

# The plugins sit next to the CLI binary (where the engine looks for its bundled plugins) and are
# linked into bin/ (the PATH entry), so the engine finds one file both ways and does not warn.
write_plugin() { # write_plugin NAME < body
  write_script "$CLI" "$1"
  ln -sfn "../cli/$1" "$BIN/$1"
}

write_launchers() {
  # The engine starts dynamic providers as `pulumi-resource-pulumi-nodejs`. The release bundle
  # ships this as a tiny script; ours also pins the checkout (HOSTNET_HOME) so state written by
  # another checkout path still loads this checkout's provider code.
  write_plugin pulumi-resource-pulumi-nodejs <<'EOF'
#!/bin/sh
HERE="$(cd "$(dirname "$0")" && pwd)"
HOSTNET_HOME="${HOSTNET_HOME:-$(cd "$HERE/../../.." && pwd)}"
export HOSTNET_HOME
cd "$HOSTNET_HOME" || exit 1
exec node "$HOSTNET_HOME/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js" "$@"
EOF
  # The Node.js language host a plain `pulumi up` starts (cwd: the project; last argument: the
  # engine's address): the SDK's own language runtime service, in scripts/languageHost.ts.
  write_plugin pulumi-language-nodejs <<'EOF'
#!/bin/sh
HERE="$(cd "$(dirname "$0")" && pwd)"
HOSTNET_HOME="${HOSTNET_HOME:-$(cd "$HERE/../../.." && pwd)}"
export HOSTNET_HOME
exec node "$HOSTNET_HOME/dist/scripts/languageHost.js" "$@"
EOF
  # `pulumi` on PATH: the CLI with what `npm run pulumi` sets (scripts/engine.ts engineEnv), each
  # only when the caller has not set it: the project's backend and PULUMI_HOME, no update checks or
  # plugin downloads, and the lab passphrase for lab stacks (scripts/stackName.ts finds the stack).
  { echo "#!/bin/sh"; echo "# $WRAPPER_MARK (written by scripts/setup-engine.sh)"; cat <<'EOF'; } | write_script "$BIN" pulumi
HERE="$(dirname "$(readlink -f "$0")")" # also when called through a symlink from elsewhere
ROOT="$(cd "$HERE/../../.." && pwd)"
: "${HOSTNET_HOME:=$ROOT}"
: "${PULUMI_HOME:=$ROOT/.hostnet/pulumi-home}"
: "${PULUMI_BACKEND_URL:=file://$ROOT/.hostnet/state}"
mkdir -p "$ROOT/.hostnet/state"
: "${PULUMI_SKIP_UPDATE_CHECK:=true}"
: "${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:=true}"
export HOSTNET_HOME PULUMI_HOME PULUMI_BACKEND_URL PULUMI_SKIP_UPDATE_CHECK PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION
# Per-step checkpoints off, as every runner (scripts/engine.ts engineSwitches explains why).
if [ "${HOSTNET_ENGINE_CHECKPOINTS:-}" != 1 ]; then
  : "${PULUMI_SKIP_CHECKPOINTS:=true}"
  : "${PULUMI_DISABLE_CHECKPOINT_BACKUPS:=true}"
  export PULUMI_SKIP_CHECKPOINTS PULUMI_DISABLE_CHECKPOINT_BACKUPS
fi
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ -f "$ROOT/dist/scripts/stackName.js" ]; then
  PASS="$(node "$ROOT/dist/scripts/stackName.js" --lab-passphrase "$@" 2>/dev/null || true)"
  if [ -n "$PASS" ]; then PULUMI_CONFIG_PASSPHRASE="$PASS"; export PULUMI_CONFIG_PASSPHRASE; fi
fi
exec "$HERE/../cli/pulumi" "$@"
EOF
}

# 1. A matching CLI we already built or that is on PATH (not our own wrapper).
if [ -x "$CLI/pulumi" ] && [ "$(version_of "$CLI/pulumi")" = "$WANT" ]; then
  write_launchers
  say "pulumi v$WANT ready ($CLI/pulumi)"
  exit 0
fi
ONPATH="$(command -v pulumi || true)"
if [ -n "$ONPATH" ] && ! grep -qs "$WRAPPER_MARK" "$ONPATH" && [ "$(version_of "$ONPATH")" = "$WANT" ]; then
  ln -sf "$ONPATH" "$CLI/pulumi"
  write_launchers
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
  -o "$CLI/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>&1 |
  awk -v q="$QUIET" '{ n++; if (q != 1 && n % 100 == 0) { printf "engine: compiled %d packages...\n", n; fflush() } }
       /^#|^go: |: (error|cannot|undefined)/ { print > "/dev/stderr" }'
mv "$CLI/pulumi.tmp" "$CLI/pulumi"
write_launchers
say "pulumi v$WANT built in $(( $(date +%s) - start ))s"

# The Node.js language host (sdk/nodejs/cmd/pulumi-language-nodejs) and the pulumi-command
# provider are not served by the module proxy reachable here (403 for every version): hostnet's
# pulumi-language-nodejs above serves the SDK's own language runtime instead, and hosts are
# prepared through hostnet's own SSH layer. See README "Engine".
