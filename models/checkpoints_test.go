package models_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// goodSig and badSig stand in for signature checks (signer's tests cover
// real signatures; handlers' tests the two together with SoftHSM).
func goodSig(*models.AuditCheckpoint) error { return nil }

func badSigAt(seq int64) func(*models.AuditCheckpoint) error {
	return func(cp *models.AuditCheckpoint) error {
		if cp.Seq == seq {
			return errors.New("bad")
		}
		return nil
	}
}

// recordN appends n config.change events.
func recordN(t *testing.T, s *models.Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.Record(ctx, admin, "config", "", models.VariableEvent{Kind: "config.change", Fields: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpointHead saves an (unsigned-in-fact) checkpoint of the current head.
func checkpointHead(t *testing.T, s *models.Store) *models.AuditCheckpoint {
	t.Helper()
	seq, hash, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp := &models.AuditCheckpoint{Seq: seq, Hash: hash, SignedAt: newClock().Now(), Signature: []byte("sig"), KeyID: fmt.Sprintf("%064x", 1)}
	if err := s.SaveCheckpoint(ctx, cp); err != nil {
		t.Fatalf("SaveCheckpoint: %v", err)
	}
	return cp
}

func TestSaveCheckpoint_RecordsEventAndVerifies(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		recordN(t, s, 3)
		cp := checkpointHead(t, s)
		if cp.Seq != 3 || cp.ID == 0 {
			t.Fatalf("checkpoint = seq %d id %d, want seq 3 and an id", cp.Seq, cp.ID)
		}
		wantLastAudit(t, s, models.ActionAuditCheckpoint, models.Actor{Subject: "system:audit", Role: models.RoleSystem, Source: "checkpointer"}, fmt.Sprint(cp.ID))
		recordN(t, s, 2)
		v, err := s.VerifyAuditWith(ctx, goodSig)
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK || v.Events != 6 || v.Checkpoints != 1 || v.LastCheckpointSeq != 3 {
			t.Fatalf("verification = %+v, want OK, 6 events, 1 checkpoint at 3", v)
		}
		cps, err := s.Checkpoints(ctx)
		if err != nil || len(cps) != 1 || string(cps[0].Signature) != "sig" || !cps[0].SignedAt.Equal(cp.SignedAt) {
			t.Fatalf("Checkpoints = %+v, %v", cps, err)
		}
	})
}

func TestSaveCheckpoint_Invalid_IsRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		recordN(t, s, 2)
		_, hash, _ := s.AuditHead(ctx)
		ok := models.AuditCheckpoint{Seq: 2, Hash: hash, SignedAt: newClock().Now(), Signature: []byte("sig"), KeyID: fmt.Sprintf("%064x", 1)}
		cases := []struct {
			name   string
			change func(cp *models.AuditCheckpoint)
			want   error
		}{
			{"hash of another event", func(cp *models.AuditCheckpoint) { cp.Seq = 1 }, models.ErrConflict},
			{"event that does not exist", func(cp *models.AuditCheckpoint) { cp.Seq = 9 }, models.ErrInvalid},
			{"no signature", func(cp *models.AuditCheckpoint) { cp.Signature = nil }, models.ErrInvalid},
			{"short key id", func(cp *models.AuditCheckpoint) { cp.KeyID = "ab" }, models.ErrInvalid},
			{"signed_at below the microsecond", func(cp *models.AuditCheckpoint) { cp.SignedAt = cp.SignedAt.Add(1) }, models.ErrInvalid},
		}
		for _, c := range cases {
			cp := ok
			c.change(&cp)
			if err := s.SaveCheckpoint(ctx, &cp); !errors.Is(err, c.want) {
				t.Errorf("%s: SaveCheckpoint = %v, want %v", c.name, err, c.want)
			}
		}
		cp := ok
		wantErr(t, s.SaveCheckpoint(ctx, &cp), nil)
		cp = ok
		wantErr(t, s.SaveCheckpoint(ctx, &cp), models.ErrConflict) // same seq twice
	})
}

func TestCheckpointDue_OnlyWhenTheChainMovedPastTheLastCheckpoint(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		due := func(want bool) {
			t.Helper()
			got, err := s.CheckpointDue(ctx)
			if err != nil || got != want {
				t.Fatalf("CheckpointDue = %v, %v; want %v", got, err, want)
			}
		}
		due(false) // empty log
		recordN(t, s, 1)
		due(true)
		checkpointHead(t, s)
		due(false) // only the checkpoint's own event since
		recordN(t, s, 1)
		due(true)
	})
}

func TestVerifyAuditWith_RewrittenOrForged_IsCaught(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, s *models.Store)
		verify  func(*models.AuditCheckpoint) error
		wantSeq int64
		want    string
	}{
		{"chain rewritten before the checkpoint", func(t *testing.T, s *models.Store) {
			modelstest.RewriteAudit(t, s, 2, `{"i":99}`)
		}, nil, 4, "checkpoint 1 (event 4) does not match the chain: the log was rewritten"},
		{"chain cut back below the checkpoint and rebuilt", func(t *testing.T, s *models.Store) {
			exec(t, s, `DELETE FROM audit_events WHERE seq > 2`)
			var e models.AuditEvent
			if err := s.DB().Where("seq = 2").Take(&e).Error; err != nil {
				t.Fatal(err)
			}
			exec(t, s, `UPDATE audit_heads SET seq = 2, hash = ? WHERE id = 1`, e.Hash)
		}, nil, 4, "checkpoint 1 (event 4) does not match the chain: the log was rewritten"},
		{"checkpoint with a bad signature", func(t *testing.T, s *models.Store) {}, badSigAt(4), 4, "checkpoint 1 has a bad signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			modelstest.Each(t, func(t *testing.T, s *models.Store) {
				recordN(t, s, 4)
				checkpointHead(t, s)
				recordN(t, s, 2)
				c.tamper(t, s)
				v, err := s.VerifyAuditWith(ctx, c.verify)
				if err != nil {
					t.Fatal(err)
				}
				if v.OK || v.FirstBadSeq != c.wantSeq || v.Problem != c.want {
					t.Fatalf("verification = ok %v seq %d %q; want seq %d %q", v.OK, v.FirstBadSeq, v.Problem, c.wantSeq, c.want)
				}
			})
		})
	}
}
