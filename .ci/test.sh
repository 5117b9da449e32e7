#!/usr/bin/env bash
# test.sh is `make test`: it installs and starts what the tests need
# (.ci/testenv.sh), then runs the frontend's unit tests, a short fuzz run and
# every Go test. go test runs last: CI reads its closing lines.
set -euo pipefail
cd "$(dirname "$0")/.."
env_out="$(.ci/testenv.sh)"
eval "$env_out"
export CGO_ENABLED=1

echo "== go vet"
go vet ./...

if [ -f frontend/package.json ]; then
  echo "== frontend: npm ci, build, unit tests"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm test)
fi

echo "== fuzz: CSR parsing and policy (short run)"
go test -run='^$' -fuzz='^FuzzCSRPolicy$' -fuzztime="${CERTDESK_FUZZTIME:-20s}" ./signer/

echo "== go test"
go test -count=1 -timeout 30m ./...
