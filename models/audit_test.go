package models_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestRecord_AppendsLinkedEventsWithCanonicalDetail(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		if err := s.Record(ctx, admin, "session", "", models.VariableEvent{Kind: "auth.sign_in", Fields: map[string]any{"z": 1, "a": "<b>", "m": []int{2, 1}}}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second + 1234*time.Nanosecond)
		if err := s.Record(ctx, partner, "", "", models.VariableEvent{Kind: "auth.sign_in_failed"}); err != nil {
			t.Fatal(err)
		}
		evs, _, err := s.ListAudit(ctx, models.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Fatalf("got %d events, want 2", len(evs))
		}
		first, second := evs[1], evs[0]
		if first.Seq != 1 || second.Seq != 2 {
			t.Fatalf("seqs = %d, %d; want 1, 2", first.Seq, second.Seq)
		}
		if first.PrevHash != strings.Repeat("0", 64) || second.PrevHash != first.Hash {
			t.Fatal("events are not linked")
		}
		if first.Detail != `{"a":"<b>","m":[2,1],"z":1}` {
			t.Fatalf("detail = %s, want sorted keys and no HTML escaping", first.Detail)
		}
		if second.Detail != "{}" {
			t.Fatalf("nil detail stored as %q, want {}", second.Detail)
		}
		if first.Actor != admin.Subject || first.Role != admin.Role || first.Source != admin.Source {
			t.Fatalf("actor fields = %+v", first)
		}
		if second.Org != "acme" {
			t.Fatalf("org = %q, want the actor's organisation", second.Org)
		}
		if !second.Time.Equal(clk.Now().Truncate(time.Microsecond)) {
			t.Fatalf("time = %v, want the injected clock %v", second.Time, clk.Now())
		}
		for _, e := range evs {
			if models.AuditHash(&e) != e.Hash {
				t.Fatalf("event %d: stored hash does not match its contents as read back", e.Seq)
			}
		}
		v := mustVerify(t, s)
		if v.Events != 2 || v.HeadHash != second.Hash {
			t.Fatalf("verification = %+v", v)
		}
	})
}

// listEvent is an event whose detail is a JSON array, not an object.
type listEvent []string

func (listEvent) Action() string { return "x" }

func TestRecord_BadInput_IsInvalidAndAppendsNothing(t *testing.T) {
	cases := []struct {
		name  string
		actor models.Actor
		ev    models.Event
	}{
		{"no actor", models.Actor{}, models.VariableEvent{Kind: "x"}},
		{"no event", admin, nil},
		{"no action", admin, models.VariableEvent{}},
		{"detail not an object", admin, listEvent{"a"}},
		{"detail not encodable", admin, models.VariableEvent{Kind: "x", Fields: map[string]any{"f": func() {}}}},
	}
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantErr(t, s.Record(ctx, c.actor, "", "", c.ev), models.ErrInvalid)
				if n := auditCount(t, s); n != 0 {
					t.Fatalf("%d events appended", n)
				}
			})
		}
	})
}

func TestRecord_50Concurrent_ChainVerifies(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs <- s.Record(ctx, admin, "certificate", fmt.Sprint(i), models.VariableEvent{Kind: "hsm.sign", Fields: map[string]any{"i": i}})
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		if v := mustVerify(t, s); v.Events != 50 {
			t.Fatalf("chain has %d events, want 50", v.Events)
		}
	})
}

