package models_test

import (
	"fmt"
	"sync"
	"testing"

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
