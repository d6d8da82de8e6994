# Switchboard: `make run` starts the product, `make test` runs every check.
CARGO ?= cargo

.PHONY: run test setup-run setup-test setup-fuzz lint audit fuzz build dialer release bench clean

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

setup-fuzz:
	scripts/setup.sh fuzz

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
	$(CARGO) deny check --hide-inclusion-graph licenses bans sources

# Known vulnerabilities (RustSec), apart from `make test`: cargo deny needs the advisory
# database, cloned from GitHub into $CARGO_HOME/advisory-dbs, and a machine that cannot
# reach it is told so instead of failing on a clone error. An older local copy is used
# (and named as such) when it cannot be refreshed.
ADVISORY_DBS = $${CARGO_HOME:-$$HOME/.cargo}/advisory-dbs
audit:
	@if $(CARGO) deny fetch db >/dev/null 2>&1; then \
	    $(CARGO) deny check advisories; \
	elif ls -d $(ADVISORY_DBS)/*/ >/dev/null 2>&1; then \
	    echo "audit: the RustSec advisory database could not be refreshed; checking against the copy in $(ADVISORY_DBS)"; \
	    $(CARGO) deny --offline check advisories; \
	else \
	    echo "audit: the RustSec advisory database is missing ($(ADVISORY_DBS)) and could not be fetched"; \
	    echo "audit: from https://github.com/RustSec/advisory-db: no advisories were checked. Run this where"; \
	    echo "audit: that is reachable, or put a clone of it under $(ADVISORY_DBS)/."; \
	    exit 2; \
	fi

# Each fuzz target (fuzz/, its own crate outside the workspace) for FUZZ_SECONDS, from its
# committed corpus (fuzz/corpus/TARGET) and dictionary (fuzz/dict/TARGET.dict, if any);
# what a run learns is kept in fuzz/target/corpus, a failing input in fuzz/artifacts/TARGET.
# A unit slower than 10 s counts as a failure. FUZZ_SANITIZER=address uses AddressSanitizer
# (slower; on the stable toolchain through RUSTC_BOOTSTRAP=1).
FUZZ_SECONDS ?= 60
FUZZ_SANITIZER ?= none
FUZZ_TARGETS ?= webhook_signature webhook_split config_toml agent_socket agent_session dialer_wire
FUZZ_ENV = $(if $(filter none,$(FUZZ_SANITIZER)),,RUSTC_BOOTSTRAP=1)
fuzz: setup-fuzz
	$(FUZZ_ENV) $(CARGO) fuzz build --sanitizer $(FUZZ_SANITIZER)
	@mkdir -p fuzz/target/logs
	@for target in $(FUZZ_TARGETS); do \
	    log=fuzz/target/logs/$$target.log; \
	    mkdir -p fuzz/target/corpus/$$target; \
	    echo "fuzz: $$target for $(FUZZ_SECONDS) s (log: $$log)"; \
	    dict=; if [ -f fuzz/dict/$$target.dict ]; then dict=-dict=$(CURDIR)/fuzz/dict/$$target.dict; fi; \
	    if $(FUZZ_ENV) $(CARGO) fuzz run --sanitizer $(FUZZ_SANITIZER) $$target \
	        fuzz/target/corpus/$$target fuzz/corpus/$$target -- $$dict \
	        -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 >$$log 2>&1; then \
	        grep -E '^Done [0-9]+ runs' $$log | sed "s/^/fuzz: $$target: /"; \
	    else \
	        tail -n 40 $$log; \
	        echo "fuzz: $$target FAILED: the input is in fuzz/artifacts/$$target"; \
	        exit 1; \
	    fi; \
	done

bench:
	bash bench/run.sh

clean:
	$(CARGO) clean
