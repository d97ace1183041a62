#!/usr/bin/env bash
# Usage: scripts/test.sh CARGO_TEST_ARGS...
# Runs `cargo test`, then ends with one line totalling every test binary's
# results, so a run that ran nothing (or lost a failure in the scroll) shows.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

${CARGO:-cargo} test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

passed=$(grep '^test result:' "$log" | grep -Eo '[0-9]+ passed' | awk '{n += $1} END {print n + 0}')
failed=$(grep '^test result:' "$log" | grep -Eo '[0-9]+ failed' | awk '{n += $1} END {print n + 0}')
ignored=$(grep '^test result:' "$log" | grep -Eo '[0-9]+ ignored' | awk '{n += $1} END {print n + 0}')
echo
echo "tests: $passed passed, $failed failed, $ignored ignored (exit $status)"
if [ "$status" = 0 ] && [ "$passed" = 0 ]; then
  echo "tests: no test ran" >&2
  exit 1
fi
exit "$status"
