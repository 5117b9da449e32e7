package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/certdesk/certdesk/web"
	"github.com/certdesk/certdesk/web/devidp"
)

var token *softhsmtest.Token

// TestMain makes the SoftHSM2 token of this test binary before anything
// opens the PKCS#11 module (SOFTHSM2_CONF is read once per process).
func TestMain(m *testing.M) { softhsmtest.Main(m, "certdesk", &token) }

// The people of the tests: two partners of acme, one of globex, two admins
// and an auditor.
var principals = map[string]models.Actor{
	"partner":  {Subject: "pat", Role: models.RolePartner, Org: "acme"},
	"partner2": {Subject: "pam", Role: models.RolePartner, Org: "acme"},
	"other":    {Subject: "gil", Role: models.RolePartner, Org: "globex"},
	"admin":    {Subject: "ada", Role: models.RoleAdmin},
	"admin2":   {Subject: "abe", Role: models.RoleAdmin},
	"auditor":  {Subject: "aud", Role: models.RoleAuditor},
}

// testPortal is a running portal with its identity provider and a bearer
// token for each principal.
type testPortal struct {
	URL     string
	CfgPath string
	Cfg     *Config
	P       *portal
	Tokens  map[string]string
	t       *testing.T
}

const testPKIURL = "http://pki.certdesk.test"

