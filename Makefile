# Switchboard: `make run` starts the product, `make test` runs every check.
CARGO ?= cargo

.PHONY: run test lint build dialer release bench clean

# Router + dialer + wa-sim on 127.0.0.1, store in ./data, config/switchboard.toml as it is.
run: build dialer
	scripts/run.sh

build:
	$(CARGO) build --workspace --bins

# The WebAssembly dialer, into www/pkg/ (needs the wasm32 target, wasm-bindgen-cli at the
# Cargo.lock version, and npm for wasm-opt; .ci/run installs them).
dialer:
	scripts/build-dialer.sh

release: dialer
	$(CARGO) build --release -p switchboard -p wa-sim

# Everything is built first; the tests then run in a network namespace with only the
# loopback interface, so the media of the WebRTC and browser tests never leaves 127.0.0.1.
test: lint dialer
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
