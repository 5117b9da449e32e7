package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"github.com/certdesk/certdesk/models"
)

// legoUser is the account holder lego asks for.
type legoUser struct {
	key crypto.Signer
	reg *legoacme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                           { return "ops@billing.acme.example" }
func (u *legoUser) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer               { return u.key }

// legoClient is a lego client of the portal's ACME directory for key.
func (tp *tlsPortal) legoClient(t *testing.T, u *legoUser) *lego.Client {
	t.Helper()
	cfg := lego.NewConfig(u)
	cfg.CADirURL = tp.URL + "/acme/directory"
	cfg.HTTPClient = tp.client(nil)
	c, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego client: %v", err)
	}
	return c
}

func newECKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// acmeProblem is the ACME error type of err ("" if none).
func acmeProblem(err error) string {
	var p *legoacme.ProblemDetails
	if errors.As(err, &p) {
		return p.Type
	}
	return ""
}

func TestACME_Lego_ObtainsRenewsAndRevokesInsideItsBinding(t *testing.T) {
	tp := startTLSPortal(t, "sqlite")
	ctx := context.Background()

	// Four eyes on the binding: the requester cannot approve it; the key
	// is handed to the requester once.
	b := tp.must(201, "partner", "POST", "/api/v1/acme/bindings", map[string]any{"name": "billing hosts", "dns_names": []string{"*.billing.acme.example"}})
	tp.must(403, "partner", "POST", "/api/v1/acme/bindings/"+b["id"].(string)+"/approve", nil)
	tp.must(422, "partner", "POST", "/api/v1/acme/bindings", map[string]any{"dns_names": []string{"*.globex.example"}})
	bindingID, kid, hmacKey := tp.approvedBinding("partner", "*.billing.acme.example")
	tp.must(409, "partner", "POST", "/api/v1/acme/bindings/"+bindingID+"/credentials", nil)
	tp.must(404, "partner2", "POST", "/api/v1/acme/bindings/"+bindingID+"/credentials", nil)

	// A wrong HMAC key is refused.
	bad := tp.legoClient(t, &legoUser{key: newECKey(t)})
	if _, err := bad.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: strings.Repeat("A", 43)}); acmeProblem(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("registration with a wrong HMAC key: %v, want unauthorized", err)
	}

	user := &legoUser{key: newECKey(t)}
	client := tp.legoClient(t, user)
	reg, err := client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmacKey})
	if err != nil {
		t.Fatalf("registering with EAB: %v", err)
	}
	user.reg = reg

	// Obtain: issued at once, visible in the portal as a request from ACME
	// decided by the binding's approver, and a client certificate that
	// openssl accepts.
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"api.billing.acme.example"}, KeyType: certcrypto.EC256, Bundle: true})
	if err != nil {
		t.Fatalf("obtaining: %v", err)
	}
	first := tp.checkACMECert(t, res.Certificate, "api.billing.acme.example", "first.pem")
	stored, err := tp.P.Store.GetCertificateBySerial(ctx, first.SerialNumber.Text(16))
	if err != nil {
		t.Fatalf("the issued certificate is not in the store: %v", err)
	}
	req := tp.must(200, "admin", "GET", "/api/v1/requests/"+stored.RequestID, nil)
	if req["via"] != "acme" || !strings.Contains(req["via_ref"].(string), "binding/"+bindingID) || req["decided_by"] != "ada" ||
		!strings.HasPrefix(req["requested_by"].(string), "acme-account:") {
		t.Fatalf("the portal's request for the ACME order: %v", req)
	}
	evs, _, err := tp.P.Store.ListAudit(ctx, models.AuditFilter{Action: "request.preauthorized"})
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Detail, bindingID) || !strings.Contains(evs[0].Detail, "account/") {
		t.Fatalf("audit of the pre-authorised request: %+v, %v", evs, err)
	}

	// Renewal information, then renewal replacing the first certificate.
	info, err := client.Certificate.GetRenewalInfo(ctx, first)
	if err != nil {
		t.Fatalf("renewal info: %v", err)
	}
	if !info.SuggestedWindow.Start.After(first.NotBefore) || !info.SuggestedWindow.End.Before(first.NotAfter) {
		t.Fatalf("suggested window %v–%v is not inside the certificate's life", info.SuggestedWindow.Start, info.SuggestedWindow.End)
	}
	renewed, err := client.Certificate.Renew(ctx, *res, &certificate.RenewOptions{Bundle: true, UseARICertID: true})
	if err != nil {
		t.Fatalf("renewing: %v", err)
	}
	second := tp.checkACMECert(t, renewed.Certificate, "api.billing.acme.example", "second.pem")
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("renewal returned the same certificate")
	}
	c2, _ := tp.P.Store.GetCertificateBySerial(ctx, second.SerialNumber.Text(16))
	r2, _ := tp.P.Store.GetRequest(ctx, c2.RequestID)
	if r2.RenewalOf == nil || *r2.RenewalOf != stored.ID {
		t.Fatalf("the renewal's request does not name the replaced certificate: %+v", r2)
	}

	// Key rollover: the account goes on with its new key.
	if err := client.Registration.KeyRollover(ctx, newECKey(t)); err != nil {
		t.Fatalf("key rollover: %v", err)
	}

	// Revocation by the account key, then by the certificate key.
	reason := uint(4)
	if err := client.Certificate.RevokeWithReason(ctx, renewed.Certificate, &reason); err != nil {
		t.Fatalf("revoking by account key: %v", err)
	}
	if c, _ := tp.P.Store.GetCertificate(ctx, c2.ID); c.State != models.CertRevoked {
		t.Fatalf("certificate revoked by ACME is %s", c.State)
	}
	if err := client.Certificate.Revoke(ctx, renewed.Certificate); acmeProblem(err) != "urn:ietf:params:acme:error:alreadyRevoked" {
		t.Fatalf("revoking twice: %v, want alreadyRevoked", err)
	}
	certKey, err := certcrypto.ParsePEMPrivateKey(res.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	byKey := tp.legoClient(t, &legoUser{key: certKey})
	if err := byKey.Certificate.Revoke(ctx, res.Certificate); err != nil {
		t.Fatalf("revoking by certificate key: %v", err)
	}
	if c, _ := tp.P.Store.GetCertificate(ctx, stored.ID); c.State != models.CertRevoked {
		t.Fatalf("certificate revoked by its key is %s", c.State)
	}

	// Outside the binding's scope: rejectedIdentifier, and nothing issued.
	before, _ := counts(t, tp.P.Store)
	_, err = client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"api.acme.example"}, KeyType: certcrypto.EC256})
	if acmeProblem(err) != "urn:ietf:params:acme:error:rejectedIdentifier" {
		t.Fatalf("order outside the binding: %v, want rejectedIdentifier", err)
	}
	if after, _ := counts(t, tp.P.Store); after != before {
		t.Fatalf("a refused order made %d requests", after-before)
	}

	// A revoked binding stops its account.
	tp.must(200, "partner", "POST", "/api/v1/acme/bindings/"+bindingID+"/revoke", nil)
	_, err = client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"web.billing.acme.example"}, KeyType: certcrypto.EC256})
	if acmeProblem(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("order of a revoked binding's account: %v, want unauthorized", err)
	}
	if _, err := client.Registration.QueryRegistration(ctx); acmeProblem(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("account of a revoked binding: %v, want unauthorized", err)
	}
}

