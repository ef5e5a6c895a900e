#!/usr/bin/env bash
# README's test command runs this (after setup): unit tests, then the lab test, then every
# integration test against shared lab hosts, in ONE mocha run so the closing line counts all.
# The lab is taken down at the end (test/support/hooks.ts).
# HOSTNET_TEST_LANES=K (default 3) runs the integration files in K parallel lanes, lane i on its
# own lab HOSTNET_TEST_LAB_BASE+i (default base 0), with one closing line summed over all lanes
# (scripts/testLanes.ts). K=1 is the single serial run below.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${HOSTNET_TEST_LANES:-3}" != 1 ]; then
  exec node dist/scripts/testLanes.js "$@"
fi
files=(dist/test/unit/*.test.js)
[ -f dist/test/integration/lab.test.js ] && files+=(dist/test/integration/lab.test.js)
for f in dist/test/integration/*.test.js; do
  [ "$f" = dist/test/integration/lab.test.js ] && continue
  files+=("$f")
done
exec npx mocha --require dist/test/support/hooks.js --reporter dist/test/support/reporter.js \
  --timeout 600000 "$@" "${files[@]}"
