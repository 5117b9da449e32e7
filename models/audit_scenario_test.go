package models_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

// caKeyID is the CA key of the scenario's CRL, responder and checkpoint.
var caKeyID = strings.Repeat("ab", 32)

// auditScenario makes one audit event of every kind the store records, with
// the edge cases of each kind's detail (absent optional keys, empty
// reasons, nil and empty lists), on a fixed clock. recordAuth adds the
// sign-in events, which the web layer records through Store.Record.
func auditScenario(t *testing.T, s *models.Store, recordAuth func(t *testing.T, s *models.Store)) {
	t.Helper()
	clk := newClock()
	s.Now = clk.Now
	step := func() { clk.Advance(time.Second + 1500*time.Nanosecond) }
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		step()
	}

	acme := &models.Organization{Slug: "acme", Name: "Acme <Ltd> & Co", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"},
		DNSSuffixes: models.StringList{".acme.example"}, MaxValidityDays: 90, AutoApproveRenewals: true,
		ContactEmails: models.StringList{"pki@acme.example"}, ExpiryNoticeDays: []int{30, 7}}
	must("CreateOrg acme", s.CreateOrg(ctx, admin, acme))
	must("CreateOrg globex", s.CreateOrg(ctx, admin, &models.Organization{Slug: "globex", Name: "Globex"}))
	acme.Name = "Acme Ltd"
	acme.EmailDomains = models.StringList{"acme.example"}
	must("UpdateOrg", s.UpdateOrg(ctx, admin, acme))
	must("SetMembership", s.SetMembership(ctx, admin, "dave", "acme"))
	must("SetMembership removal", s.SetMembership(ctx, admin, "dave", ""))

	submitReq := func(renewalOf *string) *models.Request {
		t.Helper()
		r := &models.Request{Org: "acme", CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...", KeyType: "ECDSA P-256",
			Identities: models.StringList{"spiffe://example.org/partners/acme/billing"}, ValidityDays: 30, RenewalOf: renewalOf}
		must("SubmitRequest", s.SubmitRequest(ctx, partner, r))
		return r
	}
	reserveFor := func(r *models.Request, serial string) *models.Certificate {
		t.Helper()
		now := s.Now()
		c := &models.Certificate{Serial: serial, RequestID: r.ID, NotBefore: now.Add(-time.Minute),
			NotAfter: now.Add(30 * 24 * time.Hour), PrecertDER: []byte("tbs")}
		must("ReserveCertificate", s.ReserveCertificate(ctx, system, c))
		return c
	}

	r1 := submitReq(nil)
	_, err := s.ApproveRequest(ctx, admin, r1.ID, "  ")
	must("ApproveRequest without reason", err)
	c1 := reserveFor(r1, "5a1e0d2c3b4a59687766554433221100")
	_, err = s.CompleteCertificate(ctx, system, c1.ID, []byte("der:c1"))
	must("CompleteCertificate", err)

	r2 := submitReq(nil)
	_, err = s.ApproveRequest(ctx, admin, r2.ID, "known partner")
	must("ApproveRequest", err)
	c2 := reserveFor(r2, "6b2f1e3d4c5b6a798877665544332211")
	must("FailCertificate", s.FailCertificate(ctx, system, c2.ID, "HSM refused: CKR_DEVICE_ERROR"))

	r3 := submitReq(&c1.ID)
	_, err = s.AutoApproveRequest(ctx, system, r3.ID)
	must("AutoApproveRequest", err)
	r4 := submitReq(nil)
	_, err = s.RejectRequest(ctx, admin, r4.ID, "wrong key type")
	must("RejectRequest", err)
	r5 := submitReq(nil)
	_, err = s.CancelRequest(ctx, partner, r5.ID)
	must("CancelRequest", err)

	_, err = s.RecordExpiryNotice(ctx, system, c1.ID, 30, []models.Notification{note("pki@acme.example")})
	must("RecordExpiryNotice", err)
	_, err = s.RevokeCertificate(ctx, admin, c1.ID, 1)
	must("RevokeCertificate", err)

	now := s.Now()
	must("SaveCRL", s.SaveCRL(ctx, &models.CRL{Issuer: "issuing", KeyID: caKeyID, Number: 7, ThisUpdate: now,
		NextUpdate: now.Add(24 * time.Hour), Entries: 1, DER: []byte("crl")}))
	must("SaveOCSPResponder", s.SaveOCSPResponder(ctx, system, &models.OCSPResponder{Issuer: "issuing", KeyID: caKeyID,
		KeyLabel: "ocsp-1", Serial: "7c3a2f1e0d", CertDER: []byte{1}, NotBefore: now, NotAfter: now.Add(7 * 24 * time.Hour)}))

	tok := &models.APIToken{Name: "ci", Subject: partner.Subject, Role: models.RolePartner, Org: "acme",
		Hash: tokenHash("secret-1"), ExpiresAt: now.Add(time.Hour)}
	must("CreateToken", s.CreateToken(ctx, partner, tok))
	must("RevokeToken", s.RevokeToken(ctx, partner, tok.ID))

	recordAuth(t, s)
	step()

	seq, hash, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must("SaveCheckpoint", s.SaveCheckpoint(ctx, &models.AuditCheckpoint{Seq: seq, Hash: hash, SignedAt: s.Now().Truncate(time.Microsecond),
		Signature: []byte("sig"), KeyID: caKeyID}))
}
