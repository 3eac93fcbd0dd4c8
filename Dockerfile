# tickwork: one image holding the three binaries (tickwork-api, tickwork-tick,
# tickwork-worker). They share nearly all their code, so one build compiles the workspace
# once; each compose service picks its binary with `command`.
#
#   docker build -t tickwork .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... -p 8080:8080 tickwork tickwork-api

# The toolchain the project is tested with.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Runtime-checked SQL queries: the build needs no database.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tickwork-api -p tickwork-tick -p tickwork-worker \
    && mkdir -p /out \
    && cp target/release/tickwork-api target/release/tickwork-tick target/release/tickwork-worker /out/

FROM debian:bookworm-slim
# curl serves the container health check; TLS roots are built into the binaries.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tickwork
COPY --from=build /out/tickwork-api /out/tickwork-tick /out/tickwork-worker /usr/local/bin/
USER tickwork
ENV SERVER_HOST=0.0.0.0 SERVER_PORT=8080 LOG_FORMAT=json
EXPOSE 8080
CMD ["tickwork-api"]
