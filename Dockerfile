# Pushhand: a multi-stage build whose image holds the binary alone, run as a non-root user.
# Not built or tested on the project's CI machine (it has no Docker engine); see README.
#
#   docker build -t pushhand .
#   docker run -e PUSHHAND_ENV=production -e JWT_SECRET=... -e DATABASE_URL=postgres://... pushhand
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pushhand \
    && strip target/release/pushhand

# glibc and nothing else (no shell, no package manager); uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/pushhand /usr/local/bin/pushhand
WORKDIR /home/nonroot
ENV BIND_ADDR=0.0.0.0:8000 \
    PUSHHAND_DATA_DIR=/home/nonroot/data \
    PUSHHAND_LOG_FORMAT=json
EXPOSE 8000
USER nonroot
ENTRYPOINT ["/usr/local/bin/pushhand"]
CMD ["serve"]
