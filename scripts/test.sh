#!/usr/bin/env bash
# README's test command runs this (after setup): unit tests, then the lab test, then every
# integration test against shared lab hosts, in ONE mocha run so the closing line counts all.
# The lab is taken down at the end (test/support/hooks.ts).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
files=(dist/test/unit/*.test.js)
[ -f dist/test/integration/lab.test.js ] && files+=(dist/test/integration/lab.test.js)
for f in dist/test/integration/*.test.js; do
  [ "$f" = dist/test/integration/lab.test.js ] && continue
  files+=("$f")
done
exec npx mocha --require dist/test/support/hooks.js --reporter dist/test/support/reporter.js \
  --timeout 600000 "$@" "${files[@]}"
