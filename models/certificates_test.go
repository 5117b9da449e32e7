package models_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/serial"
)

// randSerial returns a random 128-bit serial in the stored form.
func randSerial(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n, err := serial.FromBig(new(big.Int).SetBytes(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

// reserve approves a new request for acme and reserves a certificate for it.
func reserve(t *testing.T, s *models.Store) *models.Certificate {
	t.Helper()
	r := submit(t, s)
	if _, err := s.ApproveRequest(ctx, admin, r.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	now := s.Now()
	c := &models.Certificate{Serial: randSerial(t), RequestID: r.ID, NotBefore: now.Add(-time.Minute),
		NotAfter: now.Add(30 * 24 * time.Hour), PrecertDER: []byte("tbs")}
	if err := s.ReserveCertificate(ctx, system, c); err != nil {
		t.Fatalf("ReserveCertificate: %v", err)
	}
	return c
}

// issue runs the whole issuance for a new acme request.
func issue(t *testing.T, s *models.Store) *models.Certificate {
	t.Helper()
	c := reserve(t, s)
	got, err := s.CompleteCertificate(ctx, system, c.ID, []byte("der:"+c.Serial))
	if err != nil {
		t.Fatalf("CompleteCertificate: %v", err)
	}
	return got
}

func TestIssuance_ReserveThenComplete_IssuesRequestAndCertificate(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		c := reserve(t, s)
		if c.State != models.CertPending || c.Org != "acme" || len(c.Identities) != 1 || c.KeyType != "ECDSA P-256" {
			t.Fatalf("reserved = %+v", c)
		}
		wantLastAudit(t, s, "certificate.reserve", system, c.ID)
		pend, err := s.PendingCertificates(ctx)
		if err != nil || len(pend) != 1 || pend[0].ID != c.ID {
			t.Fatalf("pending = %v, %v", pend, err)
		}
		got, err := s.CompleteCertificate(ctx, system, c.ID, []byte{0x30, 0x01})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != models.CertIssued || string(got.DER) != "\x30\x01" {
			t.Fatalf("completed = %+v", got)
		}
		ev := wantLastAudit(t, s, "certificate.issue", system, c.ID)
		if want := `"sha256":"` + sha256hex([]byte{0x30, 0x01}) + `"`; !contains(ev.Detail, want) {
			t.Fatalf("issue detail %s lacks %s", ev.Detail, want)
		}
		r, _ := s.GetRequest(ctx, c.RequestID)
		if r.State != models.StateIssued || r.CertificateID == nil || *r.CertificateID != c.ID {
			t.Fatalf("request after issuance = %+v", r)
		}
		if pend, _ := s.PendingCertificates(ctx); len(pend) != 0 {
			t.Fatalf("%d still pending", len(pend))
		}
		bySerial, err := s.GetCertificateBySerial(ctx, "00"+upper(c.Serial))
		if err != nil || bySerial.ID != c.ID {
			t.Fatalf("by serial: %v, %v", bySerial, err)
		}
		if models.CertState(got, s.Now()) != models.CertValid || models.CertState(got, got.NotAfter) != models.CertExpired {
			t.Fatal("CertState does not derive valid/expired from NotAfter")
		}
		mustVerify(t, s)
	})
}

func TestIssuance_IllegalSteps_AreConflicts(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		now := s.Now()
		cert := func(reqID string) *models.Certificate {
			return &models.Certificate{Serial: randSerial(t), RequestID: reqID, NotBefore: now, NotAfter: now.Add(time.Hour)}
		}
		t.Run("reserve for a submitted request", func(t *testing.T) {
			r := submit(t, s)
			wantErr(t, s.ReserveCertificate(ctx, system, cert(r.ID)), models.ErrConflict)
		})
		t.Run("reserve twice for one request", func(t *testing.T) {
			c := reserve(t, s)
			wantErr(t, s.ReserveCertificate(ctx, system, cert(c.RequestID)), models.ErrConflict)
		})
		t.Run("reserve a used serial", func(t *testing.T) {
			c := reserve(t, s)
			r := submit(t, s)
			if _, err := s.ApproveRequest(ctx, admin, r.ID, "ok"); err != nil {
				t.Fatal(err)
			}
			dup := cert(r.ID)
			dup.Serial = c.Serial
			wantErr(t, s.ReserveCertificate(ctx, system, dup), models.ErrConflict)
		})
		t.Run("reserve for an unknown request", func(t *testing.T) {
			wantErr(t, s.ReserveCertificate(ctx, system, cert("nope")), models.ErrNotFound)
		})
		t.Run("reserve with a bad serial", func(t *testing.T) {
			c := cert("x")
			c.Serial = "xyz"
			wantErr(t, s.ReserveCertificate(ctx, system, c), models.ErrInvalid)
		})
		t.Run("complete twice", func(t *testing.T) {
			c := issue(t, s)
			_, err := s.CompleteCertificate(ctx, system, c.ID, []byte("again"))
			wantErr(t, err, models.ErrConflict)
		})
		t.Run("fail an issued certificate", func(t *testing.T) {
			c := issue(t, s)
			wantErr(t, s.FailCertificate(ctx, system, c.ID, "late"), models.ErrConflict)
		})
		t.Run("complete an unknown certificate", func(t *testing.T) {
			_, err := s.CompleteCertificate(ctx, system, "nope", []byte("x"))
			wantErr(t, err, models.ErrNotFound)
		})
	})
}

