#!/bin/sh
# certdesk-pki-refresh.sh fetches certdesk's CA bundle and CRL bundle for a
# gateway, checks them with openssl, replaces the files atomically and runs
# a reload command when something changed. Run it from cron or a systemd
# timer well inside the CRL's nextUpdate, e.g. every 5 minutes.
#
#   PORTAL=https://certs.example.com PKI=http://pki.example.com \
#   DEST=/etc/nginx/certdesk RELOAD="nginx -s reload" certdesk-pki-refresh.sh
set -eu
: "${PORTAL:?PORTAL (the portal URL) is required}"
PKI="${PKI:-$PORTAL}"
DEST="${DEST:?DEST (the folder the gateway reads) is required}"
RELOAD="${RELOAD:-}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsS --max-time 20 -o "$tmp/ca-bundle.pem" "$PORTAL/ca/bundle.pem"
curl -fsS --max-time 20 -o "$tmp/crl-bundle.pem" "$PKI/crl/bundle.pem"

# Both CRLs must be there and be signed by a CA of the bundle.
n="$(grep -c 'BEGIN X509 CRL' "$tmp/crl-bundle.pem" || true)"
[ "$n" -ge 2 ] || { echo "crl-bundle.pem holds $n CRLs, expected the issuing CA's and the root's" >&2; exit 1; }
openssl crl -in "$tmp/crl-bundle.pem" -CAfile "$tmp/ca-bundle.pem" -noout 2>/dev/null \
  || { echo "crl-bundle.pem does not verify against ca-bundle.pem" >&2; exit 1; }

changed=0
for f in ca-bundle.pem crl-bundle.pem; do
  if ! cmp -s "$tmp/$f" "$DEST/$f" 2>/dev/null; then
    install -m 0644 "$tmp/$f" "$DEST/.$f.new" && mv -f "$DEST/.$f.new" "$DEST/$f"
    changed=1
  fi
done
if [ "$changed" = 1 ] && [ -n "$RELOAD" ]; then sh -c "$RELOAD"; fi
