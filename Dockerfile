# syntax=docker/dockerfile:1
# helpdesk: build with Rust 1.95 on Debian bookworm, run on a slim bookworm as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin helpdesk \
    && cp target/release/helpdesk /usr/local/bin/helpdesk

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin helpdesk \
    && mkdir -p /data \
    && chown helpdesk:helpdesk /data
COPY --from=build /usr/local/bin/helpdesk /usr/local/bin/helpdesk
USER helpdesk
WORKDIR /data
VOLUME ["/data"]
ENV HELPDESK_DATA_DIR=/data \
    HELPDESK_DATABASE__URL=sqlite:///data/helpdesk.db \
    HELPDESK_WEB__LISTEN=0.0.0.0:8080 \
    HELPDESK_LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
# serve stops cleanly on SIGTERM (docker stop): running jobs finish, queued ones stay queued.
STOPSIGNAL SIGTERM
ENTRYPOINT ["helpdesk"]
CMD ["serve"]
