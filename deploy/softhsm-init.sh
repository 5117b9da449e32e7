#!/bin/sh
# softhsm-init.sh prepares a SoftHSM2 token for certdesk on first start and
# does nothing on later starts (idempotent). It is the compose demo's stand-in
# for an HSM; production uses a real token and never runs this script.
#
# Environment (defaults in brackets):
#   SOFTHSM2_CONF    the SoftHSM2 configuration file to write and use
#                    [/var/lib/certdesk/softhsm/softhsm2.conf]; certdesk must
#                    run with the same value
#   SOFTHSM_TOKENDIR where the token files live [dir of SOFTHSM2_CONF/tokens]
#   TOKEN_LABEL      the token label, token= in the key URIs [certdesk]
#   HSM_PIN_FILE     the user PIN, a Docker secret [/run/secrets/hsm_pin]
#   HSM_SO_PIN_FILE  the security officer PIN; when unset a random one is
#                    used once and forgotten (the token is then re-made, not
#                    reset, if the user PIN is lost)
#
# The PINs are never printed.
set -eu

conf="${SOFTHSM2_CONF:-/var/lib/certdesk/softhsm/softhsm2.conf}"
tokendir="${SOFTHSM_TOKENDIR:-$(dirname "$conf")/tokens}"
label="${TOKEN_LABEL:-certdesk}"
pin_file="${HSM_PIN_FILE:-/run/secrets/hsm_pin}"

log() { echo "softhsm-init: $*" >&2; }

command -v softhsm2-util >/dev/null 2>&1 || { log "softhsm2-util not found (image built with WITH_SOFTHSM=0?)"; exit 1; }
[ -r "$pin_file" ] || { log "PIN file $pin_file is missing or unreadable"; exit 1; }

umask 077
mkdir -p "$tokendir"
if [ ! -f "$conf" ]; then
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$tokendir" >"$conf"
  log "wrote $conf"
fi
export SOFTHSM2_CONF="$conf"

if softhsm2-util --show-slots 2>/dev/null | grep -Eq "Label:[[:space:]]+$label[[:space:]]*\$"; then
  log "token \"$label\" exists; nothing to do"
  exit 0
fi

pin="$(head -n1 "$pin_file" | tr -d '\r\n')"
[ -n "$pin" ] || { log "PIN file $pin_file is empty"; exit 1; }
if [ -n "${HSM_SO_PIN_FILE:-}" ]; then
  so_pin="$(head -n1 "$HSM_SO_PIN_FILE" | tr -d '\r\n')"
else
  so_pin="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
fi
softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null
log "initialised token \"$label\" in $tokendir"
