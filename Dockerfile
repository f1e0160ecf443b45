# The stock warren binary (cmd/warren) in a small image; compose.yaml runs it
# as the worker and the dashboard.
#
#   docker build -t warren --build-arg VERSION=v0.1.0 .
#   docker run --rm -e WARREN_AMQP_URL=amqp://user:pass@host:5672/ warren worker

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/warrenjobs/warren/cmd/cli.version=${VERSION}" \
      -o /out/warren ./cmd/warren

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/warren /usr/local/bin/warren
USER nonroot:nonroot
EXPOSE 9090 5555
ENTRYPOINT ["/usr/local/bin/warren"]
CMD ["worker"]
