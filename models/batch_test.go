package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// reservation is a certificate to reserve for r, with a fresh serial.
func reservation(t testing.TB, s *models.Store, r *models.Request) *models.Certificate {
	now := s.Now()
	return &models.Certificate{Serial: randSerial(t), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		PrecertDER: []byte("tbs"), Org: r.Org, Identities: r.Identities, KeyType: r.KeyType}
}

// issued is a certificate issued for a new request of acme.
func issued(t testing.TB, s *models.Store) *models.Certificate {
	t.Helper()
	r := submit(t, s)
	c := reservation(t, s, r)
	if _, err := s.ApproveAndReserve(ctx, admin, r.ID, "ok", c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteIssuance(ctx, system, c.ID, []byte("der")); err != nil {
		t.Fatal(err)
	}
	return c
}

// unchanged fails unless request r is still submitted, undecided and
// without a certificate, the store holds want certificates in all, and
// the audit chain still holds events events and verifies.
func unchanged(t *testing.T, s *models.Store, r *models.Request, want int, events int64) {
	t.Helper()
	got, err := s.GetRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != models.StateSubmitted || got.DecidedBy != "" || got.DecidedAt != nil || got.CertificateID != nil {
		t.Errorf("request after the refused approval: %+v", got)
	}
	certs, _, err := s.ListCertificates(ctx, models.CertFilter{State: "all", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != want {
		t.Errorf("%d certificates recorded, want %d", len(certs), want)
	}
	if n := auditCount(t, s); n != events {
		t.Errorf("%d audit events, want %d", n, events)
	}
}

// The approval and the reservation go to the database together (one round
// trip on PostgreSQL): whichever of the two fails, neither is recorded,
// and the error says why.
func TestApproveAndReserve_EitherHalfFails_NothingRecorded(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		taken := issued(t, s)

		t.Run("own request", func(t *testing.T) {
			r := submit(t, s)
			events := auditCount(t, s)
			_, err := s.ApproveAndReserve(ctx, partner, r.ID, "mine", reservation(t, s, r))
			wantErr(t, err, models.ErrForbidden)
			unchanged(t, s, r, 1, events)
		})
		t.Run("no longer submitted", func(t *testing.T) {
			r := submit(t, s)
			if _, err := s.ApproveAndReserve(ctx, admin, r.ID, "first", reservation(t, s, r)); err != nil {
				t.Fatal(err)
			}
			events := auditCount(t, s)
			_, err := s.ApproveAndReserve(ctx, admin2, r.ID, "second", reservation(t, s, r))
			wantErr(t, err, models.ErrConflict)
			got, err := s.GetRequest(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != models.StateApproved || got.DecidedBy != admin.Subject || got.DecisionReason != "first" {
				t.Errorf("request after the second approval: %+v", got)
			}
			pending, _, err := s.ListCertificates(ctx, models.CertFilter{State: "pending"})
			if err != nil {
				t.Fatal(err)
			}
			if len(pending) != 1 {
				t.Errorf("%d pending certificates, want the first approval's only", len(pending))
			}
			if n := auditCount(t, s); n != events {
				t.Errorf("%d audit events, want %d", n, events)
			}
		})
		// Complete the pending one, so that each case below starts from
		// certificates all issued.
		pending, _, err := s.ListCertificates(ctx, models.CertFilter{State: "pending"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range pending {
			if _, err := s.CompleteIssuance(ctx, system, c.ID, []byte("der")); err != nil {
				t.Fatal(err)
			}
		}
		certs := 1 + len(pending)
		newOrg(t, s, "other", false)
		for _, tc := range []struct {
			name  string
			id    func(r *models.Request) string
			spoil func(c *models.Certificate)
			want  error
		}{
			{"unknown request", func(*models.Request) string { return "00000000-0000-4000-8000-000000000000" }, nil, models.ErrNotFound},
			{"reservation refused: serial taken", nil, func(c *models.Certificate) { c.Serial = taken.Serial }, models.ErrConflict},
			{"reservation of another organisation", nil, func(c *models.Certificate) { c.Org = "other" }, models.ErrInvalid},
			{"reservation without its request's names", nil, func(c *models.Certificate) { c.Identities = nil }, models.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := submit(t, s)
				events := auditCount(t, s)
				c := reservation(t, s, r)
				id := r.ID
				if tc.id != nil {
					id = tc.id(r)
				}
				if tc.spoil != nil {
					tc.spoil(c)
				}
				_, err := s.ApproveAndReserve(ctx, admin, id, "ok", c)
				wantErr(t, err, tc.want)
				unchanged(t, s, r, certs, events)
			})
		}
		t.Run("both succeed", func(t *testing.T) {
			r := submit(t, s)
			events := auditCount(t, s)
			c := reservation(t, s, r)
			got, err := s.ApproveAndReserve(ctx, admin, r.ID, "ok", c)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != models.StateApproved || got.DecidedBy != admin.Subject {
				t.Errorf("approved request: %+v", got)
			}
			stored, err := s.GetCertificate(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.State != models.CertPending || stored.RequestID != r.ID || stored.Serial != c.Serial {
				t.Errorf("reserved certificate: %+v", stored)
			}
			if n := auditCount(t, s); n != events+2 {
				t.Errorf("%d audit events, want %d (approve, reserve)", n, events+2)
			}
			wantLastAudit(t, s, "certificate.reserve", admin, c.ID)
		})
	})
}

// A renewal's request and its reservation go to the database together:
// when the reservation is refused, the request is not recorded either.
func TestSubmitAutoApproved_ReservationRefused_RequestNotRecorded(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", true)
		base := issued(t, s)
		requests := func() int {
			rs, _, err := s.ListRequests(ctx, models.RequestFilter{Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			return len(rs)
		}
		before, events := requests(), auditCount(t, s)
		renewal := func() *models.Request {
			return &models.Request{Org: "acme", CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...", KeyType: "ECDSA P-256",
				Identities: base.Identities, ValidityDays: 30, RenewalOf: &base.ID}
		}
		r := renewal()
		c := reservation(t, s, r)
		c.Serial = base.Serial
		wantErr(t, s.SubmitAutoApproved(ctx, partner, r, c), models.ErrConflict)
		if n := requests(); n != before {
			t.Errorf("%d requests after the refused renewal, want %d", n, before)
		}
		if n := auditCount(t, s); n != events {
			t.Errorf("%d audit events, want %d", n, events)
		}

		r = renewal()
		c = reservation(t, s, r)
		if err := s.SubmitAutoApproved(ctx, partner, r, c); err != nil {
			t.Fatal(err)
		}
		stored, err := s.GetCertificate(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.State != models.CertPending || stored.RequestID != r.ID {
			t.Errorf("reserved certificate: %+v", stored)
		}
		if n := auditCount(t, s); n != events+3 {
			t.Errorf("%d audit events, want %d (submit, auto-approve, reserve)", n, events+3)
		}
	})
}

// An approval that changes nothing writes nothing, so it waits for no
// lock: on PostgreSQL a second approval of a request, while the recording
// of the first one's certificate holds that certificate's row, is refused
// at once. (Had the reservation run anyway, its INSERT would wait for that
// recording, under a lock on the request that the recording needs next.)
func TestApproveAndReserve_RefusedApproval_WaitsForNoLock(t *testing.T) {
	s := modelstest.Postgres(t)
	newOrg(t, s, "acme", false)
	r := submit(t, s)
	first := reservation(t, s, r)
	if _, err := s.ApproveAndReserve(ctx, admin, r.ID, "first", first); err != nil {
		t.Fatal(err)
	}
	commit := holdWriteTx(t, s, `UPDATE certificates SET updated_at = ? WHERE id = ?`, s.Now(), first.ID)
	defer func() {
		if err := commit(); err != nil {
			t.Error(err)
		}
	}()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.ApproveAndReserve(actx, admin2, r.ID, "second", reservation(t, s, r))
	wantErr(t, err, models.ErrConflict)
	t.Logf("refused in %v", time.Since(start))
}
