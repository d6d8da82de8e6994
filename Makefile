# Switchboard: `make run` starts the product, `make test` runs every check.
CARGO ?= cargo
CONFIG ?= config/switchboard.toml

.PHONY: run test lint build release bench clean

run: build
	$(CARGO) run -p switchboard -- serve --config $(CONFIG)

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p switchboard

test: lint
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
