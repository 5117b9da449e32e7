package acme_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/handlers/acme"
	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/certdesk/certdesk/signer/signertest"
	"github.com/certdesk/certdesk/web"
)

var token *softhsmtest.Token

func TestMain(m *testing.M) { softhsmtest.Main(m, "certdesk", &token) }

var (
	bg      = context.Background()
	partner = models.Actor{Subject: "pat", Role: models.RolePartner, Org: "acme", Source: "test"}
	admin   = models.Actor{Subject: "ada", Role: models.RoleAdmin, Source: "test"}
)

// env is the ACME server over a real store and a SoftHSM2 issuing CA,
// served by the real routes of web.New.
type env struct {
	t        *testing.T
	store    *models.Store
	srv      *httptest.Server
	bindings *acme.Bindings
	dir      map[string]string
}

func newEnv(t *testing.T, s *models.Store) *env {
	t.Helper()
	ca := signertest.HSMCA(t, token, "acme")
	if err := s.CreateOrg(bg, admin, &models.Organization{Slug: "acme", Name: "Acme Corp", DNSSuffixes: models.StringList{"acme.example"}, MaxValidityDays: 90}); err != nil {
		t.Fatal(err)
	}
	sealer, err := acme.NewSealer(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	wf := &issuance.Workflow{Store: s, Issuer: ca.CA.Issuer, Log: slog.New(slog.DiscardHandler)}
	e := &env{t: t, store: s, bindings: &acme.Bindings{Store: s, Keys: sealer}}
	var srv *acme.Server
	e.srv = httptest.NewUnstartedServer(nil)
	base := "http://" + e.srv.Listener.Addr().String()
	srv = &acme.Server{Store: s, Workflow: wf, Keys: sealer, BaseURL: base, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Issuing: ca.CA.Issuer.Certificate()}
	e.srv.Config.Handler = web.New(web.Deps{
		Auth: &web.Auth{}, Requests: &handlers.Requests{}, Certificates: &handlers.Certificates{}, Orgs: &handlers.Orgs{},
		Tokens: &handlers.Tokens{}, Audit: &handlers.Audit{}, CAFiles: &handlers.CAFiles{}, Health: &handlers.Health{},
		Frontend: fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}},
		ACME:     srv,
	})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	res, err := http.Get(base + "/acme/directory")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var dir map[string]any
	if err := json.NewDecoder(res.Body).Decode(&dir); err != nil {
		t.Fatal(err)
	}
	e.dir = map[string]string{}
	for k, v := range dir {
		if s, ok := v.(string); ok {
			e.dir[k] = s
		}
	}
	return e
}

// binding asks for, approves and takes the credentials of a binding.
func (e *env) binding(names ...string) (kid string, key []byte) {
	e.t.Helper()
	b, err := e.bindings.Request(bg, partner, acme.BindingRequest{Org: "acme", Name: "test", DNSNames: names})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.bindings.Approve(bg, admin, b.ID); err != nil {
		e.t.Fatal(err)
	}
	_, cred, err := e.bindings.TakeKey(bg, partner, b.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	key, err = base64.RawURLEncoding.DecodeString(cred.HMACKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return cred.KeyID, key
}

// client is a minimal ACME client: it signs with key, by jwk until it
// has an account URL and by kid after.
type client struct {
	e       *env
	key     crypto.Signer
	alg     jose.SignatureAlgorithm
	account string
}

func newKey(t *testing.T, alg jose.SignatureAlgorithm) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) client(alg jose.SignatureAlgorithm) *client {
	return &client{e: e, key: newKey(e.t, alg), alg: alg}
}

func (e *env) nonce() string {
	e.t.Helper()
	res, err := http.Head(e.dir["newNonce"])
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	n := res.Header.Get("Replay-Nonce")
	if n == "" {
		e.t.Fatal("no Replay-Nonce from newNonce")
	}
	return n
}

// jws signs payload (nil: POST-as-GET) for url with the options given.
type jwsOpts struct {
	nonce  string // "" for a fresh one
	url    string // "" for the target
	useJWK bool
	useKID bool
	alg    jose.SignatureAlgorithm
	key    any // signing key, default the client's
}

func (c *client) sign(target string, payload []byte, o jwsOpts) []byte {
	c.e.t.Helper()
	if o.nonce == "" {
		o.nonce = c.e.nonce()
	}
	if o.url == "" {
		o.url = target
	}
	if o.alg == "" {
		o.alg = c.alg
	}
	key := o.key
	if key == nil {
		key = c.key
	}
	opts := (&jose.SignerOptions{}).WithHeader("nonce", o.nonce).WithHeader("url", o.url)
	sk := jose.SigningKey{Algorithm: o.alg, Key: key}
	if o.useKID || (!o.useJWK && c.account != "") {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: c.account}
	} else {
		opts.EmbedJWK = true
	}
	s, err := jose.NewSigner(sk, opts)
	if err != nil {
		c.e.t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		c.e.t.Fatal(err)
	}
	// go-jose leaves out an empty payload; POST-as-GET sends "" (RFC 8555 §6.3).
	var m map[string]any
	_ = json.Unmarshal([]byte(obj.FullSerialize()), &m)
	if _, ok := m["payload"]; !ok {
		m["payload"] = ""
	}
	out, _ := json.Marshal(m)
	return out
}

