#!/usr/bin/env bash
# testenv.sh installs and starts what `make test` needs: SoftHSM2, OpenSSL,
# PostgreSQL (on loopback, in a temp dir, unless DATABASE_URL is set), nginx,
# Chromium, curl, jq and a Java runtime (the docs test), certbot (the ACME
# tests), the zlint CLI and kustomize (for deploy/). It fails, never
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
# The docs test runs the guides' shell blocks: curl, jq, and Java's keytool.
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
command -v keytool >/dev/null || need+=(default-jre-headless)
# The ACME tests drive Debian's certbot as a real client.
command -v certbot >/dev/null || need+=(certbot)
if [ -z "${DATABASE_URL:-}" ] && [ -z "$(pg_bin)" ]; then need+=(postgresql); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "missing packages (${need[*]}); run as root or install them: apt-get install ${need[*]}"
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian starts nginx and a PostgreSQL cluster on install; the tests run
  # their own, so keep the packages' services from starting at all
  # (policy-rc.d, exit 101: "action forbidden") rather than stopping
  # whatever runs afterwards.
  rcd=/usr/sbin/policy-rc.d
  made_rcd=""
  if [ ! -e "$rcd" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$rcd" && chmod 755 "$rcd" && made_rcd=1
  fi
  apt-get update -qq >&2 || { [ -n "$made_rcd" ] && rm -f "$rcd"; die "apt-get update failed"; }
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >&2 \
    || { [ -n "$made_rcd" ] && rm -f "$rcd"; die "apt-get install ${need[*]} failed"; }
  if [ -n "$made_rcd" ]; then rm -f "$rcd"; fi
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
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# in_use reports whether something accepts connections on 127.0.0.1:$1.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A PostgreSQL this script started before (its data dir is ours) is reused
# on the port it runs on; nothing else on the machine is touched.
PORT=""
if [ -f "$D/data/postmaster.pid" ]; then
  p="$(sed -n 4p "$D/data/postmaster.pid" 2>/dev/null)"
  if [ -n "$p" ] && as_pg "$PGBIN/pg_isready" -h 127.0.0.1 -p "$p" -q 2>/dev/null; then
    PORT="$p"
    log "reusing the test PostgreSQL on 127.0.0.1:$PORT"
  fi
fi
if [ -z "$PORT" ]; then
  if [ ! -f "$D/data/PG_VERSION" ]; then
    log "initdb in $D"
    mkdir -p "$D"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -m 700 "$D/data" "$D/sock"; chown postgres "$D"; else mkdir -p "$D/data" "$D/sock"; fi
    as_pg "$PGBIN/initdb" -D "$D/data" --auth=trust -U postgres >"$D/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$D/initdb.log")"
  fi
  # A free port: CERTDESK_PG_PORT if set, else a random one nobody listens
  # on (tried a few times, in case another process takes it first).
  for attempt in 1 2 3 4 5; do
    PORT="${CERTDESK_PG_PORT:-$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))}"
    if in_use "$PORT"; then
      [ -n "${CERTDESK_PG_PORT:-}" ] && die "port $PORT (CERTDESK_PG_PORT) is in use"
      continue
    fi
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    if as_pg "$PGBIN/pg_ctl" -D "$D/data" -l "$D/server.log" \
      -o "-p $PORT -k $D/sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" -w start >&2; then
      break
    fi
    [ -n "${CERTDESK_PG_PORT:-}" ] || [ "$attempt" = 5 ] && die "PostgreSQL did not start: $(tail -5 "$D/server.log")"
  done
fi
echo "export DATABASE_URL='postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable'"