func TestVerifyAudit_Tampering_NamesTheEvent(t *testing.T) {
	// forge returns a well-formed event at seq linked to prev.
	forge := func(seq int64, prev string) models.AuditEvent {
		e := models.AuditEvent{Seq: seq, Time: time.Now().UTC().Truncate(time.Microsecond), Actor: "mallory",
			Action: "certificate.revoke", Detail: "{}", PrevHash: prev}
		e.Hash = models.AuditHash(&e)
		return e
	}
	hashOf := func(t *testing.T, s *models.Store, seq int64) string {
		var e models.AuditEvent
		if err := s.DB().Where("seq = ?", seq).Take(&e).Error; err != nil {
			t.Fatal(err)
		}
		return e.Hash
	}
	cases := []struct {
		name    string
		tamper  func(t *testing.T, s *models.Store)
		wantSeq int64
		want    string
	}{
		{"detail edited", func(t *testing.T, s *models.Store) {
			exec(t, s, `UPDATE audit_events SET detail = '{"i":99}' WHERE seq = 3`)
		}, 3, "event 3 was altered"},
		{"actor edited", func(t *testing.T, s *models.Store) {
			exec(t, s, `UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1`)
		}, 1, "event 1 was altered"},
		{"middle event deleted", func(t *testing.T, s *models.Store) {
			exec(t, s, `DELETE FROM audit_events WHERE seq = 3`)
		}, 3, "event 3 is missing (removed)"},
		{"last event deleted", func(t *testing.T, s *models.Store) {
			exec(t, s, `DELETE FROM audit_events WHERE seq = 5`)
		}, 5, "event 5 is missing (removed)"},
		{"last two events deleted", func(t *testing.T, s *models.Store) {
			exec(t, s, `DELETE FROM audit_events WHERE seq >= 4`)
		}, 4, "event 4 is missing (removed)"},
		{"middle event replaced by a rehashed forgery", func(t *testing.T, s *models.Store) {
			f := forge(3, hashOf(t, s, 2))
			exec(t, s, `DELETE FROM audit_events WHERE seq = 3`)
			if err := s.DB().Create(&f).Error; err != nil {
				t.Fatal(err)
			}
		}, 4, "event 4 does not follow event 3 (inserted or reordered)"},
		{"forged event appended after the head", func(t *testing.T, s *models.Store) {
			f := forge(6, hashOf(t, s, 5))
			if err := s.DB().Create(&f).Error; err != nil {
				t.Fatal(err)
			}
		}, 6, "event 6 is beyond the chain head (event 5): inserted"},
		{"last event rehashed", func(t *testing.T, s *models.Store) {
			var e models.AuditEvent
			if err := s.DB().Where("seq = ?", 5).Take(&e).Error; err != nil {
				t.Fatal(err)
			}
			e.Detail = `{"i":42}`
			e.Hash = models.AuditHash(&e)
			exec(t, s, `UPDATE audit_events SET detail = ?, hash = ? WHERE seq = 5`, e.Detail, e.Hash)
		}, 5, "event 5 was altered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			modelstest.Each(t, func(t *testing.T, s *models.Store) {
				for i := 0; i < 5; i++ {
					if err := s.Record(ctx, admin, "config", "", models.VariableEvent{Kind: "config.change", Fields: map[string]any{"i": i}}); err != nil {
						t.Fatal(err)
					}
				}
				mustVerify(t, s)
				c.tamper(t, s)
				v, err := s.VerifyAudit(ctx)
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

func exec(t *testing.T, s *models.Store, sql string, args ...any) {
	t.Helper()
	res := s.DB().Exec(sql, args...)
	if res.Error != nil {
		t.Fatalf("%s: %v", sql, res.Error)
	}
	if res.RowsAffected == 0 {
		t.Fatalf("%s: changed nothing", sql)
	}
}

// bulkAudit appends n valid events directly, for size tests.
func bulkAudit(t *testing.T, s *models.Store, n int) {
	t.Helper()
	prev := strings.Repeat("0", 64)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]models.AuditEvent, 0, 500)
	flush := func() {
		if err := s.DB().CreateInBatches(batch, 500).Error; err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := 1; i <= n; i++ {
		actor := "user-a"
		if i%2 == 0 {
			actor = "user-b"
		}
		e := models.AuditEvent{Seq: int64(i), Time: base.Add(time.Duration(i) * time.Second), Actor: actor,
			Org: "acme", Action: "hsm.sign", ObjectID: fmt.Sprint(i), Detail: "{}", PrevHash: prev}
		e.Hash = models.AuditHash(&e)
		prev = e.Hash
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	exec(t, s, "UPDATE audit_heads SET seq = ?, hash = ? WHERE id = 1", n, prev)
}

func TestStreamAudit_10kEvents_AllInOrder(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		const n = 10000
		bulkAudit(t, s, n)
		var (
			count int
			last  int64
		)
		err := s.StreamAudit(ctx, models.AuditFilter{}, func(e *models.AuditEvent) error {
			if e.Seq != last+1 {
				return fmt.Errorf("event %d after %d", e.Seq, last)
			}
			last = e.Seq
			count++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("streamed %d events, want %d", count, n)
		}
		count = 0
		err = s.StreamAudit(ctx, models.AuditFilter{Actor: "user-b"}, func(e *models.AuditEvent) error {
			if e.Actor != "user-b" {
				return fmt.Errorf("event %d by %s", e.Seq, e.Actor)
			}
			count++
			return nil
		})
		if err != nil || count != n/2 {
			t.Fatalf("filtered stream: %d events, err %v; want %d", count, err, n/2)
		}
		stop := errors.New("stop")
		count = 0
		err = s.StreamAudit(ctx, models.AuditFilter{}, func(*models.AuditEvent) error {
			count++
			if count == 1500 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || count != 1500 {
			t.Fatalf("callback error: got %v after %d events", err, count)
		}
		if v := mustVerify(t, s); v.Events != n {
			t.Fatalf("verified %d events, want %d", v.Events, n)
		}
	})
}

func TestListAudit_FiltersAndCursors(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		bulkAudit(t, s, 120)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		from, to := base.Add(11*time.Second), base.Add(21*time.Second)
		cases := []struct {
			name string
			f    models.AuditFilter
			want int
		}{
			{"all", models.AuditFilter{}, 120},
			{"actor", models.AuditFilter{Actor: "user-a"}, 60},
			{"org", models.AuditFilter{Org: "acme"}, 120},
			{"other org", models.AuditFilter{Org: "globex"}, 0},
			{"action", models.AuditFilter{Action: "hsm.sign"}, 120},
			{"object", models.AuditFilter{ObjectID: "7"}, 1},
			{"time range, from inclusive, to exclusive", models.AuditFilter{From: &from, To: &to}, 10},
			{"actor and time", models.AuditFilter{Actor: "user-b", From: &from, To: &to}, 5},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var (
					got  []models.AuditEvent
					f    = c.f
					seen = map[int64]bool{}
				)
				f.Limit = 7
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatal("cursor does not advance")
					}
					evs, next, err := s.ListAudit(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					if len(evs) > 7 {
						t.Fatalf("page of %d events, limit 7", len(evs))
					}
					got = append(got, evs...)
					if next == "" {
						break
					}
					f.Cursor = next
				}
				if len(got) != c.want {
					t.Fatalf("got %d events, want %d", len(got), c.want)
				}
				for i, e := range got {
					if seen[e.Seq] {
						t.Fatalf("event %d listed twice", e.Seq)
					}
					seen[e.Seq] = true
					if i > 0 && e.Seq >= got[i-1].Seq {
						t.Fatal("not newest first")
					}
				}
			})
		}
		t.Run("default and maximum page size", func(t *testing.T) {
			evs, next, err := s.ListAudit(ctx, models.AuditFilter{})
			if err != nil || len(evs) != 50 || next == "" {
				t.Fatalf("default page: %d events, next %q, err %v", len(evs), next, err)
			}
			evs, _, err = s.ListAudit(ctx, models.AuditFilter{Limit: 100000})
			if err != nil || len(evs) != 120 {
				t.Fatalf("huge limit: %d events, err %v", len(evs), err)
			}
		})
		t.Run("malformed cursor", func(t *testing.T) {
			_, _, err := s.ListAudit(ctx, models.AuditFilter{Cursor: "not a cursor!"})
			wantErr(t, err, models.ErrInvalid)
		})
	})
}

func TestVerifyAudit_WhileAppending_NoFalseAlarm(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		done := make(chan error, 1)
		go func() {
			for i := 0; i < 200; i++ {
				if err := s.Record(ctx, admin, "", "", models.VariableEvent{Kind: "hsm.sign"}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for running := true; running; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				running = false
			default:
			}
			mustVerify(t, s)
		}
		if v := mustVerify(t, s); v.Events != 200 {
			t.Fatalf("verified %d events, want 200", v.Events)
		}
	})
}
