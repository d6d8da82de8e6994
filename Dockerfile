# Switchboard's runtime image: the router binary on a slim Debian, run as a non-root user.
# Pin the base images to digests in production builds (docker buildx imagetools inspect).
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-20261110-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchboard

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/switchboard --create-home switchboard
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=build /src/config/switchboard.toml /etc/switchboard/switchboard.toml
USER switchboard
WORKDIR /var/lib/switchboard
ENV SWITCHBOARD_CONFIG=/etc/switchboard/switchboard.toml \
    SWITCHBOARD__SERVER__LISTEN=0.0.0.0:8080 \
    SWITCHBOARD__SERVER__DATA_DIR=/var/lib/switchboard/data
VOLUME ["/var/lib/switchboard/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
