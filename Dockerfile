# xhub: one static binary. Build: docker build -t xhub .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG XHUB_VERSION=devel
ARG XHUB_COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/xhub-gov/xhub/internal/buildinfo.version=${XHUB_VERSION} -X github.com/xhub-gov/xhub/internal/buildinfo.commit=${XHUB_COMMIT}" -o /out/xhub ./cmd/xhub && mkdir -p /out/data/pki /out/join

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/xhub /usr/local/bin/xhub
# The data dir must belong to the nonroot user (65532) before the volume mounts.
COPY --from=build --chown=65532:65532 /out/data /data
# Where a join token is handed to a joining node (docker-compose.yml).
COPY --from=build --chown=65532:65532 /out/join /join
VOLUME ["/data"]
EXPOSE 7443 9090
ENTRYPOINT ["/usr/local/bin/xhub"]
CMD ["serve", "--data-dir", "/data", "--listen", "0.0.0.0:7443", "--metrics-listen", "0.0.0.0:9090"]
