package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
)

// The concrete store and the workflow's hook fit the interfaces.
var (
	_ Store             = (*models.Store)(nil)
	_ issuance.Notifier = (*Service)(nil)
)

var (
	admin   = models.Actor{Subject: "alice-admin", Role: models.RoleAdmin, Source: "192.0.2.1"}
	partner = models.Actor{Subject: "carol-partner", Role: models.RolePartner, Org: "acme", Source: "198.51.100.7",
		Email: "carol@acme.example"}
	system = models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
)

// mailMsg is a message the SMTP server accepted.
type mailMsg struct {
	From, To string
	Subject  string
	Text     string
	Header   mail.Header
	TLS      bool   // the message came over TLS
	User     string // the AUTH user, "" without AUTH
}

// smtpServer is a real SMTP server (github.com/emersion/go-smtp) on
// loopback that records what it is sent.
type smtpServer struct {
	Host string
	Port int

	mu   sync.Mutex
	msgs []mailMsg
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	return startSMTPWith(t, smtpOptions{})
}

// smtpOptions make the test relay speak TLS and require AUTH.
type smtpOptions struct {
	// TLS is the relay's certificate: offered with STARTTLS, or from the
	// first byte when Implicit.
	TLS      *tls.Config
	Implicit bool
	// User and Password, when set, are required (AUTH PLAIN, after TLS).
	User, Password string
}

func startSMTPWith(t *testing.T, opt smtpOptions) *smtpServer {
	t.Helper()
	rec := &smtpServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{rec: rec, conn: c, opt: opt}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opt.TLS != nil && opt.Implicit {
		l = tls.NewListener(l, opt.TLS)
	} else {
		srv.TLSConfig = opt.TLS
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := l.Addr().(*net.TCPAddr)
	rec.Host, rec.Port = "127.0.0.1", addr.Port
	return rec
}

type smtpSession struct {
	rec      *smtpServer
	conn     *smtp.Conn
	opt      smtpOptions
	user     string
	from, to string
}

func (s *smtpSession) Reset()        { s.from, s.to = "", "" }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpSession) AuthMechanisms() []string {
	if s.opt.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.opt.User || password != s.opt.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.opt.User != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return err
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	_, isTLS := s.conn.TLSConnectionState()
	s.rec.msgs = append(s.rec.msgs, mailMsg{From: s.from, To: s.to, Subject: subject, Text: string(raw), Header: m.Header,
		TLS: isTLS, User: s.user})
	return nil
}

// Messages returns what was received so far.
func (s *smtpServer) Messages() []mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailMsg(nil), s.msgs...)
}

