# The daily verbs. `make dev` and `make test` install what they need first.
.PHONY: dev test lint unit bench setup tools build migrate clean

CARGO ?= cargo

setup:
	@scripts/setup.sh

## AWS's SAM CLI, cfn-lint and cargo-lambda, into .venv/bin.
tools: setup
	@scripts/setup.sh tools

build:
	$(CARGO) build --workspace

## Run Sluice on its local stack (state kept in .local/dev; Ctrl-C stops it).
dev: setup
	$(CARGO) build -p sluice-local
	scripts/stack.sh .local/dev target/debug/sluice-local dev

## Every test, on a private stack started for the run and stopped after it.
## The binaries are built first: the benchmark's smoke test starts them.
test: setup
	$(CARGO) build --workspace --bins
	cat .local/test/pg-location 2>/dev/null | xargs -r rm -rf
	rm -rf .local/test
	RUST_LOG=$${RUST_LOG:-warn} CARGO=$(CARGO) scripts/stack.sh .local/test scripts/test.sh --workspace --no-fail-fast

## The template as AWS's tools see it, and the code as clippy sees it.
## `sam build` runs for x86_64 (the only Rust target on these machines) in
## debug mode: it proves every function builds the way `sam deploy` ships it.
lint: tools
	scripts/lint.sh

## The benchmarks against their references (release build; see README,
## Benchmarks). Prints the table and writes bench/results.md.
bench: setup
	CARGO=$(CARGO) scripts/bench.sh $(BENCH_ARGS)

## Unit tests only (no stack needed).
unit:
	CARGO=$(CARGO) scripts/test.sh --workspace --lib --bins

## Apply migrations to DATABASE_URL (e.g. your RDS instance).
migrate:
	@test -n "$(DATABASE_URL)" || { echo "set DATABASE_URL=postgres://user:password@host:5432/db"; exit 2; }
	$(CARGO) run -q -p sluice-local -- migrate --database-url "$(DATABASE_URL)"

## Remove every local state folder (databases, objects, keys, venv).
clean:
	cat .local/*/pg-location 2>/dev/null | xargs -r rm -rf
	rm -rf .local .venv
