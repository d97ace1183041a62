#!/usr/bin/env bash
# Usage: scripts/bench.sh [sluice-bench arguments...]
# Builds the functions, the hello-world floor and the CLI in release mode
# (the profile `sam build` ships), then runs the benchmarks on a fresh
# private stack and writes bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
functions=$(ls functions)
# shellcheck disable=SC2086 # one -p per function
$cargo build --release $(printf -- '-p %s ' $functions) -p sluice-cli -p sluice-bench
if [ -f .local/bench/pg-location ]; then xargs -r rm -rf < .local/bench/pg-location; fi
rm -rf .local/bench
RUST_LOG=${RUST_LOG:-error} scripts/stack.sh .local/bench \
  target/release/sluice-bench --bin-dir target/release --out bench/results.md "$@"
