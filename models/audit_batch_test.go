package models_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func hsmSign(i int) models.Event {
	return models.VariableEvent{Kind: "hsm.sign", Fields: map[string]any{"i": i}}
}

func TestAppendAudits_SeveralEventsInOneTransaction_LinkedInOrder(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		if err := s.Record(ctx, admin, "test", "", hsmSign(0)); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAll(ctx, admin, hsmSign(1), hsmSign(2), hsmSign(3)); err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, admin, "test", "", hsmSign(4)); err != nil {
			t.Fatal(err)
		}
		if v := mustVerify(t, s); v.Events != 5 {
			t.Fatalf("chain has %d events, want 5", v.Events)
		}
		evs, _, err := s.ListAudit(ctx, models.AuditFilter{Action: "hsm.sign", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs { // newest first
			if want := fmt.Sprintf(`{"i":%d}`, e.Seq-1); e.Detail != want {
				t.Errorf("event %d has detail %s, want %s", e.Seq, e.Detail, want)
			}
		}
	})
}

func TestAppendAudits_AfterARolledBackAppend_LinksToTheCommittedHead(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		for i := range 3 {
			if err := s.Record(ctx, admin, "test", "", hsmSign(i)); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordThenRollBack(ctx, admin, hsmSign(100+i)); err != nil {
				t.Fatal(err)
			}
		}
		if v := mustVerify(t, s); v.Events != 3 {
			t.Fatalf("chain has %d events, want 3 (the rolled-back ones left nothing)", v.Events)
		}
	})
}

func TestAppendAudits_TwoReplicasInterleaved_ChainVerifies(t *testing.T) {
	replicas := modelstest.Replicas(t, 2)
	const perReplica = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*perReplica*2)
	for r, s := range replicas {
		for i := range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%5 == 0 {
					errs <- s.RecordThenRollBack(ctx, admin, hsmSign(-1))
				}
				if i%2 == 0 {
					errs <- s.RecordAll(ctx, admin, hsmSign(r*1000+i), hsmSign(r*1000+i+500))
					return
				}
				errs <- s.Record(ctx, admin, "test", "", hsmSign(r*1000+i))
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("appending: %v", err)
		}
	}
	// Half the appends carry two events.
	want := int64(2 * (perReplica/2*2 + perReplica/2))
	for _, s := range replicas {
		if v := mustVerify(t, s); v.Events != want {
			t.Fatalf("chain has %d events, want %d", v.Events, want)
		}
	}
}

// On PostgreSQL the busiest transactions send their audit append with their
// COMMIT. Interleaved with ordinary appends, rolled-back ones and another
// replica's, every committed transaction's events are in the chain, linked,
// and a rolled-back one left nothing, its own write included.
func TestAppendAtCommit_TwoReplicasInterleaved_ChainVerifiesNothingLost(t *testing.T) {
	replicas := modelstest.Replicas(t, 2)
	const perReplica = 24
	var wg sync.WaitGroup
	errs := make(chan error, 2*perReplica)
	for r, s := range replicas {
		for i := range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := r*1000 + i
				switch i % 4 {
				case 0:
					errs <- s.Record(ctx, admin, "test", "", hsmSign(n))
				case 1:
					errs <- s.RecordAtCommit(ctx, admin, n, true, hsmSign(-1))
				default:
					errs <- s.RecordAtCommit(ctx, admin, n, false, hsmSign(n), hsmSign(n+500))
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("appending: %v", err)
		}
	}
	// Per replica: 6 ordinary appends of one event, 12 at commit of two.
	want := int64(2 * (perReplica/4 + perReplica/2*2))
	for _, s := range replicas {
		if v := mustVerify(t, s); v.Events != want {
			t.Fatalf("chain has %d events, want %d", v.Events, want)
		}
	}
	var keys int64
	if err := replicas[0].DB().Model(&models.BlockedKey{}).Count(&keys).Error; err != nil {
		t.Fatal(err)
	}
	if keys != 2*perReplica/2 {
		t.Fatalf("%d keys written, want %d: a rolled-back transaction kept its write, or a committed one lost it", keys, 2*perReplica/2)
	}
}

// When another replica moved the head since this one last wrote, the
// append sent with the COMMIT finds it, the transaction is rolled back and
// run again with the head read under its lock: nothing is written twice.
// For a while then, appends go the ordinary way, as another replica is
// appending too; after it, with the COMMIT again.
func TestAppendAtCommit_HeadMovedByAnotherReplica_RunsAgainOnce(t *testing.T) {
	replicas := modelstest.Replicas(t, 2)
	a, b := replicas[0], replicas[1]
	clock := modelstest.NewClock(time.Now())
	a.Now = clock.Now
	if err := a.RecordAtCommit(ctx, admin, 1, false, hsmSign(1)); err != nil {
		t.Fatal(err)
	}
	sent := a.AppendsSentWithCommit()
	if err := b.Record(ctx, admin, "test", "", hsmSign(2)); err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 4; i++ {
		if err := a.RecordAtCommit(ctx, admin, i, false, hsmSign(i)); err != nil {
			t.Fatalf("appending after the head moved: %v", err)
		}
	}
	if got := a.AppendsSentWithCommit() - sent; got != 0 {
		t.Errorf("%d appends sent with a COMMIT after the head moved, want 0 (the ordinary way)", got)
	}
	clock.Advance(time.Minute)
	if err := a.RecordAtCommit(ctx, admin, 5, false, hsmSign(5)); err != nil {
		t.Fatal(err)
	}
	if got := a.AppendsSentWithCommit() - sent; got != 1 {
		t.Errorf("%d appends sent with a COMMIT a minute later, want 1", got)
	}
	if v := mustVerify(t, a); v.Events != 5 {
		t.Fatalf("chain has %d events, want 5", v.Events)
	}
	var keys int64
	if err := a.DB().Model(&models.BlockedKey{}).Count(&keys).Error; err != nil || keys != 4 {
		t.Fatalf("%d keys written (%v), want 4", keys, err)
	}
}