func TestFailCertificate_RequestStaysApprovedAndCanBeReissued(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		c := reserve(t, s)
		if err := s.FailCertificate(ctx, system, c.ID, "found in flight at start-up"); err != nil {
			t.Fatal(err)
		}
		wantLastAudit(t, s, "certificate.fail", system, c.ID)
		got, _ := s.GetCertificate(ctx, c.ID)
		if got.State != models.CertFailed {
			t.Fatalf("state = %s", got.State)
		}
		_, err := s.CompleteCertificate(ctx, system, c.ID, []byte("x"))
		wantErr(t, err, models.ErrConflict)
		r, _ := s.GetRequest(ctx, c.RequestID)
		if r.State != models.StateApproved {
			t.Fatalf("request = %s after a failed issuance", r.State)
		}
		now := s.Now()
		again := &models.Certificate{Serial: randSerial(t), RequestID: r.ID, NotBefore: now, NotAfter: now.Add(time.Hour)}
		if err := s.ReserveCertificate(ctx, system, again); err != nil {
			t.Fatalf("re-reserving after failure: %v", err)
		}
	})
}

func TestRevokeCertificate_TwiceIsConflictAndChangesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		c := issue(t, s)
		got, err := s.RevokeCertificate(ctx, partner, c.ID, models.ReasonKeyCompromise)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != models.CertRevoked || got.RevokedAt == nil || *got.RevocationReason != 1 || got.RevokedBy != partner.Subject {
			t.Fatalf("revoked = %+v", got)
		}
		wantLastAudit(t, s, "certificate.revoke", partner, c.ID)
		before := auditCount(t, s)
		_, err = s.RevokeCertificate(ctx, admin, c.ID, models.ReasonSuperseded)
		wantErr(t, err, models.ErrConflict)
		again, _ := s.GetCertificate(ctx, c.ID)
		if !again.RevokedAt.Equal(*got.RevokedAt) || *again.RevocationReason != 1 || again.RevokedBy != partner.Subject {
			t.Fatalf("second revocation changed the certificate: %+v", again)
		}
		if n := auditCount(t, s); n != before {
			t.Fatal("second revocation was audited as a change")
		}
		if models.CertState(again, s.Now()) != models.CertRevoked {
			t.Fatal("CertState of a revoked certificate")
		}
	})
}

