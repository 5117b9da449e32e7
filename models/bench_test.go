package models_test

import (
	"crypto/rand"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/serial"
)

// BenchmarkIssuanceTransactions times the store's three write transactions
// of an issuance — the submission, the approval with its reservation, the
// recording of the signed certificate — on each database, without HTTP or
// an HSM: what the database work of one certificate costs. It reports the
// wall time per issuance and this process's CPU time per issuance.
func BenchmarkIssuanceTransactions(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *models.Store
	}{{"sqlite", modelstest.SQLite}, {"postgres", modelstest.Postgres}} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			o := &models.Organization{Slug: "acme", Name: "Acme", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"}, MaxValidityDays: 90}
			if err := s.CreateOrg(ctx, admin, o); err != nil {
				b.Fatal(err)
			}
			cpu0 := processCPU()
			b.ResetTimer()
			for b.Loop() {
				r := &models.Request{Org: "acme", CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...", KeyType: "ECDSA P-256",
					Identities: models.StringList{"spiffe://example.org/partners/acme/billing"}, ValidityDays: 30}
				if err := s.SubmitRequest(ctx, partner, r); err != nil {
					b.Fatal(err)
				}
				sn, err := serial.FromBig(new(big.Int).SetBytes(randBytes(b, 16)))
				if err != nil {
					b.Fatal(err)
				}
				now := s.Now()
				c := &models.Certificate{Serial: sn.String(), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), PrecertDER: []byte("tbs")}
				if _, err := s.ApproveAndReserve(ctx, admin, r.ID, "ok", c); err != nil {
					b.Fatal(err)
				}
				if _, err := s.CompleteIssuance(ctx, system, c.ID, []byte("der")); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is this process's CPU time so far (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func randBytes(b *testing.B, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		b.Fatal(err)
	}
	return p
}
