package signer_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/signer"
)

// ocspResponder makes a delegated responder with a token key for ca.
func ocspResponder(t *testing.T, ca *signer.CA, label string) *signer.OCSPResponder {
	t.Helper()
	keys := signer.Keys{}
	key, err := keys.Find(token.URI(label))
	if signer.IsNotFound(err) {
		key, err = keys.Create(token.URI(label), "EC-P256")
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issuer.NewOCSPResponderCert(key.Public(), time.Now(), 30*24*time.Hour)
	if err != nil {
		t.Fatalf("NewOCSPResponderCert: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	r, err := signer.NewOCSPResponder(ca.Issuer.Certificate(), cert, key)
	if err != nil {
		t.Fatalf("NewOCSPResponder: %v", err)
	}
	return r
}

func TestNewOCSPResponderCert_HasTheDelegatedResponderProfile(t *testing.T) {
	_, ca := hsmCA(t, "ocsp")
	r := ocspResponder(t, ca, "ocsp-profile")
	c := r.Certificate()
	if err := c.CheckSignatureFrom(ca.Issuer.Certificate()); err != nil {
		t.Errorf("not signed by the issuing CA: %v", err)
	}
	if c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want an end-entity certificate", c.IsCA, c.BasicConstraintsValid)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("keyUsage = %v, want digitalSignature only", c.KeyUsage)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning {
		t.Errorf("extKeyUsage = %v, want id-kp-OCSPSigning only", c.ExtKeyUsage)
	}
	nocheck := false
	for _, e := range c.Extensions {
		nocheck = nocheck || (e.Id.Equal(signer.OIDOCSPNoCheck) && bytes.Equal(e.Value, []byte{5, 0}))
	}
	if !nocheck {
		t.Error("no id-pkix-ocsp-nocheck extension with a NULL value")
	}
	if d := c.NotAfter.Sub(c.NotBefore); d > 31*24*time.Hour {
		t.Errorf("valid for %v, want about 30 days", d)
	}
	if !r.Delegated() {
		t.Error("Delegated() = false for a delegated responder")
	}
}

func TestOCSPResponder_SignsGoodRevokedUnknownThatVerify(t *testing.T) {
	_, ca := hsmCA(t, "ocsp")
	r := ocspResponder(t, ca, "ocsp-sign")
	now := time.Now().UTC().Truncate(time.Second)
	revokedAt := now.Add(-time.Hour)
	tests := []struct {
		name   string
		st     signer.OCSPStatus
		reason int
	}{
		{"good, SHA-1 CertID", signer.OCSPStatus{Status: ocsp.Good}, 0},
		{"good, SHA-256 CertID", signer.OCSPStatus{Status: ocsp.Good, IssuerHash: crypto.SHA256}, 0},
		{"revoked keyCompromise", signer.OCSPStatus{Status: ocsp.Revoked, RevokedAt: revokedAt, Reason: 1}, 1},
		{"unknown", signer.OCSPStatus{Status: ocsp.Unknown}, 0},
		{"good with a nonce", signer.OCSPStatus{Status: ocsp.Good, Nonce: []byte{4, 2, 0xab, 0xcd}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			st.Serial = mustSerial("c0ffee")
			st.ThisUpdate, st.NextUpdate = now, now.Add(time.Hour)
			der, err := r.Sign(st)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ocsp.ParseResponseForCert(der, nil, ca.Issuer.Certificate())
			if err != nil {
				t.Fatalf("x/crypto/ocsp cannot verify the response: %v", err)
			}
			if resp.Status != st.Status || resp.SerialNumber.Cmp(st.Serial.Big()) != 0 {
				t.Errorf("status %d serial %x, want %d %s", resp.Status, resp.SerialNumber, st.Status, st.Serial)
			}
			if st.Status == ocsp.Revoked && (!resp.RevokedAt.Equal(revokedAt) || resp.RevocationReason != tt.reason) {
				t.Errorf("revoked at %v reason %d, want %v %d", resp.RevokedAt, resp.RevocationReason, revokedAt, tt.reason)
			}
			if !resp.NextUpdate.Equal(now.Add(time.Hour)) {
				t.Errorf("nextUpdate = %v", resp.NextUpdate)
			}
			if resp.Certificate == nil || !resp.Certificate.Equal(r.Certificate()) {
				t.Error("the delegated responder certificate is not in the response")
			}
			if st.Nonce != nil && !bytes.Contains(der, st.Nonce) {
				t.Error("the nonce is not echoed")
			}
		})
	}
}

func TestOCSPResponder_AuthorizedOnlyForItsIssuer(t *testing.T) {
	_, ca := hsmCA(t, "ocsp")
	_, other := hsmCA(t, "ocsp-other")
	r := ocspResponder(t, ca, "ocsp-auth")
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(42), PublicKey: leafKey.Public()}
	tests := []struct {
		name   string
		issuer *x509.Certificate
		hash   crypto.Hash
		want   bool
	}{
		{"own issuer SHA-1", ca.Issuer.Certificate(), crypto.SHA1, true},
		{"own issuer SHA-256", ca.Issuer.Certificate(), crypto.SHA256, true},
		{"another issuer", other.Issuer.Certificate(), crypto.SHA1, false},
		{"the root", ca.Root, crypto.SHA1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := ocsp.CreateRequest(leaf, tt.issuer, &ocsp.RequestOptions{Hash: tt.hash})
			if err != nil {
				t.Fatal(err)
			}
			req, err := signer.ParseOCSPRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Authorized(req.Request); got != tt.want {
				t.Errorf("Authorized = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseOCSPRequest_MalformedInputs(t *testing.T) {
	tests := []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not an OCSP request")},
		{"truncated DER", []byte{0x30, 0x82, 0x01}},
		{"empty sequence", []byte{0x30, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := signer.ParseOCSPRequest(tt.der); !errors.Is(err, signer.ErrOCSPMalformed) {
				t.Errorf("err = %v, want ErrOCSPMalformed", err)
			}
		})
	}
}

func TestOCSPErrorResponse_ParsesAsThatStatus(t *testing.T) {
	for _, st := range []ocsp.ResponseStatus{ocsp.Malformed, ocsp.Unauthorized, ocsp.TryLater, ocsp.InternalError} {
		t.Run(st.String(), func(t *testing.T) {
			_, err := ocsp.ParseResponse(signer.OCSPErrorResponse(st), nil)
			var re ocsp.ResponseError
			if !errors.As(err, &re) || re.Status != st {
				t.Errorf("parse error = %v, want ResponseError %v", err, st)
			}
		})
	}
}
