# The release image: a static binary without the dev mode (-tags nodev), on
# distroless (CA certificates, no shell), running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -tags nodev -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bff ./cmd/bff \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bff /bff
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/bff
ENV BFF_DATA_DIR=/var/lib/bff \
    BFF_LISTEN=0.0.0.0:8080
USER nonroot:nonroot
EXPOSE 8080 9091
# Exec form: distroless has no shell. The check reads the same BFF_*
# configuration and asks the admin listener's /healthz (over TLS when set).
HEALTHCHECK --interval=15s --timeout=6s --start-period=10s --retries=3 CMD ["/bff", "healthcheck"]
VOLUME ["/var/lib/bff"]
ENTRYPOINT ["/bff", "serve"]
