package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certdesk/certdesk/models"
)

// accountAlgs are the JWS algorithms accepted for account keys
// (RFC 8555 §6.2: asymmetric only; MAC and "none" are refused).
var accountAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.EdDSA}

// eabAlgs are the MAC algorithms accepted for external account binding
// (RFC 8555 §7.3.4).
var eabAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// minRSABits is the smallest RSA account key accepted.
const minRSABits = 2048

// flattened is a JWS in flattened JSON serialization (RFC 7515 §7.2.2), the
// only form RFC 8555 §6.2 allows.
type flattened struct {
	Protected  string          `json:"protected"`
	Payload    *string         `json:"payload"`
	Signature  string          `json:"signature"`
	Header     json.RawMessage `json:"header"`
	Signatures json.RawMessage `json:"signatures"`
}

// signed is a parsed JWS whose protected header has been read but whose
// signature is not verified yet.
type signed struct {
	jws   *jose.JSONWebSignature
	hdr   jose.Header
	url   string
	raw   []byte
	empty bool // payload "" (POST-as-GET)
}

// parseJWS reads a flattened JWS and its protected header, with the rules
// of RFC 8555 §6.2 that do not need a key: exactly one signature, no
// unprotected header, an allowed algorithm, a url, and one of jwk and kid.
func parseJWS(body []byte, algs []jose.SignatureAlgorithm, needNonce bool) (*signed, error) {
	var f flattened
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, malformed("the body is not a JWS in flattened JSON serialization")
	}
	if len(f.Signatures) > 0 {
		return nil, malformed("a JWS with several signatures is not accepted (RFC 8555 §6.2)")
	}
	if len(f.Header) > 0 && !bytes.Equal(bytes.TrimSpace(f.Header), []byte("null")) {
		return nil, malformed("the JWS must have no unprotected header (RFC 8555 §6.2)")
	}
	if f.Protected == "" || f.Payload == nil || f.Signature == "" {
		return nil, malformed("the JWS needs protected, payload and signature")
	}
	jws, err := jose.ParseSignedJSON(string(body), algs)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, &Problem{Type: errBadSignatureAlgorithm, Status: 400, Detail: fmt.Sprintf("signature algorithm %s is not accepted", alg.Got),
				Algorithms: algNames(algs)}
		}
		return nil, malformed("the JWS cannot be parsed: " + err.Error())
	}
	if len(jws.Signatures) != 1 {
		return nil, malformed("the JWS must have exactly one signature")
	}
	h := jws.Signatures[0].Protected
	url, _ := h.ExtraHeaders["url"].(string)
	if url == "" {
		return nil, malformed("the protected header has no url (RFC 8555 §6.4)")
	}
	if (h.JSONWebKey == nil) == (h.KeyID == "") {
		return nil, malformed("the protected header must have exactly one of jwk and kid (RFC 8555 §6.2)")
	}
	if needNonce && h.Nonce == "" {
		return nil, &Problem{Type: errBadNonce, Status: 400, Detail: "the protected header has no nonce"}
	}
	if h.JSONWebKey != nil && !h.JSONWebKey.IsPublic() {
		return nil, malformed("the jwk must be a public key")
	}
	return &signed{jws: jws, hdr: h, url: url, raw: jws.UnsafePayloadWithoutVerification(), empty: *f.Payload == ""}, nil
}

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// verifyWith checks the signature with key, which must suit the header's
// algorithm, and returns the payload.
func (s *signed) verifyWith(key *jose.JSONWebKey) ([]byte, error) {
	if err := checkAccountKey(key, s.hdr.Algorithm); err != nil {
		return nil, err
	}
	payload, err := s.jws.Verify(key)
	if err != nil {
		return nil, &Problem{Type: errMalformed, Status: 400, Detail: "the JWS signature does not verify"}
	}
	return payload, nil
}

