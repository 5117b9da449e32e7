#!/usr/bin/env bash
# bench-crl.sh compares certdesk's full CRL generation with `cfssl gencrl`
# in the same run on this machine, and measures what a revocation costs
# with partitioned CRLs. It is not part of `make test`.
#
# certdesk reads BENCH_CRL_ENTRIES revoked certificates (default 1,000,000)
# from PostgreSQL in batches, encodes them as a stream, lints a
# representative twin and signs with the issuing key in SoftHSM2; cfssl
# v1.6.5 reads as many serials from a file and signs with a software key.
# One partition holds BENCH_CRL_AT_SCALE / 64 entries (default 10,000,000 /
# 64), the size a partition has with that many revoked, and a revocation in
# it is timed from the revoke call to the published partition and delta.
#
# It prints Markdown table rows on stdout — work | certdesk | peer | ratio,
# the ratio certdesk ÷ peer as the median (min–max) of BENCH_ROUNDS paired
# rounds (default 3) — also kept in $BENCH_OUT (default bench-crl.md).
# Progress goes to stderr. Needs DATABASE_URL (PostgreSQL) and SoftHSM2, as
# the tests do.
#
#   BENCH_CRL_ENTRIES=1000000 BENCH_ROUNDS=3 .ci/bench-crl.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CFSSL_VERSION=v1.6.5
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"
if ! command -v cfssl >/dev/null || ! go version -m "$(command -v cfssl)" | grep -q "cloudflare/cfssl[[:space:]]*$CFSSL_VERSION"; then
  echo "bench-crl: installing cfssl $CFSSL_VERSION" >&2
  go install "github.com/cloudflare/cfssl/cmd/cfssl@$CFSSL_VERSION"
fi
[ -x /usr/bin/time ] || { echo "bench-crl: GNU time (/usr/bin/time) is required for cfssl's peak RSS" >&2; exit 1; }

export BENCH_CRL_ENTRIES="${BENCH_CRL_ENTRIES:-1000000}"
export BENCH_CRL_AT_SCALE="${BENCH_CRL_AT_SCALE:-10000000}"
export BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_OUT="${BENCH_OUT:-$PWD/bench-crl.md}"
: >"$BENCH_OUT"
echo "bench-crl: $(nproc) CPUs, ${BENCH_CRL_ENTRIES} entries, partition as with ${BENCH_CRL_AT_SCALE} revoked, ${BENCH_ROUNDS} rounds" >&2
CGO_ENABLED=1 go test -tags benchcrl ./handlers/revocation/ -run '^TestCRLScale_' -count=1 -v -timeout 60m >&2
cat "$BENCH_OUT"
