# syntax=docker/dockerfile:1
# flexgate operator image: one static musl binary on distroless (no shell, no libc, uid 65532).
# Build: docker build -t ghcr.io/flexgate/flexgate:dev .
# The crate uses rustls (no OpenSSL), so a fully static musl build needs only musl-tools (for ring's C/asm).

FROM rust:1.95-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "${TARGET}"
WORKDIR /src
COPY . .
# Cache mounts keep the registry and incremental target dir between builds; the binary is copied out
# of the cache mount because cache contents are not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "${TARGET}" --bin flexgate \
    && install -D -m 0755 "target/${TARGET}/release/flexgate" /out/flexgate

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="flexgate" \
      org.opencontainers.image.description="Kubernetes operator syncing OfficeRnD Flex to door-access and Wi-Fi vendors" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/flexgate /flexgate
USER 65532:65532
# 8080: /metrics /healthz /readyz, 8081: POST /webhooks/officernd
EXPOSE 8080 8081
ENTRYPOINT ["/flexgate"]
CMD ["run"]
