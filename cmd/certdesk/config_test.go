package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimalConfig is the least a configuration needs to load.
const minimalConfig = `
ca:
  dir: /var/lib/certdesk/ca
  issuing_key: "pkcs11:token=certdesk;object=issuing-ca"
  root: {common_name: Test Root}
  issuing: {common_name: Test Issuing}
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "certdesk.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig_SectionsOwnedByTheirPackages_DefaultAndValidate(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, minimalConfig))
	if err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	if cfg.Database.Driver != "sqlite" || cfg.OIDC.RoleClaim != "groups" || cfg.OIDC.OrgClaim != "org" || strings.Join(cfg.OIDC.Scopes, " ") != "openid profile email" ||
		cfg.Session.Idle != 30*time.Minute || cfg.Session.Absolute != 12*time.Hour || len(cfg.OIDC.Roles) != 3 {
		t.Fatalf("defaults not applied: %+v %+v %+v", cfg.Database, cfg.OIDC, cfg.Session)
	}
	tests := []struct {
		name, extra string
		env         map[string]string
		want        string
	}{
		{"unknown database driver", "database: {driver: mysql}\n", nil, "database.driver"},
		{"dsn and dsn_file", "database: {dsn: a.db, dsn_file: /run/secrets/dsn}\n", nil, "set dsn or dsn_file, not both"},
		{"unknown key in database", "database: {password: x}\n", nil, "password"},
		{"unknown role", "oidc: {roles: {root: [x]}}\n", nil, "oidc.roles"},
		{"relative issuer", "oidc: {issuer: /idp}\n", nil, "oidc.issuer"},
		{"unknown key in oidc", "oidc: {client_secret: x}\n", nil, "client_secret"},
		{"scope with a space", "oidc: {scopes: [openid, \"groups org\"]}\n", nil, "oidc.scopes"},
		{"idle beyond absolute", "session: {idle: 2h, absolute: 1h}\n", nil, "session.idle"},
		{"unknown key in session", "session: {key: x}\n", nil, "key"},
		{"negative crl_validity", "revocation: {crl_validity: -1h}\n", nil, "revocation.crl_validity"},
		{"negative sign rate from the environment", "", map[string]string{"CERTDESK_REVOCATION_OCSP_SIGN_RATE": "-1"}, "revocation.ocsp_sign_rate"},
		{"driver from the environment", "", map[string]string{"CERTDESK_DATABASE_DRIVER": "oracle"}, "database.driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := loadConfig(writeConfig(t, minimalConfig+tt.extra))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfig_KeysKeepTheirNames(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, minimalConfig+`
database: {driver: postgres, dsn_file: /run/secrets/dsn}
oidc: {issuer: "https://idp.example", client_id: certdesk, client_secret_file: /run/secrets/oidc, role_claim: roles, org_claim: tenant, roles: {admin: [ops]}, scopes: [profile, email, groups]}
session: {key_file: /run/secrets/session, idle: 10m, absolute: 1h}
revocation: {crl_validity: 12h, ocsp_validity: 6h, ocsp_responder_validity: 240h, disable_ocsp_nonce: true, ocsp_fallback_to_ca_key: true, ocsp_sign_rate: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	d, o, s, r := cfg.Database, cfg.OIDC, cfg.Session, cfg.Revocation
	switch {
	case d.Driver != "postgres" || d.DSNFile != "/run/secrets/dsn":
		t.Errorf("database %+v", d)
	case o.Issuer != "https://idp.example" || o.ClientID != "certdesk" || o.ClientSecretFile != "/run/secrets/oidc" || o.RoleClaim != "roles" || o.OrgClaim != "tenant" || o.Roles["admin"][0] != "ops" ||
		strings.Join(o.Scopes, " ") != "openid profile email groups":
		t.Errorf("oidc %+v", o)
	case s.KeyFile != "/run/secrets/session" || s.Idle != 10*time.Minute || s.Absolute != time.Hour:
		t.Errorf("session %+v", s)
	case r.CRLValidity != 12*time.Hour || r.OCSPValidity != 6*time.Hour || r.ResponderValidity != 240*time.Hour || !r.DisableOCSPNonce || !r.FallbackToCAKey || r.OCSPSignRate != 5:
		t.Errorf("revocation %+v", r)
	}
}

// TestLoadConfig_CAPrevious_StrictAndValidated: ca.url_segment and the
// ca.previous list decode strictly (an unknown key is named) and are
// validated with the field named.
func TestLoadConfig_CAPrevious_StrictAndValidated(t *testing.T) {
	const head = `
ca:
  dir: /var/lib/certdesk/ca-2026
  issuing_key: "pkcs11:token=certdesk;object=issuing-ca-2026"
  root: {common_name: Test Root}
  issuing: {common_name: Test Issuing}
`
	cfg, err := loadConfig(writeConfig(t, head+`  url_segment: ca2026
  previous:
    - {cert: /var/lib/certdesk/ca/issuing.pem, key: "pkcs11:token=certdesk;object=issuing-ca"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.CA.Previous; cfg.CA.URLSegment != "ca2026" || len(p) != 1 || p[0].Cert != "/var/lib/certdesk/ca/issuing.pem" ||
		p[0].Key != "pkcs11:token=certdesk;object=issuing-ca" || p[0].URLSegment != "" {
		t.Fatalf("ca %+v", cfg.CA)
	}
	for _, tt := range []struct{ name, extra, want string }{
		{"unknown key in a previous CA", "  url_segment: r2\n  previous: [{cert: /a.pem, key: k, pin: x}]\n", "pin"},
		{"previous without key", "  url_segment: r2\n  previous: [{cert: /a.pem}]\n", "ca.previous[0].key"},
		{"the same paths as the current CA", "  previous: [{cert: /a.pem, key: k}]\n", "ca.previous[0].url_segment"},
		{"bad segment", "  url_segment: \"a b\"\n", "ca.url_segment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, head+tt.extra))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}
