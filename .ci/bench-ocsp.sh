#!/usr/bin/env bash
# bench-ocsp.sh compares certdesk's OCSP responder (pre-signed answers, the
# delegated responder key in SoftHSM2) with `openssl ocsp -index` on the
# same certificates, in the same run, on loopback, with wrk (one thread,
# the same settings for both), through the production server (web.New and
# its middleware). It is not part of `make test`. It runs BENCH_ROUNDS
# paired rounds (each round loads both, in turn, the order flipping every
# round) and prints Markdown table rows on stdout — work | certdesk | peer |
# ratio, the ratio certdesk ÷ peer as the median (min–max) of the rounds —
# also kept in $BENCH_OUT (default bench-ocsp.md); docs/performance.md
# quotes them. Progress goes to stderr. Server CPU is read from
# /proc/<pid>/stat before and after each load, wrk's from its rusage. The
# test starts and stops its own openssl processes by pid on free ports; a
# run takes about 2 × BENCH_ROUNDS × 2 × BENCH_DURATION plus a minute.
#
#   BENCH_DURATION=10s BENCH_CONCURRENCY=50 BENCH_ROUNDS=3 .ci/bench-ocsp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  echo "bench-ocsp: installing wrk" >&2
  apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
fi
command -v openssl >/dev/null || { echo "bench-ocsp: openssl is required" >&2; exit 1; }

export BENCH_DURATION="${BENCH_DURATION:-10s}"
export BENCH_CONCURRENCY="${BENCH_CONCURRENCY:-50}"
export BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_OUT="${BENCH_OUT:-$PWD/bench-ocsp.md}"
: >"$BENCH_OUT"
echo "bench-ocsp: $(nproc) CPUs, $(openssl version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), ${BENCH_DURATION} per load, ${BENCH_CONCURRENCY} connections, ${BENCH_ROUNDS} rounds" >&2
CGO_ENABLED=1 go test -tags benchocsp ./handlers/revocation/ -run '^(TestOCSPHandler_Cost|TestOCSPLoad_)' -count=1 -v -timeout 30m >&2
cat "$BENCH_OUT"
