package audit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/audit"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// recordEvents appends n config.change events.
func recordEvents(t *testing.T, s *models.Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.Record(bg, admin, "config", "", models.VariableEvent{Kind: "config.change", Fields: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// verifyAudit verifies the chain and the checkpoints' signatures against
// the issuing certificate of ca.
func verifyAudit(t *testing.T, s *models.Store, ca *testCA) *models.AuditVerification {
	t.Helper()
	v, err := s.VerifyAuditWith(bg, audit.VerifyWith(ca.CA.Issuer.Certificate()))
	if err != nil {
		t.Fatalf("VerifyAuditWith: %v", err)
	}
	return v
}

func TestCheckpointer_SignsMovedHeadOnce_VerifiesWithIssuingCert(t *testing.T) {
	ca := hsmCA(t, "checkpoint")
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		cp := &audit.Checkpointer{Store: s, Issuer: ca.CA.Issuer, Log: testLogs}
		tick := func(want bool) {
			t.Helper()
			saved, err := cp.Tick(bg)
			if err != nil || saved != want {
				t.Fatalf("Tick = %v, %v; want %v", saved, err, want)
			}
		}
		tick(false) // empty log: nothing to sign
		recordEvents(t, s, 3)
		tick(true)
		tick(false) // only the checkpoint's own event since
		recordEvents(t, s, 2)
		tick(true)

		v := verifyAudit(t, s, ca)
		// 3 events, checkpoint of 3, its event 4, 2 events (5, 6),
		// checkpoint of 6, its event 7.
		if !v.OK || v.Events != 7 || v.Checkpoints != 2 || v.LastCheckpointSeq != 6 {
			t.Fatalf("verification = %+v; want OK, 7 events, 2 checkpoints, last at 6", v)
		}
		cps, err := s.Checkpoints(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cps {
			if err := signer.VerifyCheckpoint(ca.CA.Issuer.Certificate(), c.Seq, c.Hash, c.SignedAt, c.Signature); err != nil {
				t.Errorf("checkpoint %d read back does not verify: %v", c.ID, err)
			}
		}
	})
}

func TestCheckpoint_ChainRewrittenWithDatabaseAccess_IsCaughtOnlyByCheckpoint(t *testing.T) {
	ca := hsmCA(t, "checkpoint")
	cases := []struct {
		name       string
		checkpoint bool
		wantOK     bool
		wantSeq    int64
		want       string
	}{
		// Without a checkpoint the rebuilt chain is consistent: this is
		// the attack checkpoints exist for.
		{"no checkpoint: the rewrite goes unnoticed", false, true, 0, ""},
		{"signed checkpoint: the rewrite is caught", true, false, 4, "checkpoint 1 (event 4) does not match the chain: the log was rewritten"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			modelstest.Each(t, func(t *testing.T, s *models.Store) {
				recordEvents(t, s, 4)
				if c.checkpoint {
					cp := &audit.Checkpointer{Store: s, Issuer: ca.CA.Issuer, Log: testLogs}
					if err := cp.CheckpointNow(bg); err != nil {
						t.Fatalf("CheckpointNow: %v", err)
					}
				}
				recordEvents(t, s, 2)
				if v := verifyAudit(t, s, ca); !v.OK {
					t.Fatalf("before the rewrite: %+v", v)
				}
				modelstest.RewriteAudit(t, s, 2, `{"i":"rewritten"}`)
				for _, verify := range []func(*models.AuditCheckpoint) error{nil, audit.VerifyWith(ca.CA.Issuer.Certificate())} {
					v, err := s.VerifyAuditWith(bg, verify)
					if err != nil {
						t.Fatal(err)
					}
					if v.OK != c.wantOK || v.FirstBadSeq != c.wantSeq || v.Problem != c.want {
						t.Fatalf("after the rewrite (signatures checked: %v): ok %v seq %d %q; want ok %v seq %d %q",
							verify != nil, v.OK, v.FirstBadSeq, v.Problem, c.wantOK, c.wantSeq, c.want)
					}
				}
			})
		})
	}
}

func TestCheckpoint_ForgedRow_HasBadSignature(t *testing.T) {
	ca := hsmCA(t, "checkpoint")
	other := hsmCA(t, "checkpoint-other")
	realKeyID, err := signer.KeyID(ca.CA.Issuer.Certificate().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		keyID func(otherKeyID string) string
	}{
		{"signed by another key, its own key id", func(k string) string { return k }},
		{"signed by another key, claiming the issuing key id", func(string) string { return realKeyID }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			modelstest.Each(t, func(t *testing.T, s *models.Store) {
				recordEvents(t, s, 3)
				seq, hash, err := s.AuditHead(bg)
				if err != nil {
					t.Fatal(err)
				}
				at := time.Now().UTC().Truncate(time.Microsecond)
				sig, otherKeyID, err := other.CA.Issuer.SignCheckpoint(seq, hash, at)
				if err != nil {
					t.Fatal(err)
				}
				// An attacker with database access writes the row directly.
				forged := &models.AuditCheckpoint{Seq: seq, Hash: hash, SignedAt: at, Signature: sig, KeyID: c.keyID(otherKeyID)}
				if err := s.SaveCheckpoint(bg, forged); err != nil {
					t.Fatal(err)
				}
				v := verifyAudit(t, s, ca)
				if v.OK || v.FirstBadSeq != seq || v.Problem != "checkpoint 1 has a bad signature" {
					t.Fatalf("verification = ok %v seq %d %q; want seq %d %q", v.OK, v.FirstBadSeq, v.Problem, seq, "checkpoint 1 has a bad signature")
				}
			})
		})
	}
}

func TestCheckpointer_TwoReplicasOnePostgres_OneCheckpointPerHead(t *testing.T) {
	ca := hsmCA(t, "checkpoint")
	stores := modelstest.Replicas(t, 2)
	storeA, storeB := stores[0], stores[1]
	replicas := []*audit.Checkpointer{
		{Store: storeA, Issuer: ca.CA.Issuer, Log: testLogs},
		{Store: storeB, Issuer: ca.CA.Issuer, Log: testLogs},
	}
	const rounds = 5
	for r := 1; r <= rounds; r++ {
		recordEvents(t, storeA, 1)
		var wg sync.WaitGroup
		for _, c := range replicas {
			for i := 0; i < 3; i++ { // several ticks per replica, all at once
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := c.Tick(bg); err != nil {
						t.Errorf("Tick: %v", err)
					}
				}()
			}
		}
		wg.Wait()
		cps, err := storeB.Checkpoints(bg)
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) != r {
			t.Fatalf("round %d: %d checkpoints, want %d (one per head)", r, len(cps), r)
		}
	}
	if v := verifyAudit(t, storeB, ca); !v.OK || v.Checkpoints != rounds {
		t.Fatalf("verification = %+v; want OK with %d checkpoints", v, rounds)
	}
}
