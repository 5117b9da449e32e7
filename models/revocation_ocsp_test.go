package models_test

import (
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestOCSPResponder_SaveThenLatestIsTheLongestValid(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		if _, err := s.LatestOCSPResponder(ctx, "issuing", "ca-key"); err == nil {
			t.Fatal("LatestOCSPResponder on an empty store: no error")
		}
		now := time.Now().UTC()
		for i, label := range []string{"ocsp-1", "ocsp-2"} {
			r := &models.OCSPResponder{Issuer: "issuing", KeyID: "ca-key", KeyLabel: label, Serial: randSerial(t), CertDER: []byte{1},
				NotBefore: now, NotAfter: now.Add(time.Duration(i+1) * 24 * time.Hour)}
			if err := s.SaveOCSPResponder(ctx, system, r); err != nil {
				t.Fatal(err)
			}
			wantLastAudit(t, s, "ocsp_responder.create", system, r.Serial)
		}
		// A responder certified by another CA key (the issuing CA was
		// replaced) is not the one of "ca-key", however long it is valid.
		other := &models.OCSPResponder{Issuer: "issuing", KeyID: "new-ca-key", KeyLabel: "ocsp-3", Serial: randSerial(t), CertDER: []byte{1},
			NotBefore: now, NotAfter: now.Add(30 * 24 * time.Hour)}
		if err := s.SaveOCSPResponder(ctx, system, other); err != nil {
			t.Fatal(err)
		}
		got, err := s.LatestOCSPResponder(ctx, "issuing", "ca-key")
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyLabel != "ocsp-2" {
			t.Errorf("latest = %s, want ocsp-2", got.KeyLabel)
		}
		if got, err := s.LatestOCSPResponder(ctx, "issuing", "new-ca-key"); err != nil || got.KeyLabel != "ocsp-3" {
			t.Errorf("latest of the new CA key = %+v, %v; want ocsp-3", got, err)
		}
		tests := []struct {
			name string
			r    models.OCSPResponder
		}{
			{"no label", models.OCSPResponder{Issuer: "issuing", Serial: "ab", CertDER: []byte{1}, NotBefore: now, NotAfter: now.Add(time.Hour)}},
			{"no certificate", models.OCSPResponder{Issuer: "issuing", KeyLabel: "x", Serial: "ab", NotBefore: now, NotAfter: now.Add(time.Hour)}},
			{"backwards validity", models.OCSPResponder{Issuer: "issuing", KeyLabel: "x", Serial: "ab", CertDER: []byte{1}, NotBefore: now, NotAfter: now}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, s.SaveOCSPResponder(ctx, system, &tt.r), models.ErrInvalid)
			})
		}
	})
}

func TestCertificateStatuses_IssuedAndRevokedUnexpired(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		good := issue(t, s)
		bad := issue(t, s)
		before := time.Now().Add(-time.Second)
		if _, err := s.RevokeCertificate(ctx, admin, bad.ID, models.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		sts, err := s.CertificateStatuses(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]models.CertStatus{}
		for _, st := range sts {
			got[st.Serial] = st
		}
		if got[good.Serial].State != models.CertIssued {
			t.Errorf("good certificate state = %q", got[good.Serial].State)
		}
		b := got[bad.Serial]
		if b.State != models.CertRevoked || b.RevokedAt == nil || b.RevocationReason == nil || *b.RevocationReason != models.ReasonKeyCompromise {
			t.Errorf("revoked certificate status = %+v", b)
		}
		if sts, err := s.CertificateStatuses(ctx, time.Now().Add(10*365*24*time.Hour)); err != nil || len(sts) != 0 {
			t.Errorf("after expiry: %d statuses, %v; want none", len(sts), err)
		}
		rs, err := s.RevokedSince(ctx, before)
		if err != nil || len(rs) != 1 || rs[0].Serial != bad.Serial {
			t.Errorf("RevokedSince = %+v, %v; want the revoked certificate", rs, err)
		}
		if rs, _ := s.RevokedSince(ctx, time.Now().Add(time.Hour)); len(rs) != 0 {
			t.Errorf("RevokedSince(future) = %+v, want none", rs)
		}
	})
}

func TestLatestCRLInfo_IsLatestCRLWithoutDER(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		now := time.Now().UTC().Truncate(time.Second)
		for n := int64(1); n <= 2; n++ {
			if err := s.SaveCRL(ctx, &models.CRL{Issuer: "issuing", Number: n, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Entries: int(n), DER: []byte{1, 2}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.LatestCRLInfo(ctx, "issuing", models.AnyKey)
		if err != nil {
			t.Fatal(err)
		}
		if got.Number != 2 || got.Entries != 2 || len(got.DER) != 0 || !got.NextUpdate.Equal(now.Add(time.Hour)) {
			t.Errorf("LatestCRLInfo = %+v, want number 2 without DER", got)
		}
		if _, err := s.LatestCRLInfo(ctx, "root", models.AnyKey); err == nil {
			t.Error("LatestCRLInfo of a CA without CRLs: no error")
		}
	})
}
