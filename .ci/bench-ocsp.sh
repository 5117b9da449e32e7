#!/usr/bin/env bash
# bench-ocsp.sh compares certdesk's OCSP responder (pre-signed answers, the
# delegated responder key in SoftHSM2) with `openssl ocsp -index` on the
# same certificates, in the same run, on loopback, with hey, through the
# production server (web.New and its middleware). It is not part of `make
# test`. It runs BENCH_ROUNDS paired rounds (certdesk, then openssl, each
# under the same load) and prints Markdown table rows on stdout —
# work | certdesk | peer | ratio, the ratio certdesk ÷ peer as the median
# (min–max) of the rounds — also kept in $BENCH_OUT (default
# bench-ocsp.md); docs/performance.md quotes them. Progress goes to stderr.
# Server CPU is read from /proc/<pid>/stat before and after each run.
#
#   BENCH_DURATION=10s BENCH_CONCURRENCY=50 BENCH_ROUNDS=3 .ci/bench-ocsp.sh
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
export BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_OUT="${BENCH_OUT:-$PWD/bench-ocsp.md}"
: >"$BENCH_OUT"
echo "bench-ocsp: $(nproc) CPUs, $(openssl version), hey $HEY_VERSION, ${BENCH_DURATION} per run, ${BENCH_CONCURRENCY} workers, ${BENCH_ROUNDS} rounds" >&2
CGO_ENABLED=1 go test -tags benchocsp ./handlers/revocation/ -run '^(TestOCSPHandler_Cost|TestOCSPLoad_)' -count=1 -v -timeout 30m >&2
cat "$BENCH_OUT"
