package acme_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestACME_EveryAccountAlgorithm_OrdersAndFinalizesInsideTheBinding(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		kid, key := e.binding("*.svc.acme.example")
		for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA} {
			t.Run(string(alg), func(t *testing.T) {
				c := e.client(alg)
				c.register(kid, key)
				name := strings.ToLower(string(alg)) + ".svc.acme.example"
				o := c.post(e.dir["newOrder"], ids(name), jwsOpts{})
				if o.status != http.StatusCreated || o.body["status"] != "ready" {
					t.Fatalf("newOrder: %d %s", o.status, o.raw)
				}
				authz := o.body["authorizations"].([]any)[0].(string)
				if a := c.post(authz, nil, jwsOpts{}); a.body["status"] != "valid" {
					t.Fatalf("authorization: %d %s", a.status, a.raw)
				}
				f := c.post(o.body["finalize"].(string), map[string]string{"csr": csr(t, name)}, jwsOpts{})
				if f.status != http.StatusOK || f.body["status"] != "valid" || f.body["certificate"] == nil {
					t.Fatalf("finalize: %d %s", f.status, f.raw)
				}
				cert := c.post(f.body["certificate"].(string), nil, jwsOpts{})
				if cert.status != http.StatusOK || strings.Count(string(cert.raw), "BEGIN CERTIFICATE") != 2 {
					t.Fatalf("certificate: %d %s", cert.status, cert.raw)
				}
				if again := c.post(o.body["finalize"].(string), map[string]string{"csr": csr(t, name)}, jwsOpts{}); again.problem() != "urn:ietf:params:acme:error:orderNotReady" {
					t.Fatalf("second finalize: %d %s", again.status, again.raw)
				}
			})
		}
	})
}

func TestACME_RequestsBreakingTheJWSRules_AreRefusedWithTheirError(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		kid, key := e.binding("*.svc.acme.example")
		c := e.client(jose.ES256)
		c.register(kid, key)
		used := e.nonce()
		if r := c.post(e.dir["newOrder"], ids("a.svc.acme.example"), jwsOpts{nonce: used}); r.status != http.StatusCreated {
			t.Fatalf("order with a fresh nonce: %d %s", r.status, r.raw)
		}
		hs := e.client(jose.ES256)
		for _, tc := range []struct {
			name, target string
			payload      any
			opts         jwsOpts
			who          *client
			want         string
		}{
			{"a used nonce", e.dir["newOrder"], ids("b.svc.acme.example"), jwsOpts{nonce: used}, c, "badNonce"},
			{"a made-up nonce", e.dir["newOrder"], ids("b.svc.acme.example"), jwsOpts{nonce: "bm90LWEtbm9uY2U"}, c, "badNonce"},
			{"a url of another resource", e.dir["newOrder"], ids("b.svc.acme.example"), jwsOpts{url: e.dir["newAccount"]}, c, "unauthorized"},
			{"a jwk where a kid is due", e.dir["newOrder"], ids("b.svc.acme.example"), jwsOpts{useJWK: true}, c, "malformed"},
			{"a kid where a jwk is due", e.dir["newAccount"], map[string]any{}, jwsOpts{useKID: true}, c, "malformed"},
			{"a MAC as account signature", e.dir["newAccount"], map[string]any{}, jwsOpts{alg: jose.HS256, key: []byte("0123456789abcdef0123456789abcdef")}, hs, "badSignatureAlgorithm"},
			{"an ip identifier", e.dir["newOrder"], ids("ip:192.0.2.1"), jwsOpts{}, c, "unsupportedIdentifier"},
			{"a name outside the binding", e.dir["newOrder"], ids("www.acme.example"), jwsOpts{}, c, "rejectedIdentifier"},
			{"a wildcard", e.dir["newOrder"], ids("*.svc.acme.example"), jwsOpts{}, c, "rejectedIdentifier"},
			{"a new account without binding", e.dir["newAccount"], map[string]any{"termsOfServiceAgreed": true}, jwsOpts{}, e.client(jose.ES256), "externalAccountRequired"},
			{"onlyReturnExisting for a new key", e.dir["newAccount"], map[string]any{"onlyReturnExisting": true}, jwsOpts{}, e.client(jose.ES256), "accountDoesNotExist"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.who.post(tc.target, tc.payload, tc.opts)
				if r.problem() != "urn:ietf:params:acme:error:"+tc.want || r.status < 400 {
					t.Fatalf("answer %d %s, want %s", r.status, r.raw, tc.want)
				}
			})
		}
		t.Run("an unprotected header", func(t *testing.T) {
			var m map[string]any
			_ = json.Unmarshal(c.sign(e.dir["newOrder"], []byte(`{"identifiers":[{"type":"dns","value":"c.svc.acme.example"}]}`), jwsOpts{}), &m)
			m["header"] = map[string]any{"kid": c.account}
			body, _ := json.Marshal(m)
			if r := c.postRaw(e.dir["newOrder"], body, "application/jose+json"); r.problem() != "urn:ietf:params:acme:error:malformed" {
				t.Fatalf("answer %d %s", r.status, r.raw)
			}
		})
		t.Run("a body that is not application/jose+json", func(t *testing.T) {
			if r := c.postRaw(e.dir["newOrder"], c.sign(e.dir["newOrder"], nil, jwsOpts{}), "application/json"); r.status != http.StatusUnsupportedMediaType {
				t.Fatalf("answer %d %s", r.status, r.raw)
			}
		})
		t.Run("a CSR for other names than the order's", func(t *testing.T) {
			o := c.post(e.dir["newOrder"], ids("d.svc.acme.example"), jwsOpts{})
			f := c.post(o.body["finalize"].(string), map[string]string{"csr": csr(t, "e.svc.acme.example")}, jwsOpts{})
			if f.problem() != "urn:ietf:params:acme:error:badCSR" {
				t.Fatalf("answer %d %s", f.status, f.raw)
			}
		})
	})
}

