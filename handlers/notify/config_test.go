package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate_NamesTheField(t *testing.T) {
	ok := func() Config {
		return Config{SMTP: SMTPConfig{Host: "mail.example.com", Port: 587, From: "pki@example.com", StartTLS: true},
			AdminEmails: []string{"a@example.com"},
			Webhooks:    []WebhookConfig{{URL: "https://hooks.example.com/x", SecretFile: "/run/secrets/hook"}}}
	}
	tests := []struct {
		name  string
		edit  func(c *Config)
		field string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"zero value", func(c *Config) { *c = Config{} }, ""},
		{"bad from", func(c *Config) { c.SMTP.From = "not an address" }, "smtp.from"},
		{"port out of range", func(c *Config) { c.SMTP.Port = 70000 }, "smtp.port"},
		{"username without password_file", func(c *Config) { c.SMTP.Username = "u" }, "smtp.password_file"},
		{"password over clear text", func(c *Config) {
			c.SMTP.Username, c.SMTP.PasswordFile, c.SMTP.StartTLS = "u", "/p", false
		}, "smtp.starttls"},
		{"password over implicit TLS", func(c *Config) {
			c.SMTP.Username, c.SMTP.PasswordFile, c.SMTP.StartTLS, c.SMTP.ImplicitTLS = "u", "/p", false, true
		}, ""},
		{"starttls and implicit_tls", func(c *Config) { c.SMTP.ImplicitTLS = true }, "smtp.implicit_tls"},
		{"ca_file without TLS", func(c *Config) { c.SMTP.StartTLS, c.SMTP.CAFile = false, "/etc/ssl/relay-ca.pem" }, "smtp.ca_file"},
		{"smtp keys without host", func(c *Config) { c.SMTP.Host = ""; c.AdminEmails = nil }, "smtp.host"},
		{"admin_emails without smtp", func(c *Config) { c.SMTP = SMTPConfig{} }, "admin_emails"},
		{"bad admin e-mail", func(c *Config) { c.AdminEmails = []string{"x"} }, "admin_emails[0]"},
		{"http webhook off loopback", func(c *Config) { c.Webhooks[0].URL = "http://hooks.example.com/x" }, "webhooks[0].url"},
		{"relative webhook", func(c *Config) { c.Webhooks[0].URL = "/x" }, "webhooks[0].url"},
		{"webhook twice", func(c *Config) { c.Webhooks = append(c.Webhooks, c.Webhooks[0]) }, "webhooks[1].url"},
		{"webhook without secret", func(c *Config) { c.Webhooks[0].SecretFile = "" }, "webhooks[0].secret_file"},
		{"unknown event", func(c *Config) { c.Webhooks[0].Events = []string{"request.eaten"} }, "webhooks[0].events[0]"},
		{"zero threshold", func(c *Config) { c.DefaultExpiryDays = []int{30, 0} }, "default_expiry_days"},
		{"repeated threshold", func(c *Config) { c.DefaultExpiryDays = []int{7, 7} }, "default_expiry_days"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"bad portal_url", func(c *Config) { c.PortalURL = "certdesk" }, "portal_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.edit(&c)
			err := c.WithDefaults().Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.field != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "notifications."+tt.field+":")):
				t.Fatalf("error = %v, want one naming notifications.%s", err, tt.field)
			}
		})
	}
}

func TestNew_SecretFiles_CheckedWithoutRevealingThem(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"missing file", filepath.Join(dir, "absent"), "webhooks[0].secret_file"},
		{"short secret", short, "at least 16 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Webhooks: []WebhookConfig{{URL: "https://hooks.example.com/x", SecretFile: tt.file}}}
			_, err := New(cfg, failingStore{}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "tiny-secret") {
				t.Fatalf("error = %v, want one about %s that does not show the secret", err, tt.want)
			}
		})
	}
}

func TestConfigWithDefaults_SMTPPortFollowsTheTLSMode(t *testing.T) {
	for _, tt := range []struct {
		smtp SMTPConfig
		want int
	}{
		{SMTPConfig{Host: "mail.example.com", StartTLS: true}, 587},
		{SMTPConfig{Host: "mail.example.com", ImplicitTLS: true}, 465},
		{SMTPConfig{Host: "mail.example.com", ImplicitTLS: true, Port: 2465}, 2465},
	} {
		if got := (Config{SMTP: tt.smtp}).WithDefaults().SMTP.Port; got != tt.want {
			t.Errorf("%+v: port %d, want %d", tt.smtp, got, tt.want)
		}
	}
}

func TestNew_SMTPCAFile_MustHoldCertificates(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "relay-ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"missing file", filepath.Join(dir, "absent.pem"), "smtp.ca_file"},
		{"no PEM certificate", notPEM, "holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{SMTP: SMTPConfig{Host: "mail.example.com", From: "pki@example.com", StartTLS: true, CAFile: tt.file}}
			_, err := New(cfg.WithDefaults(), failingStore{}, nil)
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want a configuration error about %s", err, tt.want)
			}
		})
	}
}

func TestVerify_AcceptsOnlyTheSignedFreshBody(t *testing.T) {
	secret := []byte("0123456789abcdef0123")
	now := time.Unix(1_780_000_000, 0)
	ts := "1780000000"
	body := []byte(`{"id":"e1","type":"request.submitted"}`)
	sig := Sign(secret, ts, body)
	tests := []struct {
		name             string
		secret           []byte
		ts, sig          string
		body             []byte
		now              time.Time
		wantErrSubstring string
	}{
		{"as signed", secret, ts, sig, body, now, ""},
		{"other secret", []byte("another-secret-16b"), ts, sig, body, now, "does not match"},
		{"body changed", secret, ts, sig, []byte(`{"id":"e2","type":"request.submitted"}`), now, "does not match"},
		{"timestamp changed", secret, "1780000001", sig, body, now, "does not match"},
		{"replayed an hour later", secret, ts, sig, body, now.Add(time.Hour), "too far"},
		{"no timestamp", secret, "", sig, body, now, "not a Unix time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, 5*time.Minute)
			if tt.wantErrSubstring == "" && err != nil || tt.wantErrSubstring != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrSubstring)) {
				t.Fatalf("Verify = %v, want %q", err, tt.wantErrSubstring)
			}
		})
	}
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q is not sha256=<64 hex>", sig)
	}
}

func TestBackoff_DoublesUpToTheMaximum(t *testing.T) {
	s := &Service{cfg: Config{RetryBackoff: time.Second, MaxBackoff: 10 * time.Second}}
	for _, tt := range []struct {
		attempts int
		base     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {30, 10 * time.Second}} {
		got := s.backoff(tt.attempts)
		if got < tt.base || got >= tt.base+tt.base/10+1 {
			t.Errorf("backoff after %d failures = %v, want %v plus at most 10%%", tt.attempts, got, tt.base)
		}
	}
}
