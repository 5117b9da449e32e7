#!/usr/bin/env bash
# bench.sh is `make bench`: the side-by-side benchmarks behind
# docs/performance.md. It runs the issuance comparison (.ci/bench-issuance.sh:
# certdesk's API against step-ca, and the in-process signer), then the CRL
# and OCSP benchmarks (.ci/bench-crl.sh, .ci/bench-ocsp.sh) where they exist,
# each writing Markdown rows to its own file, and prints the combined
# tables. Each part bounds its own time; nothing here is part of `make test`,
# and no figure fails it.
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
parts=()
run() {
  local name=$1 script=$2
  if [ ! -x "$script" ] && [ ! -f "$script" ]; then
    echo "bench: $script not present, skipped" >&2
    return
  fi
  echo "== bench: $name ($script)" >&2
  BENCH_OUT="$out/$name.md" bash "$script" >&2
  parts+=("$name")
}
run issuance .ci/bench-issuance.sh
run crl .ci/bench-crl.sh
run ocsp .ci/bench-ocsp.sh

echo
echo "# certdesk benchmarks: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)"
for name in "${parts[@]}"; do
  echo
  echo "## $name"
  echo
  if [ -s "$out/$name.md" ]; then cat "$out/$name.md"; else echo "(no rows written)"; fi
done
