package web

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthConfigReadSecrets_FromFilesOrTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "oidc")
	keyFile := filepath.Join(dir, "session")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		secretPath, keyPath string
		env                 map[string]string
		wantSecret, want    string // want: a field the error names, "" = no error
	}{
		{"files", secretFile, keyFile, nil, "file-secret", ""},
		{"the environment", "", "", map[string]string{EnvOIDCClientSecret: "env-secret", EnvSessionKey: strings.Repeat("e", 32)}, "env-secret", ""},
		{"a file wins over the environment", secretFile, keyFile, map[string]string{EnvOIDCClientSecret: "env-secret"}, "file-secret", ""},
		{"no client secret", "", keyFile, nil, "", "oidc.client_secret_file"},
		{"no session key", secretFile, "", nil, "", "session.key_file"},
		{"missing file", filepath.Join(dir, "nope"), keyFile, nil, "", "oidc.client_secret_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvOIDCClientSecret, EnvSessionKey} {
				t.Setenv(k, tt.env[k])
			}
			c := AuthConfig{OIDCConfig: OIDCConfig{ClientSecretFile: tt.secretPath}, SessionConfig: SessionConfig{KeyFile: tt.keyPath}}
			err := c.ReadSecrets()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ReadSecrets: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			case tt.want == "" && (c.ClientSecret != tt.wantSecret || len(c.SessionKey) != 32):
				t.Fatalf("secret %q, key of %d bytes", c.ClientSecret, len(c.SessionKey))
			case err != nil && strings.Contains(err.Error(), "secret\n"):
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestSectionValidate_AcceptsAnEmptySection_NamesTheField(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"empty oidc section", OIDCConfig{}.Validate(), ""},
		{"empty session section", SessionConfig{}.Validate(), ""},
		{"issuer not a URL", OIDCConfig{Issuer: "idp"}.Validate(), "oidc.issuer"},
		{"unknown role", OIDCConfig{Roles: map[string][]string{"root": {"x"}}}.Validate(), "oidc.roles"},
		{"role without values", OIDCConfig{Roles: map[string][]string{"auditor": {}}}.Validate(), "oidc.roles.auditor"},
		{"idle under a minute", SessionConfig{Idle: 1}.Validate(), "session.idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.want == "") != (tt.err == nil) || (tt.err != nil && !strings.Contains(tt.err.Error(), tt.want)) {
				t.Fatalf("error %v, want one naming %q", tt.err, tt.want)
			}
		})
	}
}
