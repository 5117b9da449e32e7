#!/usr/bin/env bash
# bench-issuance.sh compares certdesk's issuance through its API (a
# partner's submission and an admin's approval; a partner's auto-approved
# renewal) on PostgreSQL and SQLite with step-ca v0.30.2's POST /1.0/sign,
# each CA key in SoftHSM2, on loopback, with one load generator
# (cmd/certdesk/bench_issuance_test.go, build tag bench) that interleaves the
# peers round by round. It also runs the in-process signer benchmark
# (BenchmarkIssueLeaf). It is not part of `make test`. It starts and stops its
# own step-ca by pid on a free port; figures go to stdout and, as Markdown,
# to $BENCH_OUT (default bench-issuance.md).
#
#   BENCH_CLIENTS=1,4,16 BENCH_ROUNDS=3 BENCH_DURATION=4s .ci/bench-issuance.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STEP_VERSION=v0.30.2
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"
# PostgreSQL, SoftHSM2 and OpenSSL as `make test` has them, unless
# DATABASE_URL already names a server.
if [ -z "${DATABASE_URL:-}" ]; then eval "$(.ci/testenv.sh)"; fi

has_version() { command -v "$1" >/dev/null && go version -m "$(command -v "$1")" | grep -q "mod[[:space:]]*$2[[:space:]]*$STEP_VERSION"; }
if ! has_version step-ca github.com/smallstep/certificates; then
  echo "bench-issuance: installing step-ca $STEP_VERSION" >&2
  dpkg -s libpcsclite-dev >/dev/null 2>&1 || apt-get install -y libpcsclite-dev >&2
  CGO_ENABLED=1 go install "github.com/smallstep/certificates/cmd/step-ca@$STEP_VERSION"
fi
if ! has_version step github.com/smallstep/cli; then
  echo "bench-issuance: installing step CLI $STEP_VERSION" >&2
  go install "github.com/smallstep/cli/cmd/step@$STEP_VERSION"
fi
for tool in softhsm2-util openssl jq curl; do
  command -v "$tool" >/dev/null || { echo "bench-issuance: $tool is required" >&2; exit 1; }
done
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

export BENCH_OUT="${BENCH_OUT:-$PWD/bench-issuance.md}"
# On tmpfs: step-ca's database (badger) syncs every write, and the
# PostgreSQL that the tests use runs with fsync off; neither peer waits for
# a disk.
work="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
stepca_pid=""
cleanup() {
  if [ -n "$stepca_pid" ]; then kill "$stepca_pid" 2>/dev/null || true; wait "$stepca_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port for step-ca.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# step-ca with its intermediate key in a SoftHSM2 token of its own.
export STEPPATH="$work/step"
pin=1234
printf 'bench-password\n' >"$work/pw"
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >"$work/softhsm2.conf"
stephsm() { SOFTHSM2_CONF="$work/softhsm2.conf" "$@"; }
stephsm softhsm2-util --init-token --free --label step-bench --pin "$pin" --so-pin 4321 >/dev/null
step ca init --name "Bench CA" --dns 127.0.0.1 --address "127.0.0.1:$port" --provisioner bench \
  --password-file "$work/pw" --provisioner-password-file "$work/pw" --deployment-type standalone >/dev/null 2>&1
openssl pkcs8 -topk8 -nocrypt -in "$STEPPATH/secrets/intermediate_ca_key" -passin "file:$work/pw" -out "$work/int.p8"
stephsm softhsm2-util --import "$work/int.p8" --token step-bench --label intermediate --id 0101 --pin "$pin" >/dev/null
rm -f "$work/int.p8" "$STEPPATH/secrets/intermediate_ca_key"
ca_json="$STEPPATH/config/ca.json"
jq --arg kms "pkcs11:module-path=$SOFTHSM_MODULE;token=step-bench?pin-value=$pin" \
  '.key = "pkcs11:id=0101;object=intermediate" | .kms = {type: "pkcs11", uri: $kms} | .logger = {format: "json"}' \
  "$ca_json" >"$work/ca.json" && mv "$work/ca.json" "$ca_json"
jq -r '.authority.provisioners[0].encryptedKey' "$ca_json" |
  step crypto jwe decrypt --password-file "$work/pw" >"$work/provisioner.jwk" 2>/dev/null

SOFTHSM2_CONF="$work/softhsm2.conf" step-ca "$ca_json" --password-file "$work/pw" >"$work/step-ca.log" 2>&1 &
stepca_pid=$!
for _ in $(seq 100); do
  curl -fsS --cacert "$STEPPATH/certs/root_ca.crt" "https://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  if ! kill -0 "$stepca_pid" 2>/dev/null; then cat "$work/step-ca.log" >&2; echo "bench-issuance: step-ca did not start" >&2; exit 1; fi
  sleep 0.2
done
grep -qi "pkcs11" "$ca_json" || { echo "bench-issuance: step-ca is not using the token" >&2; exit 1; }

echo "bench-issuance: $(nproc) CPUs, step-ca $STEP_VERSION (pid $stepca_pid, port $port, key in SoftHSM2), $(go version | cut -d' ' -f3)" >&2
STEPCA_URL="https://127.0.0.1:$port" STEPCA_ROOT="$STEPPATH/certs/root_ca.crt" STEPCA_PROVISIONER=bench \
  STEPCA_JWK="$work/provisioner.jwk" STEPCA_KEY_LABEL=SoftHSM2 STEPCA_PID="$stepca_pid" \
  CGO_ENABLED=1 go test -tags bench ./cmd/certdesk/ -run '^TestBenchIssuance$' -count=1 -v -timeout 20m |
  grep -v '^=== RUN\|^--- PASS\|^PASS\|^ok\|pkcs11: token opened' >&2
kill "$stepca_pid" 2>/dev/null || true
wait "$stepca_pid" 2>/dev/null || true
stepca_pid=""

# The in-process signer, for the "share of the signer's rate" column.
signer_out="$(CGO_ENABLED=1 go test ./signer/ -run '^$' -bench 'IssueLeaf/softhsm' -benchtime 2s -count 3 2>/dev/null | grep '^BenchmarkIssueLeaf')"
# metric UNIT GOROUTINES: the median of the three runs' values of UNIT.
metric() { echo "$signer_out" | grep "goroutines=$2-" | awk -v u="$1" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}' | sort -n | sed -n 2p; }
rate() { metric certs/s "$1"; }
cpu() { metric cpu-µs/op "$1"; }
{
  echo
  echo "| in-process signer (BenchmarkIssueLeaf, SoftHSM2) | goroutines | certs/s (median of 3) | CPU µs per certificate (median of 3) |"
  echo "|---|---|---|---|"
  echo "| signer.Issuer Prepare + Issue | 1 | $(rate 1) | $(cpu 1) |"
  echo "| signer.Issuer Prepare + Issue | 2 | $(rate 2) | $(cpu 2) |"
} >>"$BENCH_OUT"
cat "$BENCH_OUT"
