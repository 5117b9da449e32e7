package models_test

import (
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/signertest/cputime"
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
			newOrg(b, s, "acme", false)
			cpu := cputime.Self()
			for b.Loop() {
				r := submit(b, s)
				now := s.Now()
				c := &models.Certificate{Serial: randSerial(b), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), PrecertDER: []byte("tbs"),
					Org: r.Org, Identities: r.Identities, KeyType: r.KeyType}
				if _, err := s.ApproveAndReserve(ctx, admin, r.ID, "ok", c); err != nil {
					b.Fatal(err)
				}
				if _, err := s.CompleteIssuance(ctx, system, c.ID, []byte("der")); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, cpu)
		})
	}
}