func TestRevokeCertificate_RefusedReasonsAndStates(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		c := issue(t, s)
		for _, reason := range []int{models.ReasonCertificateHold, models.ReasonRemoveFromCRL, 7, 11, -1} {
			_, err := s.RevokeCertificate(ctx, admin, c.ID, reason)
			wantErr(t, err, models.ErrInvalid)
		}
		p := reserve(t, s)
		_, err := s.RevokeCertificate(ctx, admin, p.ID, models.ReasonUnspecified)
		wantErr(t, err, models.ErrConflict)
		_, err = s.RevokeCertificate(ctx, admin, "nope", models.ReasonUnspecified)
		wantErr(t, err, models.ErrNotFound)
	})
}

func TestRevokedCertificates_UnexpiredRevokedBySerial(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		newOrg(t, s, "acme", false)
		var revoked []string
		for i := 0; i < 5; i++ {
			c := issue(t, s)
			if i < 4 {
				if _, err := s.RevokeCertificate(ctx, admin, c.ID, models.ReasonSuperseded); err != nil {
					t.Fatal(err)
				}
				revoked = append(revoked, c.Serial)
			}
		}
		got, err := s.RevokedCertificates(ctx, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		entries, err := s.RevokedEntries(ctx, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || len(entries) != 4 {
			t.Fatalf("%d revoked, %d entries; want 4", len(got), len(entries))
		}
		for i := range got {
			if i > 0 && got[i].Serial < got[i-1].Serial {
				t.Fatal("not ordered by serial")
			}
			if got[i].RevokedAt == nil || got[i].RevocationReason == nil || *got[i].RevocationReason != 4 {
				t.Fatalf("entry %+v lacks revocation data", got[i])
			}
			if entries[i].Serial != got[i].Serial || entries[i].RevocationReason != 4 || entries[i].RevokedAt.IsZero() {
				t.Fatalf("entry %+v differs from %+v", entries[i], got[i])
			}
		}
		after, err := s.RevokedCertificates(ctx, clk.Now().Add(31*24*time.Hour))
		if err != nil || len(after) != 0 {
			t.Fatalf("expired revoked certificates still listed: %d (err %v)", len(after), err)
		}
	})
}

func TestListCertificates_DerivedStatesAndCursors(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		newOrg(t, s, "acme", false)
		for i := 0; i < 9; i++ {
			clk.Advance(time.Second)
			c := issue(t, s)
			if i%3 == 0 {
				if _, err := s.RevokeCertificate(ctx, admin, c.ID, models.ReasonSuperseded); err != nil {
					t.Fatal(err)
				}
			}
		}
		reserve(t, s) // pending
		f := reserve(t, s)
		if err := s.FailCertificate(ctx, system, f.ID, "x"); err != nil {
			t.Fatal(err)
		}
		soon := clk.Now().Add(40 * 24 * time.Hour)
		count := func(t *testing.T, f models.CertFilter) int {
			t.Helper()
			f.Limit = 2
			n := 0
			seen := map[string]bool{}
			for pages := 0; ; pages++ {
				if pages > 50 {
					t.Fatal("cursor does not advance")
				}
				cs, next, err := s.ListCertificates(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if seen[c.ID] {
						t.Fatalf("certificate %s listed twice", c.ID)
					}
					seen[c.ID] = true
				}
				n += len(cs)
				if next == "" {
					return n
				}
				f.Cursor = next
			}
		}
		cases := []struct {
			name string
			f    models.CertFilter
			want int
		}{
			{"default: existing certificates", models.CertFilter{}, 9},
			{"valid", models.CertFilter{State: "valid"}, 6},
			{"revoked", models.CertFilter{State: "revoked"}, 3},
			{"expired", models.CertFilter{State: "expired"}, 0},
			{"pending", models.CertFilter{State: "pending"}, 1},
			{"failed", models.CertFilter{State: "failed"}, 1},
			{"all", models.CertFilter{State: "all"}, 11},
			{"other org", models.CertFilter{Org: "globex"}, 0},
			{"expiring soon", models.CertFilter{State: "valid", ExpiringBefore: &soon}, 6},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := count(t, c.f); got != c.want {
					t.Fatalf("got %d, want %d", got, c.want)
				}
			})
		}
		clk.Advance(31 * 24 * time.Hour)
		if got := count(t, models.CertFilter{State: "expired"}); got != 6 {
			t.Fatalf("after a month: %d expired, want 6", got)
		}
		_, _, err := s.ListCertificates(ctx, models.CertFilter{State: "bogus"})
		wantErr(t, err, models.ErrInvalid)
	})
}