// To returns the messages received for one address.
func (s *smtpServer) To(addr string) []mailMsg {
	var out []mailMsg
	for _, m := range s.Messages() {
		if m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

// hook is an HTTP webhook receiver on loopback that checks the signature
// (computed here independently of Sign) and records what it accepted.
type hook struct {
	URL    string
	Secret string
	File   string // the secret file
	// Fail answers the first Fail requests with 500.
	Fail int
	// Quiet: a bad signature is expected, not a test failure.
	Quiet bool

	now func() time.Time
	t   *testing.T

	mu       sync.Mutex
	attempts []time.Time
	events   []Event
}

func startHook(t *testing.T, now func() time.Time, fail int) *hook {
	t.Helper()
	h := &hook{Secret: "s3cret-" + strconv.FormatInt(time.Now().UnixNano(), 36), Fail: fail, now: now, t: t}
	h.File = filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(h.File, []byte(h.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/hook"
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-Certdesk-Timestamp")
	m := hmac.New(sha256.New, []byte(h.Secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	sec, err := strconv.ParseInt(ts, 10, 64)
	switch {
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json":
		h.t.Errorf("webhook got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	case !hmac.Equal([]byte(r.Header.Get("X-Certdesk-Signature")), []byte(want)):
		if !h.Quiet {
			h.t.Errorf("webhook signature %q does not verify", r.Header.Get("X-Certdesk-Signature"))
		}
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	case err != nil || h.now().Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute:
		h.t.Errorf("webhook timestamp %q is not fresh", ts)
	}
	h.mu.Lock()
	h.attempts = append(h.attempts, time.Now())
	fail := len(h.attempts) <= h.Fail
	if !fail {
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil {
			h.t.Errorf("webhook body is not an event: %v", err)
		}
		if ev.Type != r.Header.Get("X-Certdesk-Event") {
			h.t.Errorf("event %q arrived with X-Certdesk-Event %q", ev.Type, r.Header.Get("X-Certdesk-Event"))
		}
		h.events = append(h.events, ev)
	}
	h.mu.Unlock()
	if fail {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Events returns the accepted events.
func (h *hook) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// Attempts returns the times of every request received.
func (h *hook) Attempts() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.attempts...)
}

// eventData decodes an event's data into v.
func eventData(t *testing.T, ev Event, v any) {
	t.Helper()
	b, err := json.Marshal(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// testConfig is a configuration sending to the SMTP server and hooks, with
// quick retries.
func testConfig(mail *smtpServer, hooks ...*hook) Config {
	cfg := Config{
		PortalURL:    "https://certdesk.example",
		RetryBackoff: 200 * time.Millisecond, MaxBackoff: time.Second, MaxAttempts: 5,
		PollInterval: 50 * time.Millisecond, Timeout: 5 * time.Second,
		ExpiryScanInterval: time.Hour,
	}
	if mail != nil {
		cfg.SMTP = SMTPConfig{Host: mail.Host, Port: mail.Port, From: "certdesk <certdesk@pki.example>"}
		cfg.AdminEmails = []string{"Alice Admin <alice@pki.example>"}
	}
	for _, h := range hooks {
		cfg.Webhooks = append(cfg.Webhooks, WebhookConfig{URL: h.URL, SecretFile: h.File})
	}
	return cfg
}

// newService builds a service on store with the clock now.
func newService(t *testing.T, cfg Config, store Store, now func() time.Time) *Service {
	t.Helper()
	s, err := New(cfg, store, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.Now = now
	return s
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startDelivery runs the delivery worker until the test ends.
func startDelivery(t *testing.T, s *Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.deliverLoop(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually waits up to 10 s for cond, failing with what.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits briefly and checks that nothing more arrives.
func settle() { time.Sleep(300 * time.Millisecond) }

// newOrg creates organisation acme with two contacts.
func newOrg(t *testing.T, s *models.Store, days []int) *models.Organization {
	t.Helper()
	o := &models.Organization{Slug: "acme", Name: "Acme Ltd", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"},
		MaxValidityDays: 90, ContactEmails: models.StringList{"pki@acme.example", "Ops <ops@acme.example>"}, ExpiryNoticeDays: days}
	if err := s.CreateOrg(context.Background(), admin, o); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	return o
}

// submit files a request for acme by the partner (with her e-mail).
func submit(t *testing.T, s *models.Store) *models.Request {
	t.Helper()
	r := &models.Request{Org: "acme", CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...", KeyType: "ECDSA P-256",
		Identities: models.StringList{"spiffe://example.org/partners/acme/billing"}, ValidityDays: 90,
		RequesterEmail: partner.Email}
	if err := s.SubmitRequest(context.Background(), partner, r); err != nil {
		t.Fatalf("SubmitRequest: %v", err)
	}
	return r
}

// issueCert issues a certificate for acme valid until notAfter, straight
// through the store.
func issueCert(t *testing.T, s *models.Store, notAfter time.Time) *models.Certificate {
	t.Helper()
	ctx := context.Background()
	r := submit(t, s)
	if _, err := s.ApproveRequest(ctx, admin, r.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	var serial [16]byte
	copy(serial[:], r.ID)
	c := &models.Certificate{Serial: hex.EncodeToString(serial[:]), RequestID: r.ID, NotBefore: notAfter.Add(-90 * day),
		NotAfter: notAfter, PrecertDER: []byte("tbs")}
	if err := s.ReserveCertificate(ctx, system, c); err != nil {
		t.Fatalf("ReserveCertificate: %v", err)
	}
	got, err := s.CompleteCertificate(ctx, system, c.ID, bytes.Repeat([]byte{0x30}, 8))
	if err != nil {
		t.Fatalf("CompleteCertificate: %v", err)
	}
	return got
}
