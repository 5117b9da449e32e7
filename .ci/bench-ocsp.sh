#!/usr/bin/env bash
# bench-ocsp.sh compares certdesk's OCSP responder (pre-signed answers, the
# delegated responder key in SoftHSM2) with `openssl ocsp -index` on the
# same certificates, in the same run, on loopback, with hey. It is not part
# of `make test`. Figures go to stdout and, as Markdown table rows, to
# $BENCH_OUT (default bench-ocsp.md); docs/performance.md quotes them.
#
#   BENCH_DURATION=10s BENCH_CONCURRENCY=50 .ci/bench-ocsp.sh
#
# Also: the CRL generation benchmark (10k, 100k, 1M entries):
#   go test ./signer/ -run '^$' -bench BenchmarkCRLSign -benchtime 1x -benchmem
set -euo pipefail
cd "$(dirname "$0")/.."

HEY_VERSION=v0.1.5
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"
if ! command -v hey >/dev/null || ! go version -m "$(command -v hey)" | grep -q "rakyll/hey[[:space:]]*$HEY_VERSION"; then
  echo "bench-ocsp: installing hey $HEY_VERSION" >&2
  go install "github.com/rakyll/hey@$HEY_VERSION"
fi
command -v openssl >/dev/null || { echo "bench-ocsp: openssl is required" >&2; exit 1; }

export BENCH_DURATION="${BENCH_DURATION:-10s}"
export BENCH_CONCURRENCY="${BENCH_CONCURRENCY:-50}"
export BENCH_OUT="${BENCH_OUT:-$PWD/bench-ocsp.md}"
: >"$BENCH_OUT"
echo "bench-ocsp: $(nproc) CPUs, $(openssl version), hey $HEY_VERSION, ${BENCH_DURATION} per run, ${BENCH_CONCURRENCY} workers" >&2
CGO_ENABLED=1 go test -tags benchocsp ./handlers/revocation/ -run '^TestOCSPLoad_' -count=1 -v -timeout 30m
echo "bench-ocsp: rows written to $BENCH_OUT" >&2
