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

# Everything is built first; the tests then run in a network namespace with only the
# loopback interface, so the WebRTC media of the end-to-end tests never leaves 127.0.0.1.
test: lint
	$(CARGO) test --workspace --no-run
	scripts/loopback.sh $(CARGO) test --workspace --offline

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
