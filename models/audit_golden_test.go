package models_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// goldenChain reads testdata/audit_chain_v1.json: a chain of one event of
// every kind (33 events, ending with a checkpoint event), exported with its
// hashes from a store that still wrote audit details as map literals.
func goldenChain(t *testing.T) []models.AuditEvent {
	t.Helper()
	b, err := os.ReadFile("testdata/audit_chain_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var evs []models.AuditEvent
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("testdata/audit_chain_v1.json: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("testdata/audit_chain_v1.json holds no events")
	}
	return evs
}

// insertChain stores evs as they are, rows and head, bypassing the recorder.
func insertChain(t *testing.T, s *models.Store, evs []models.AuditEvent) {
	t.Helper()
	if err := s.DB().CreateInBatches(evs, 100).Error; err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	exec(t, s, "UPDATE audit_heads SET seq = ?, hash = ? WHERE id = 1", last.Seq, last.Hash)
}

func TestAuditChain_WrittenByEarlierRelease_StillVerifies(t *testing.T) {
	evs := goldenChain(t)
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		insertChain(t, s, evs)
		v := mustVerify(t, s)
		if v.Events != int64(len(evs)) || v.HeadHash != evs[len(evs)-1].Hash {
			t.Fatalf("verification = %+v, want %d events ending in %s", v, len(evs), evs[len(evs)-1].Hash)
		}
		got, _, err := s.ListAudit(ctx, models.AuditFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			want := evs[e.Seq-1]
			if e.Detail != want.Detail || e.Hash != want.Hash || models.AuditHash(&e) != want.Hash {
				t.Fatalf("event %d read back as %s (hash %s), stored %s (hash %s)", e.Seq, e.Detail, models.AuditHash(&e), want.Detail, want.Hash)
			}
		}
	})
}
