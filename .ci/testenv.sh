#!/usr/bin/env bash
# testenv.sh installs and starts what `make test` needs: SoftHSM2, OpenSSL,
# PostgreSQL (on loopback, in a temp dir, unless DATABASE_URL is set), nginx,
# Chromium, the zlint CLI and kustomize (for deploy/). It fails, never
# skips, when a part cannot be had.
# It prints shell assignments (DATABASE_URL, PATH additions) on stdout for
# the caller to eval; progress goes to stderr.
set -euo pipefail

log() { echo "testenv: $*" >&2; }
die() { echo "testenv: FAILED: $*" >&2; exit 1; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

need=()
command -v softhsm2-util >/dev/null || need+=(softhsm2)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || need+=(nginx-light)
command -v chromium >/dev/null || need+=(chromium)
if [ -z "${DATABASE_URL:-}" ] && [ -z "$(pg_bin)" ]; then need+=(postgresql); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "missing packages (${need[*]}); run as root or install them: apt-get install ${need[*]}"
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >&2 \
    || die "apt-get install ${need[*]} failed"
  # Debian starts nginx and a postgres cluster on install; the tests run their own.
  (command -v systemctl >/dev/null && systemctl stop nginx postgresql) >/dev/null 2>&1 || true
  pkill -x nginx >/dev/null 2>&1 || true
fi

GOBIN_DIR="$(go env GOPATH)/bin"
if [ ! -x "$GOBIN_DIR/zlint" ]; then
  log "installing zlint v3.7.3"
  go install github.com/zmap/zlint/v3/cmd/zlint@v3.7.3 >&2 || die "go install zlint failed"
fi
if [ ! -x "$GOBIN_DIR/kustomize" ]; then
  log "installing kustomize v5.7.1"
  go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1 >&2 || die "go install kustomize failed"
fi
echo "export PATH=\"$GOBIN_DIR:\$PATH\""

if [ -n "${DATABASE_URL:-}" ]; then
  log "using DATABASE_URL from the environment"
  echo "export DATABASE_URL='$DATABASE_URL'"
  exit 0
fi

PGBIN="$(pg_bin)"
[ -n "$PGBIN" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
D="${CERTDESK_TESTENV:-/tmp/certdesk-testenv}/pg"
PORT="${CERTDESK_PG_PORT:-55432}"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! as_pg "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  if [ ! -f "$D/data/PG_VERSION" ]; then
    log "initdb in $D"
    mkdir -p "$D"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -m 700 "$D/data" "$D/sock"; chown postgres "$D"; else mkdir -p "$D/data" "$D/sock"; fi
    as_pg "$PGBIN/initdb" -D "$D/data" --auth=trust -U postgres >"$D/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$D/initdb.log")"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  as_pg "$PGBIN/pg_ctl" -D "$D/data" -l "$D/server.log" \
    -o "-p $PORT -k $D/sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" -w start >&2 \
    || die "PostgreSQL did not start: $(tail -5 "$D/server.log")"
fi
echo "export DATABASE_URL='postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable'"