func TestACME_ExternalAccountBinding_RefusesWhatIsNotAValidMACOfAnApprovedBinding(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		kid, key := e.binding("*.svc.acme.example")
		pending, err := e.bindings.Request(bg, partner, acmeRequest("x.acme.example"))
		if err != nil {
			t.Fatal(err)
		}
		revokedKID, revokedKey := e.binding("y.acme.example")
		if _, err := e.bindings.Revoke(bg, partner, revokedKID); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			kid  string
			key  []byte
			url  string
		}{
			{"a wrong key", kid, []byte("wrong-key-wrong-key-wrong-key-32"), ""},
			{"a binding not approved", pending.ID, key, ""},
			{"a revoked binding", revokedKID, revokedKey, ""},
			{"an unknown kid", "no-such-binding", key, ""},
			{"a url other than newAccount", kid, key, e.dir["newOrder"]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := e.client(jose.ES256)
				r := c.post(e.dir["newAccount"], map[string]any{"externalAccountBinding": c.eab(tc.kid, tc.key, tc.url)}, jwsOpts{})
				if r.problem() != "urn:ietf:params:acme:error:unauthorized" {
					t.Fatalf("answer %d %s, want unauthorized", r.status, r.raw)
				}
			})
		}
		var n int64
		if err := s.DB().Model(&models.ACMEAccount{}).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("refused bindings made %d accounts (%v)", n, err)
		}
	})
}

func TestACME_KeyChangeAndDeactivation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		kid, key := e.binding("*.svc.acme.example")
		c := e.client(jose.ES256)
		c.register(kid, key)
		other := e.client(jose.ES256)
		other.register(kid, key)

		newKey := newKey(t, jose.EdDSA)
		inner := func(k any, alg jose.SignatureAlgorithm, old any) []byte {
			oldJWK, _ := json.Marshal(jose.JSONWebKey{Key: old})
			p, _ := json.Marshal(map[string]any{"account": c.account, "oldKey": json.RawMessage(oldJWK)})
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k},
				(&jose.SignerOptions{EmbedJWK: true}).WithHeader("url", e.dir["keyChange"]))
			if err != nil {
				t.Fatal(err)
			}
			obj, _ := signer.Sign(p)
			return []byte(obj.FullSerialize())
		}
		if r := c.post(e.dir["keyChange"], inner(other.key, jose.ES256, c.key.Public()), jwsOpts{}); r.status != http.StatusConflict {
			t.Fatalf("rolling over to another account's key: %d %s", r.status, r.raw)
		}
		if r := c.post(e.dir["keyChange"], inner(newKey, jose.EdDSA, other.key.Public()), jwsOpts{}); r.problem() != "urn:ietf:params:acme:error:unauthorized" {
			t.Fatalf("rolling over with a wrong oldKey: %d %s", r.status, r.raw)
		}
		if r := c.post(e.dir["keyChange"], inner(newKey, jose.EdDSA, c.key.Public()), jwsOpts{}); r.status != http.StatusOK {
			t.Fatalf("key change: %d %s", r.status, r.raw)
		}
		if r := c.post(e.dir["newOrder"], ids("a.svc.acme.example"), jwsOpts{}); r.status < 400 {
			t.Fatalf("the old key still works: %d %s", r.status, r.raw)
		}
		c.key, c.alg = newKey, jose.EdDSA
		if r := c.post(e.dir["newOrder"], ids("a.svc.acme.example"), jwsOpts{}); r.status != http.StatusCreated {
			t.Fatalf("the new key: %d %s", r.status, r.raw)
		}
		if r := c.post(c.account, map[string]string{"status": "deactivated"}, jwsOpts{}); r.status != http.StatusOK || r.body["status"] != "deactivated" {
			t.Fatalf("deactivation: %d %s", r.status, r.raw)
		}
		if r := c.post(e.dir["newOrder"], ids("a.svc.acme.example"), jwsOpts{}); r.problem() != "urn:ietf:params:acme:error:unauthorized" {
			t.Fatalf("order of a deactivated account: %d %s", r.status, r.raw)
		}
		for _, action := range []string{"acme_account.key_change", "acme_account.deactivate"} {
			if evs, _, err := s.ListAudit(bg, models.AuditFilter{Action: action}); err != nil || len(evs) != 1 {
				t.Fatalf("audit %s: %d events, %v", action, len(evs), err)
			}
		}
	})
}
