# syntax=docker/dockerfile:1
# Every service's image, one target each, built from the repository root
# (its go.mod is the module of pkg/ and every service):
#   docker build --target matcher -t quickmatch/matcher .
# (frontend, matcher, allocator, game). One build stage makes all four
# binaries with GOWORK=off, from the root go.mod alone, as released; each
# runtime is distroless, static, and runs as nonroot (uid 65532).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-trimpath
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY pkg/ pkg/
COPY services/ services/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/ ./services/frontend ./services/matcher ./services/allocator ./services/game

# What every service runs on.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
USER nonroot:nonroot

FROM runtime AS frontend
COPY --from=build /out/frontend /usr/local/bin/frontend
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/frontend"]

FROM runtime AS matcher
COPY --from=build /out/matcher /usr/local/bin/matcher
EXPOSE 9102
ENTRYPOINT ["/usr/local/bin/matcher"]

FROM runtime AS allocator
COPY --from=build /out/allocator /usr/local/bin/allocator
EXPOSE 9103
ENTRYPOINT ["/usr/local/bin/allocator"]

FROM runtime AS game
COPY --from=build /out/game /usr/local/bin/game
# 7000: players; 9104: /healthz, /metrics and /status with -ops-addr :9104
# (the Helm chart's fleets).
EXPOSE 7000 9104
ENTRYPOINT ["/usr/local/bin/game"]
