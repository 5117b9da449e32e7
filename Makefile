# certdesk — the two commands people need are `make demo` and `make test`.
GO      ?= go
BIN     := bin/certdesk
DEMO    ?= demo-data
ADDR    ?= 127.0.0.1:8080
export CGO_ENABLED := 1

.PHONY: build frontend demo test bench clean

## build: the certdesk binary (with whatever frontend build is in frontend/dist)
build:
	$(GO) build -o $(BIN) ./cmd/certdesk

## frontend: install the browser app's packages and build it into frontend/dist
frontend:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build

## demo: build everything and run the portal on its embedded defaults
demo: frontend build
	@bash .ci/demo-deps.sh
	$(BIN) demo --data $(DEMO) --addr $(ADDR)

## test: install and start what the tests need, then run every test
test:
	@bash .ci/test.sh

## bench: the benchmarks behind docs/performance.md
bench:
	@bash .ci/bench.sh

clean:
	rm -rf bin frontend/node_modules
