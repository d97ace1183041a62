#!/usr/bin/env bash
# Usage: scripts/setup.sh [tools]
# Installs what the local stack needs, idempotently: PostgreSQL, openssl and
# Chromium (for the browser test) from Debian's packages, moto (local SQS +
# DynamoDB) in a project venv, the web page's locked npm packages, built
# into web/dist, and Uppy Companion's (bench/companion, for make bench).
# With `tools`, also AWS's deploy tools (SAM CLI, cfn-lint) and cargo-lambda
# into the same venv, for `make lint` and running the Lambda binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_SPEC='moto[server]==5.2.5'
TOOLS_SPEC='aws-sam-cli==1.170.0 cfn-lint==1.58.0 cargo-lambda==1.9.2'

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v openssl >/dev/null || [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing postgresql, openssl and chromium from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl chromium >/dev/null
fi

if [ ! -x .venv/bin/moto_server ] || [ "$(cat .venv/.moto-spec 2>/dev/null)" != "$MOTO_SPEC" ]; then
  echo "setup: installing $MOTO_SPEC into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "$MOTO_SPEC"
  echo "$MOTO_SPEC" > .venv/.moto-spec
fi

# The lockfile decides every version. Not `npm ci`: the registry these
# machines reach has no builds of rollup's native package for other
# platforms, so npm leaves them out of the lockfile and `npm ci` then refuses
# it as out of sync. `npm install --no-save` installs exactly the locked
# versions and never rewrites package.json or the lockfile.
npm_locked() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    echo "setup: installing $1/'s locked npm packages"
    (cd "$1" && npm install --no-save --no-audit --no-fund --loglevel=error)
  fi
}
npm_locked web
# Uppy Companion, the reference of the signing benchmark (make bench).
npm_locked bench/companion
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html web/package-lock.json -newer web/dist/index.html 2>/dev/null | head -n 1)" ]; then
  echo "setup: building the web page into web/dist"
  (cd web && npm run --silent build >/dev/null)
fi

if [ "${1:-}" = tools ] && [ "$(cat .venv/.tools-spec 2>/dev/null)" != "$TOOLS_SPEC" ]; then
  echo "setup: installing $TOOLS_SPEC into .venv"
  # shellcheck disable=SC2086 # one argument per package
  .venv/bin/pip install -q --disable-pip-version-check $TOOLS_SPEC
  echo "$TOOLS_SPEC" > .venv/.tools-spec
fi