func TestACME_Lego_DeactivatedAccountIsRefused(t *testing.T) {
	tp := startTLSPortal(t, "postgres")
	ctx := context.Background()
	_, kid, hmacKey := tp.approvedBinding("partner", "db.acme.example")
	user := &legoUser{key: newECKey(t)}
	client := tp.legoClient(t, user)
	reg, err := client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmacKey})
	if err != nil {
		t.Fatalf("registering: %v", err)
	}
	user.reg = reg
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"db.acme.example"}, KeyType: certcrypto.EC256, Bundle: true})
	if err != nil {
		t.Fatalf("obtaining the binding's exact name: %v", err)
	}
	tp.checkACMECert(t, res.Certificate, "db.acme.example", "db.pem")
	if err := client.Registration.DeleteRegistration(ctx); err != nil {
		t.Fatalf("deactivating: %v", err)
	}
	_, err = client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"db.acme.example"}, KeyType: certcrypto.EC256})
	if acmeProblem(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("order of a deactivated account: %v, want unauthorized", err)
	}
}

// checkACMECert checks a PEM bundle from an ACME client: its leaf names
// exactly dnsName, is a client certificate, and openssl verify -purpose
// sslclient accepts it against the portal's CA bundle.
func (tp *tlsPortal) checkACMECert(t *testing.T, bundle []byte, dnsName, file string) *x509.Certificate {
	t.Helper()
	leaf := firstCert(t, bundle)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != dnsName || len(leaf.URIs) != 0 {
		t.Fatalf("ACME certificate names %v %v, want only %s", leaf.DNSNames, leaf.URIs, dnsName)
	}
	if time.Until(leaf.NotAfter) < 24*time.Hour {
		t.Fatalf("ACME certificate expires at %v", leaf.NotAfter)
	}
	path := filepath.Join(tp.Dir, file)
	writeFile(t, path, bundle)
	if err := tp.opensslVerifyClient(path); err != nil {
		t.Fatal(err)
	}
	return leaf
}
