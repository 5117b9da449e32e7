package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// relayPKI is a private CA and a certificate for 127.0.0.1 that it issued,
// the way an internal mail relay is usually set up.
type relayPKI struct {
	Server *tls.Config
	CAFile string // the CA certificate, PEM
}

func newRelayPKI(t *testing.T) relayPKI {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Relay Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "relay-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return relayPKI{
		Server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		CAFile: file,
	}
}

// TestEmail_RelayWithTLSAndAuth sends the admins' "new request" e-mail
// through a real SMTP server (go-smtp) that speaks STARTTLS or implicit TLS
// with a certificate from a private CA and requires AUTH PLAIN.
func TestEmail_RelayWithTLSAndAuth(t *testing.T) {
	pki := newRelayPKI(t)
	const user, password = "certdesk-relay", "relay-password-Zq81"
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "smtp-password-old")
	if err := os.WriteFile(wrongFile, []byte("an-old-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		relay    smtpOptions
		edit     func(c *SMTPConfig)
		wantSent bool
		wantErr  string // in last_error when nothing is sent
		wantGive bool   // given up after one attempt (a 5xx), not retried
	}{
		{"STARTTLS and AUTH", smtpOptions{TLS: pki.Server, User: user, Password: password},
			func(c *SMTPConfig) { c.StartTLS = true }, true, "", false},
		{"implicit TLS and AUTH", smtpOptions{TLS: pki.Server, Implicit: true, User: user, Password: password},
			func(c *SMTPConfig) { c.ImplicitTLS = true }, true, "", false},
		{"wrong password is refused and not retried", smtpOptions{TLS: pki.Server, User: user, Password: password},
			func(c *SMTPConfig) { c.StartTLS, c.PasswordFile = true, wrongFile }, false, "535", true},
		{"relay certificate not trusted", smtpOptions{TLS: pki.Server, User: user, Password: password},
			func(c *SMTPConfig) { c.StartTLS, c.CAFile = true, "" }, false, "certificate", false},
		{"STARTTLS required but not offered", smtpOptions{},
			func(c *SMTPConfig) { c.StartTLS, c.Username, c.PasswordFile = true, "", "" }, false, "STARTTLS is required", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := modelstest.SQLite(t)
			relay := startSMTPWith(t, tt.relay)
			cfg := testConfig(relay)
			cfg.RetryBackoff, cfg.MaxAttempts = 50*time.Millisecond, 3
			cfg.SMTP.Username, cfg.SMTP.PasswordFile, cfg.SMTP.CAFile = user, pwFile, pki.CAFile
			tt.edit(&cfg.SMTP)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var logs modelstest.LogBuffer
			svc, err := New(cfg, st, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			startDelivery(t, svc)
			newOrg(t, st, nil)
			svc.RequestSubmitted(context.Background(), submit(t, st))

			var n models.Notification
			eventually(t, "the e-mail to be sent or given up", func() bool {
				ns, _ := st.ListNotifications(context.Background(), 0)
				if len(ns) != 1 || (ns[0].SentAt == nil && ns[0].FailedAt == nil) {
					return false
				}
				n = ns[0]
				return true
			})
			msgs := relay.Messages()
			if tt.wantSent {
				if n.SentAt == nil || len(msgs) != 1 {
					t.Fatalf("sent %v, %d messages received; last error %q", n.SentAt, len(msgs), n.LastError)
				}
				if m := msgs[0]; !m.TLS || m.User != user || m.To != "alice@pki.example" || !strings.Contains(m.Subject, "New certificate request") {
					t.Fatalf("received %+v, want it over TLS from %s to alice", m, user)
				}
			} else {
				if n.SentAt != nil || len(msgs) != 0 {
					t.Fatalf("the e-mail was delivered (%d messages); want it refused", len(msgs))
				}
				if !strings.Contains(n.LastError, tt.wantErr) {
					t.Fatalf("last_error %q, want it to mention %q", n.LastError, tt.wantErr)
				}
				if tt.wantGive != (n.Attempts == 1) {
					t.Fatalf("%d attempts; given up after one: want %v", n.Attempts, tt.wantGive)
				}
			}
			settle()
			if out := logs.String(); strings.Contains(out, password) || strings.Contains(out, "an-old-password") {
				t.Fatalf("the SMTP password is in the log:\n%s", out)
			}
		})
	}
}
