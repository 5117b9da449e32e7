package modelstest

import (
	"testing"

	"github.com/certdesk/certdesk/models"
)

// RewriteAudit plays an attacker with write access to the database: it
// changes the detail of event seq, recomputes that event's hash and every
// later event's prev_hash and hash with models.AuditHash, and moves the
// audit_heads row to the new last hash. Plain chain verification passes
// afterwards; only a signed checkpoint at or after seq can catch it.
func RewriteAudit(t testing.TB, s *models.Store, seq int64, detail string) {
	t.Helper()
	var evs []models.AuditEvent
	if err := s.DB().Where("seq >= ?", seq).Order("seq ASC").Find(&evs).Error; err != nil {
		t.Fatalf("reading events to rewrite: %v", err)
	}
	if len(evs) == 0 || evs[0].Seq != seq {
		t.Fatalf("no audit event %d to rewrite", seq)
	}
	evs[0].Detail = detail
	prev := evs[0].PrevHash
	for i := range evs {
		e := &evs[i]
		e.PrevHash = prev
		e.Hash = models.AuditHash(e)
		prev = e.Hash
		if err := s.DB().Exec(`UPDATE audit_events SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?`, e.Detail, e.PrevHash, e.Hash, e.Seq).Error; err != nil {
			t.Fatalf("rewriting event %d: %v", e.Seq, err)
		}
	}
	last := evs[len(evs)-1]
	if err := s.DB().Exec(`UPDATE audit_heads SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash).Error; err != nil {
		t.Fatalf("rewriting audit head: %v", err)
	}
}