func TestSaveCRL_NumbersOnlyGoUp(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		_, err := s.LatestCRL(ctx, "issuing", models.AnyKey)
		wantErr(t, err, models.ErrNotFound)
		now := s.Now()
		crl := func(n int64) *models.CRL {
			return &models.CRL{Issuer: "issuing", Number: n, ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour), DER: []byte{byte(n)}}
		}
		for _, n := range []int64{1, 2, 5} {
			if err := s.SaveCRL(ctx, crl(n)); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []int64{5, 3} {
			wantErr(t, s.SaveCRL(ctx, crl(n)), models.ErrConflict)
		}
		root := crl(1)
		root.Issuer = "root"
		if err := s.SaveCRL(ctx, root); err != nil {
			t.Fatalf("numbers are per issuer: %v", err)
		}
		got, err := s.LatestCRL(ctx, "issuing", models.AnyKey)
		if err != nil || got.Number != 5 || string(got.DER) != "\x05" {
			t.Fatalf("latest = %+v, %v", got, err)
		}
		// After the issuing CA is replaced its CRLs go on numbering above the
		// old CA's, and each key finds its own newest.
		next := crl(6)
		next.KeyID = "new-key"
		if err := s.SaveCRL(ctx, next); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.SaveCRL(ctx, crl(6)), models.ErrConflict)
		for key, want := range map[string]int64{models.AnyKey: 6, "new-key": 6, "": 5} {
			got, err := s.LatestCRL(ctx, "issuing", key)
			info, ierr := s.LatestCRLInfo(ctx, "issuing", key)
			if err != nil || ierr != nil || got.Number != want || info.Number != want || info.KeyID != got.KeyID || len(info.DER) != 0 {
				t.Fatalf("key %q: latest %+v %v, info %+v %v; want number %d", key, got, err, info, ierr, want)
			}
		}
		_, err = s.LatestCRL(ctx, "issuing", "other-key")
		wantErr(t, err, models.ErrNotFound)
		wantErr(t, s.SaveCRL(ctx, &models.CRL{Issuer: "issuing", Number: 9}), models.ErrInvalid)
	})
}

func TestWithLock_SecondHolderIsRefused(t *testing.T) {
	const key = 4242
	check := func(t *testing.T, a, b *models.Store) {
		inside := make(chan struct{})
		release := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			acquired, err := a.WithLock(ctx, key, func(context.Context) error {
				close(inside)
				<-release
				return nil
			})
			if err == nil && !acquired {
				err = errors.New("first holder did not acquire")
			}
			done <- err
		}()
		<-inside
		ran := false
		acquired, err := b.WithLock(ctx, key, func(context.Context) error { ran = true; return nil })
		if err != nil || acquired || ran {
			t.Fatalf("while held: acquired %v, ran %v, err %v; want refused", acquired, ran, err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := errors.New("boom")
		acquired, err = b.WithLock(ctx, key, func(context.Context) error { return want })
		if !acquired || !errors.Is(err, want) {
			t.Fatalf("after release: acquired %v, err %v; want acquired and fn's error", acquired, err)
		}
		acquired, err = a.WithLock(ctx, key, func(context.Context) error { return nil })
		if !acquired || err != nil {
			t.Fatalf("lock not released after an error: acquired %v, err %v", acquired, err)
		}
	}
	t.Run("postgres, two stores", func(t *testing.T) {
		stores := modelstest.Replicas(t, 2)
		check(t, stores[0], stores[1])
	})
	t.Run("sqlite, one store", func(t *testing.T) {
		s := modelstest.SQLite(t)
		check(t, s, s)
	})
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func upper(s string) string { return strings.ToUpper(s) }
