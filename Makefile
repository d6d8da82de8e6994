# Switchboard: `make run` starts the product, `make test` runs every check.
CARGO ?= cargo

.PHONY: run test setup-run setup-test lint build dialer release bench clean

# Router + dialer + wa-sim on 127.0.0.1, store in ./data, config/switchboard.toml as it is.
# scripts/setup.sh first installs what is missing (quick when nothing is).
run: setup-run
	$(CARGO) build -p switchboard -p wa-sim --bins
	scripts/build-dialer.sh
	scripts/run.sh

setup-run:
	scripts/setup.sh run

setup-test:
	scripts/setup.sh test

build:
	$(CARGO) build --workspace --bins

# The WebAssembly dialer, into www/pkg/ (needs the wasm32 target, wasm-bindgen-cli at the
# Cargo.lock version, and npm for wasm-opt; scripts/setup.sh installs them).
dialer:
	scripts/build-dialer.sh

release: dialer
	$(CARGO) build --release -p switchboard -p wa-sim

# Everything is built first; the tests then run in a network namespace with only the
# loopback interface, so the media of the WebRTC and browser tests never leaves 127.0.0.1.
test: setup-test
	$(MAKE) --no-print-directory lint dialer
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-run
	scripts/loopback.sh $(CARGO) test --workspace --offline

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p switchboard-web --target wasm32-unknown-unknown -- -D warnings

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