// checkAccountKey accepts ECDSA P-256/P-384, Ed25519 and RSA of at least
// 2048 bits, each with its own algorithm.
func checkAccountKey(key *jose.JSONWebKey, alg string) error {
	switch k := key.Key.(type) {
	case *ecdsa.PublicKey:
		want := map[string]string{"P-256": "ES256", "P-384": "ES384"}[k.Curve.Params().Name]
		if want == "" || want != alg {
			return &Problem{Type: errBadSignatureAlgorithm, Status: 400, Detail: fmt.Sprintf("an ECDSA %s key signs with %s, not %s", k.Curve.Params().Name, want, alg), Algorithms: algNames(accountAlgs)}
		}
	case ed25519.PublicKey:
		if alg != string(jose.EdDSA) {
			return &Problem{Type: errBadSignatureAlgorithm, Status: 400, Detail: "an Ed25519 key signs with EdDSA", Algorithms: algNames(accountAlgs)}
		}
	case *rsa.PublicKey:
		if alg != string(jose.RS256) {
			return &Problem{Type: errBadSignatureAlgorithm, Status: 400, Detail: "an RSA key signs with RS256", Algorithms: algNames(accountAlgs)}
		}
		if k.N.BitLen() < minRSABits {
			return &Problem{Type: errBadPublicKey, Status: 400, Detail: fmt.Sprintf("RSA account keys need at least %d bits", minRSABits)}
		}
	default:
		return &Problem{Type: errBadPublicKey, Status: 400, Detail: "account keys are ECDSA P-256 or P-384, Ed25519, or RSA"}
	}
	return nil
}

// thumbprint is the base64url RFC 7638 SHA-256 thumbprint of key.
func thumbprint(key *jose.JSONWebKey) (string, error) {
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", malformed("the jwk has no thumbprint: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// request is an authenticated ACME request: the verified payload and, for
// kid requests, the account and its binding.
type request struct {
	payload []byte
	empty   bool
	jwk     *jose.JSONWebKey // for jwk requests
	account *models.ACMEAccount
	binding *models.ACMEBinding
}

// authenticate parses, checks url and nonce, and verifies a JWS. useJWK
// says which key the endpoint takes: the embedded jwk (newAccount, revokeCert
// by certificate key) or the account's kid (every other). An account whose
// binding is revoked or expired, or which is deactivated, is unauthorized.
func (s *Server) authenticate(ctx context.Context, body []byte, wantURL string, jwkAllowed, kidAllowed bool) (*request, error) {
	sig, err := parseJWS(body, accountAlgs, true)
	if err != nil {
		return nil, err
	}
	if sig.url != wantURL {
		return nil, &Problem{Type: errUnauthorized, Status: 401, Detail: fmt.Sprintf("the JWS url %q is not this resource's URL", sig.url)}
	}
	ok, err := s.Store.UseACMENonce(ctx, sig.hdr.Nonce)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &Problem{Type: errBadNonce, Status: 400, Detail: "the nonce is unknown, used or expired"}
	}
	if sig.hdr.JSONWebKey != nil {
		if !jwkAllowed {
			return nil, malformed("this resource takes a kid (the account URL), not a jwk (RFC 8555 §6.2)")
		}
		payload, err := sig.verifyWith(sig.hdr.JSONWebKey)
		if err != nil {
			return nil, err
		}
		return &request{payload: payload, empty: sig.empty, jwk: sig.hdr.JSONWebKey}, nil
	}
	if !kidAllowed {
		return nil, malformed("this resource takes a jwk, not a kid (RFC 8555 §6.2)")
	}
	id, ok := strings.CutPrefix(sig.hdr.KeyID, s.url("/acme/account/"))
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, &Problem{Type: errAccountDoesNotExist, Status: 400, Detail: "the kid is not an account URL of this server"}
	}
	acct, err := s.Store.GetACMEAccount(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, &Problem{Type: errAccountDoesNotExist, Status: 400, Detail: "no such account"}
	}
	if err != nil {
		return nil, err
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON([]byte(acct.JWK)); err != nil {
		return nil, fmt.Errorf("reading the key of account %s: %w", acct.ID, err)
	}
	payload, err := sig.verifyWith(&key)
	if err != nil {
		return nil, err
	}
	if acct.Status != models.ACMEValid {
		return nil, &Problem{Type: errUnauthorized, Status: 401, Detail: "the account is " + acct.Status}
	}
	b, err := s.Store.GetACMEBinding(ctx, acct.BindingID)
	if err != nil {
		return nil, err
	}
	if !b.Usable(s.now()) {
		return nil, &Problem{Type: errUnauthorized, Status: 401, Detail: "the account's external account binding is " + bindingWord(b, s.now())}
	}
	return &request{payload: payload, empty: sig.empty, account: acct, binding: b}, nil
}

// bindingWord says why a binding is not usable.
func bindingWord(b *models.ACMEBinding, now time.Time) string {
	if b.State == models.BindingApproved && !now.Before(b.ExpiresAt) {
		return "expired"
	}
	return b.State
}