// writeTestConfig writes a configuration for a portal at url using driver's
// database, the shared CA in the test token, and the provider idp.
func writeTestConfig(t *testing.T, dir, listen, url, idpURL, driver, dsn string) string {
	t.Helper()
	for name, v := range map[string]string{"client-secret": "s3cret-for-tests\n", "session.key": strings.Repeat("k", 40) + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The database section comes last, so that startPortalWith's extra
	// lines, when indented, add to it.
	cfg := fmt.Sprintf(`listen: %s
public_url: %s
pki_url: %s
ca:
  dir: %s
  root_key: %q
  issuing_key: %q
oidc:
  issuer: %s
  client_id: certdesk
  client_secret_file: %s
  roles:
    partner: [certdesk-partners]
    admin: [certdesk-admins]
    auditor: [certdesk-auditors]
session:
  key_file: %s
log:
  level: error
database:
  driver: %s
  dsn: %q
`, listen, url, testPKIURL, filepath.Join(token.Dir, "ca"), token.URI("root-ca"), token.URI("issuing-ca"),
		idpURL, filepath.Join(dir, "client-secret"), filepath.Join(dir, "session.key"), driver, dsn)
	p := filepath.Join(dir, "certdesk.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// appendConfig appends lines to the configuration file at path (lines
// indented by two spaces add to writeTestConfig's database section, which
// comes last).
func appendConfig(t *testing.T, path string, lines ...string) {
	t.Helper()
	if len(lines) == 0 {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

// testIdP starts the in-process OpenID provider for a portal at url.
func testIdP(t *testing.T, url string) *devidp.Provider {
	t.Helper()
	return testIdPAt(t, url, "")
}

// testIdPAt is testIdP listening on addr ("" for a free port).
func testIdPAt(t *testing.T, url, addr string) *devidp.Provider {
	t.Helper()
	idp, err := devidp.Start(context.Background(), devidp.Config{
		Addr: addr,
		Users: []devidp.User{
			{Subject: "pat", Username: "pat", Name: "Pat", Email: "pat@acme.example", Org: "acme", Groups: []string{"certdesk-partners"}},
			{Subject: "ada", Username: "ada", Name: "Ada", Email: "ada@certdesk.example", Groups: []string{"certdesk-admins"}},
			{Subject: "aud", Username: "aud", Name: "Aud", Email: "aud@certdesk.example", Groups: []string{"certdesk-auditors"}},
			{Subject: "nobody", Username: "nobody", Name: "No Body", Email: "nobody@example.com"},
			// Partners without an organisation claim, for onboarding.
			{Subject: "newbie-7f3a", Username: "newbie", Name: "Nia Newbie", Email: "nia@acme.example", Groups: []string{"certdesk-partners"}},
			{Subject: "unverified-91c2", Username: "unverified", Name: "Uma Unverified", Email: "uma@acme.example", EmailUnverified: true, Groups: []string{"certdesk-partners"}},
			{Subject: "late-22d8", Username: "late", Name: "Lou Late", Email: "lou@acme.example", Groups: []string{"certdesk-partners"}},
		},
		Clients: []devidp.Client{{ID: "certdesk", Secret: "s3cret-for-tests", RedirectURIs: []string{url + "/auth/callback"}, PostLogoutRedirectURIs: []string{url + "/"}}},
	})
	if err != nil {
		t.Fatalf("starting the OIDC provider: %v", err)
	}
	t.Cleanup(func() { idp.Close() })
	return idp
}

func dsnFor(t *testing.T, driver, dir string) string {
	if driver == "postgres" {
		return modelstest.PostgresDSN(t)
	}
	return filepath.Join(dir, "certdesk.db")
}

// startPortal runs a portal on driver's database with the organisations acme
// and globex and a token per principal.
func startPortal(t *testing.T, driver string) *testPortal {
	t.Helper()
	dir := t.TempDir()
	return startPortalAt(t, driver, dir, dsnFor(t, driver, dir), true)
}

func startPortalAt(t *testing.T, driver, dir, dsn string, seed bool) *testPortal {
	t.Helper()
	return startPortalWith(t, driver, dir, dsn, seed, io.Discard)
}

// startPortalWith is startPortalAt with the portal's JSON log written to
// logw, and extra configuration appended to the file (lines indented by two
// spaces add to the database section, which comes last).
func startPortalWith(t *testing.T, driver, dir, dsn string, seed bool, logw io.Writer, extra ...string) *testPortal {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	idp := testIdP(t, url)
	cfgPath := writeTestConfig(t, dir, ln.Addr().String(), url, idp.Issuer, driver, dsn)
	appendConfig(t, cfgPath, extra...)
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatalf("ca init: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if logw != io.Discard {
		cfg.Log.Level = "info"
	}
	p, err := buildPortal(ctx, cfg, portalOptions{}, newLogger(cfg, logw))
	if err != nil {
		t.Fatalf("building the portal: %v", err)
	}
	srv := &http.Server{Handler: p.Echo}
	go srv.Serve(ln)
	go p.Revocation.Run(ctx)
	go p.Notifier.Run(ctx)
	t.Cleanup(func() { cancel(); srv.Close(); p.Store.Close() })
	tp := &testPortal{URL: url, CfgPath: cfgPath, Cfg: cfg, P: p, Tokens: map[string]string{}, t: t}
	if !seed {
		return tp
	}
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	for _, o := range []*models.Organization{
		{Slug: "acme", Name: "Acme Corp", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"}, DNSSuffixes: models.StringList{"acme.example"}, EmailDomains: models.StringList{"acme.example"}, MaxValidityDays: 90},
		{Slug: "globex", Name: "Globex", URIPrefixes: models.StringList{"spiffe://example.org/partners/globex/"}, DNSSuffixes: models.StringList{"globex.example"}, MaxValidityDays: 30},
	} {
		if err := p.Store.CreateOrg(ctx, sys, o); err != nil {
			t.Fatal(err)
		}
	}
	for name, a := range principals {
		tok, hash := web.NewAPIToken()
		if err := p.Store.CreateToken(ctx, sys, &models.APIToken{Name: name, Subject: a.Subject, Role: a.Role, Org: a.Org, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		tp.Tokens[name] = tok
	}
	return tp
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("answer is not a JSON object (%d): %s", r.Status, r.Body)
	}
	return m
}

// do sends a request as principal who ("" for nobody); body is JSON unless
// it is []byte or string.
func (tp *testPortal) do(who, method, path string, body any) response {
	tp.t.Helper()
	return apiCall(tp.t, http.DefaultClient, tp.URL, tp.Tokens[who], method, path, body)
}

// must sends a request and fails the test unless it gets want.
func (tp *testPortal) must(want int, who, method, path string, body any) map[string]any {
	tp.t.Helper()
	return mustStatus(tp.t, tp.do(who, method, path, body), want, who, method, path)
}

// apiCall sends one request to base+path with client, a bearer token
// (none if empty) and body (JSON unless []byte or string), and reads the
// whole answer; a transport error fails the test.
func apiCall(t *testing.T, client *http.Client, base, token, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		case string:
			rd = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// mustStatus fails the test unless r has status want, and returns its JSON
// object body (nil when it has none).
func mustStatus(t *testing.T, r response, want int, who, method, path string) map[string]any {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s %s as %q: status %d, want %d: %s", method, path, who, r.Status, want, r.Body)
	}
	if len(r.Body) == 0 || r.Body[0] != '{' {
		return nil
	}
	return r.JSON(t)
}

// newCSR makes a P-256 key and a CSR for names.
func newCSR(t *testing.T, names ...string) (crypto.Signer, string) {
	t.Helper()
	key, csr := e2eCSR(t, "csr", names...)
	return key, string(csr)
}

// issue submits a request as partner and has admin approve it; it returns
// the request and certificate ids.
func (tp *testPortal) issue(names ...string) (reqID, certID string) {
	tp.t.Helper()
	_, csr := newCSR(tp.t, names...)
	r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "identities": names, "validity_days": 30})
	a := tp.must(200, "admin", "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]string{"reason": "ok"})
	if a["state"] != "issued" {
		tp.t.Fatalf("approved request is %v", a["state"])
	}
	return a["id"].(string), a["certificate_id"].(string)
}

func counts(t *testing.T, s *models.Store) (requests, audit int64) {
	t.Helper()
	if err := s.DB().Model(&models.Request{}).Count(&requests).Error; err != nil {
		t.Fatal(err)
	}
	// Events of people, not of the portal's own background work (CRLs,
	// OCSP responders), which may run at any time.
	if err := s.DB().Model(&models.AuditEvent{}).Where("actor NOT LIKE ?", "system:%").Count(&audit).Error; err != nil {
		t.Fatal(err)
	}
	return
}

func jsonEncoder(w io.Writer) *json.Encoder { return json.NewEncoder(w) }

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
