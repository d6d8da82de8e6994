# Switchboard's runtime image: the router binary and the dialer (WebAssembly) on a slim
# Debian, run as a non-root user. Three stages: the router, the dialer, the runtime.
# The Rust image is pinned to the toolchain this repository is tested with, the runtime to
# Debian 12 (the release the build stage links against). Pin both to digests in production
# builds (`docker buildx imagetools inspect <image>` prints them).
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:12-slim

FROM ${RUST_IMAGE} AS router
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchboard

FROM ${RUST_IMAGE} AS dialer
# wasm-opt comes from npm's binaryen (package-lock.json): Debian's corrupts wasm-bindgen
# output. wasm-bindgen-cli must match the wasm-bindgen version in Cargo.lock.
ARG WASM_BINDGEN_VERSION=0.2.130
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add wasm32-unknown-unknown \
    && cargo install wasm-bindgen-cli --version ${WASM_BINDGEN_VERSION}
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN scripts/build-dialer.sh --locked

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/switchboard --create-home switchboard
COPY --from=router /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=router /src/config/production.toml /etc/switchboard/switchboard.toml
COPY --from=dialer /src/www /usr/share/switchboard/www
USER switchboard
WORKDIR /var/lib/switchboard
ENV SWITCHBOARD_CONFIG=/etc/switchboard/switchboard.toml
VOLUME ["/var/lib/switchboard/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