// reply is an ACME answer.
type reply struct {
	status   int
	location string
	body     map[string]any
	raw      []byte
}

func (r reply) problem() string { s, _ := r.body["type"].(string); return s }

func (c *client) post(target string, payload any, o jwsOpts) reply {
	c.e.t.Helper()
	var p []byte
	switch v := payload.(type) {
	case nil:
	case []byte:
		p = v
	default:
		p, _ = json.Marshal(v)
	}
	return c.postRaw(target, c.sign(target, p, o), "application/jose+json")
}

func (c *client) postRaw(target string, body []byte, contentType string) reply {
	c.e.t.Helper()
	res, err := http.Post(target, contentType, bytes.NewReader(body))
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, location: res.Header.Get("Location"), raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	if res.Header.Get("Replay-Nonce") == "" {
		c.e.t.Fatalf("POST %s: answer without Replay-Nonce", target)
	}
	return r
}

// eab is an externalAccountBinding for the client's key.
func (c *client) eab(kid string, hmacKey []byte, url string) json.RawMessage {
	c.e.t.Helper()
	if url == "" {
		url = c.e.dir["newAccount"]
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: c.key.Public()})
	if err != nil {
		c.e.t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey},
		(&jose.SignerOptions{}).WithHeader("url", url).WithHeader("kid", kid))
	if err != nil {
		c.e.t.Fatal(err)
	}
	obj, err := s.Sign(jwk)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return json.RawMessage(obj.FullSerialize())
}

// register makes the client's account with a binding's credentials.
func (c *client) register(kid string, key []byte) {
	c.e.t.Helper()
	r := c.post(c.e.dir["newAccount"], map[string]any{"termsOfServiceAgreed": true, "externalAccountBinding": c.eab(kid, key, "")}, jwsOpts{})
	if r.status != http.StatusCreated || r.location == "" {
		c.e.t.Fatalf("newAccount: %d %s", r.status, r.raw)
	}
	c.account = r.location
}

// csr is a base64url DER CSR for names with a fresh P-256 key.
func csr(t *testing.T, names ...string) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{}, DNSNames: names}, k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

func ids(names ...string) map[string]any {
	var out []map[string]string
	for _, n := range names {
		typ := "dns"
		if t, v, ok := strings.Cut(n, ":"); ok {
			typ, n = t, v
		}
		out = append(out, map[string]string{"type": typ, "value": n})
	}
	return map[string]any{"identifiers": out}
}

func acmeRequest(names ...string) acme.BindingRequest {
	return acme.BindingRequest{Org: "acme", Name: "test", DNSNames: names}
}

// testWriter sends the server's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
