#!/usr/bin/env bash
# Checks template.yaml with AWS's own tools and builds it with `sam build`,
# offline and without credentials; then clippy. First the format check.
# Run by `make lint` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0

echo "lint: cargo fmt --check (rustfmt.toml)"
${CARGO:-cargo} fmt --all -- --check >/dev/null || { echo "lint: run \`cargo fmt --all\`; these files differ:"; ${CARGO:-cargo} fmt --all -- --check -l; exit 1; }

echo "lint: cfn-lint"
cfn-lint template.yaml
echo "lint: sam validate --lint"
sam validate --lint
echo "lint: sam validate (the SAM transform; a region is needed, no credentials)"
sam validate --region "${AWS_REGION:-eu-west-1}"

echo "lint: sam build (x86_64, debug)"
build_dir=.local/sam-build
rm -rf "$build_dir"
SAM_BUILD_MODE=debug sam build --no-cached --build-dir "$build_dir" \
  --parameter-overrides Architecture=x86_64 >"$build_dir.log" 2>&1 \
  || { tail -n 40 "$build_dir.log"; exit 1; }
functions=$(grep -c 'BuildMethod: rust-cargolambda' template.yaml)
built=0
for bootstrap in "$build_dir"/*/bootstrap; do
  # ELF magic, and e_machine 0x3e (x86-64) at byte 18.
  [ -x "$bootstrap" ] && [ "$(od -An -tx1 -N4 "$bootstrap" | tr -d ' ')" = 7f454c46 ] \
    && [ "$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' ')" = 3e00 ] \
    || { echo "lint: $bootstrap is not an x86-64 executable"; exit 1; }
  built=$((built + 1))
done
[ "$built" = "$functions" ] || { echo "lint: sam build made $built bootstrap(s) for $functions function(s)"; exit 1; }
echo "lint: sam build made $built x86-64 bootstraps"

echo "lint: cargo lambda invoke of every file in events/, against a local stack"
${CARGO:-cargo} build -q -p sluice-local
rm -rf .local/invoke
scripts/stack.sh .local/invoke python3 scripts/invoke_check.py

echo "lint: clippy"
${CARGO:-cargo} clippy --workspace --all-targets -q -- -D warnings
echo "lint: all clean"
