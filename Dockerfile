# llmq: one static binary. Build: docker build -t llmq .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/llmq ./cmd/llmq

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/llmq /usr/local/bin/llmq
ENTRYPOINT ["/usr/local/bin/llmq"]
