package notify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestExpiryScan_ClockJumps_OneNoticePerThresholdAndRecipient(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, st *models.Store) {
		ctx := context.Background()
		clk := modelstest.NewClock(start)
		st.Now = clk.Now
		mail, h := startSMTP(t), startHook(t, clk.Now, 0)
		svc := newService(t, testConfig(mail, h), st, clk.Now)
		startDelivery(t, svc)
		newOrg(t, st, nil) // the default thresholds
		c := issueCert(t, st, start.Add(40*day))
		recipients := []string{"pki@acme.example", "ops@acme.example", "alice@pki.example"}

		steps := []struct {
			name      string
			advance   time.Duration
			noticed   int
			threshold int // of the newest webhook event; 0: none expected yet
			mails     int // in total so far, per recipient
		}{
			{"40 days left: nothing", 0, 0, 0, 0},
			{"29 days left: the 30-day notice", 11 * day, 1, 30, 1},
			{"scanned again: no duplicate", 0, 0, 30, 1},
			{"an hour later: still none", time.Hour, 0, 30, 1},
			{"13 days left: the 14-day notice", 16*day - time.Hour, 1, 14, 2},
		}
		for _, step := range steps {
			clk.Advance(step.advance)
			n, err := svc.ScanExpiries(ctx)
			if err != nil {
				t.Fatalf("%s: ScanExpiries: %v", step.name, err)
			}
			if n != step.noticed {
				t.Fatalf("%s: noticed %d, want %d", step.name, n, step.noticed)
			}
			wantEvents := 0
			if step.threshold > 0 {
				wantEvents = step.mails
			}
			eventually(t, step.name+": deliveries", func() bool {
				return len(h.Events()) >= wantEvents && len(mail.Messages()) >= step.mails*len(recipients)
			})
			settle()
			if got := len(h.Events()); got != wantEvents {
				t.Fatalf("%s: %d webhook events, want %d", step.name, got, wantEvents)
			}
			for _, r := range recipients {
				if got := len(mail.To(r)); got != step.mails {
					t.Fatalf("%s: %d e-mails to %s, want %d", step.name, got, r, step.mails)
				}
			}
			if step.threshold == 0 {
				continue
			}
			evs := h.Events()
			ev := evs[len(evs)-1]
			var d ExpiryData
			eventData(t, ev, &d)
			if ev.Type != EventCertificateExpiring || d.CertificateID != c.ID || d.ThresholdDays != step.threshold || d.Serial != c.Serial {
				t.Fatalf("%s: webhook event %s %+v, want certificate.expiring of %s at %d days", step.name, ev.Type, d, c.ID, step.threshold)
			}
			msgs := mail.To("ops@acme.example")
			m := msgs[len(msgs)-1]
			left := d.DaysLeft
			if !strings.Contains(m.Subject, "expires in") || !strings.Contains(m.Text, c.Serial) ||
				!strings.Contains(m.Text, "https://certdesk.example/certificates/"+c.ID) || m.From != "certdesk@pki.example" {
				t.Fatalf("%s: e-mail from %s %q:\n%s", step.name, m.From, m.Subject, m.Text)
			}
			if left != int((c.NotAfter.Sub(clk.Now())+day-1)/day) {
				t.Fatalf("%s: days_left = %d", step.name, left)
			}
		}
		notices, err := st.ExpiryNotices(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(notices) != 2 || notices[0].ThresholdDays != 30 || notices[1].ThresholdDays != 14 {
			t.Fatalf("recorded notices %+v, want 30 and 14", notices)
		}
	})
}

func TestExpiryScan_OrganisationThresholds_AndRevokedSkipped(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, st *models.Store) {
		ctx := context.Background()
		clk := modelstest.NewClock(start)
		st.Now = clk.Now
		svc := newService(t, testConfig(nil), st, clk.Now)
		newOrg(t, st, []int{45, 3})
		c := issueCert(t, st, start.Add(40*day))
		revoked := issueCert(t, st, start.Add(40*day))
		if _, err := st.RevokeCertificate(ctx, admin, revoked.ID, 1); err != nil {
			t.Fatal(err)
		}
		for i, want := range []int{45} {
			n, err := svc.ScanExpiries(ctx)
			if err != nil || n != 1 {
				t.Fatalf("scan %d: noticed %d, %v; want 1", i, n, err)
			}
			got, _ := st.ExpiryNotices(ctx, c.ID)
			if len(got) != 1 || got[0].ThresholdDays != want {
				t.Fatalf("notices %+v, want the organisation's %d-day threshold", got, want)
			}
		}
		if got, _ := st.ExpiryNotices(ctx, revoked.ID); len(got) != 0 {
			t.Fatalf("a revoked certificate was noticed: %+v", got)
		}
		clk.Advance(20 * day) // 20 days left: the organisation has no 30, 14 or 7
		if n, _ := svc.ScanExpiries(ctx); n != 0 {
			t.Fatalf("noticed %d at 20 days left with thresholds 45 and 3", n)
		}
	})
}

func TestExpiryScan_TwoReplicasOnePostgres_OneNoticePerThreshold(t *testing.T) {
	ctx := context.Background()
	clk := modelstest.NewClock(start)
	mail, h := startSMTP(t), startHook(t, clk.Now, 0)
	var svcs []*Service
	stores := modelstest.Replicas(t, 2)
	for _, st := range stores {
		st.Now = clk.Now
		svcs = append(svcs, newService(t, testConfig(mail, h), st, clk.Now))
	}
	newOrg(t, stores[0], nil)
	var certs []*models.Certificate
	for range 5 {
		certs = append(certs, issueCert(t, stores[0], start.Add(29*day)))
	}
	for _, s := range svcs {
		startDelivery(t, s)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := svcs[i%2].ScanExpiries(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Scans that found the lock taken did nothing; scan until all are done.
	for range 3 {
		n, err := svcs[1].ScanExpiries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != len(certs) {
		t.Fatalf("two replicas noticed %d times for %d certificates, want once each", total, len(certs))
	}
	want := len(certs) * 3 // two contacts and one admin
	eventually(t, "deliveries from both replicas", func() bool {
		return len(mail.Messages()) >= want && len(h.Events()) >= len(certs)
	})
	settle()
	if got := len(mail.Messages()); got != want {
		t.Fatalf("%d e-mails delivered by two replicas, want %d (each exactly once)", got, want)
	}
	seen := map[string]bool{}
	for _, ev := range h.Events() {
		if seen[ev.ID] {
			t.Fatalf("event %s delivered twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	if len(seen) != len(certs) {
		t.Fatalf("%d webhook events, want %d", len(seen), len(certs))
	}
}

func TestDelivery_Receiver500_RetriedWithBackoffWhileOthersAreDelivered(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, st *models.Store) {
		ctx := context.Background()
		mail := startSMTP(t)
		failing, good := startHook(t, time.Now, 2), startHook(t, time.Now, 0)
		svc := newService(t, testConfig(mail, failing, good), st, time.Now)
		startDelivery(t, svc)
		newOrg(t, st, nil)
		r := submit(t, st)
		svc.RequestSubmitted(ctx, r)

		eventually(t, "the good webhook and the e-mail", func() bool {
			return len(good.Events()) == 1 && len(mail.Messages()) == 1
		})
		if n := len(failing.Events()); n != 0 {
			t.Fatalf("the failing receiver accepted %d events before the others were served", n)
		}
		eventually(t, "the failing webhook to succeed", func() bool { return len(failing.Events()) == 1 })
		at := failing.Attempts()
		if len(at) != 3 {
			t.Fatalf("failing receiver got %d attempts, want 3 (two 500s then success)", len(at))
		}
		if gap := at[1].Sub(at[0]); gap < 200*time.Millisecond {
			t.Errorf("first retry after %v, want at least retry_backoff 200ms", gap)
		}
		if gap := at[2].Sub(at[1]); gap < 400*time.Millisecond {
			t.Errorf("second retry after %v, want at least twice retry_backoff", gap)
		}
		if failing.Events()[0].ID != good.Events()[0].ID {
			t.Error("the two receivers got different event ids for one event")
		}
		// The receiver has the event before the worker records that it
		// was delivered: wait for the record.
		var ns []models.Notification
		eventually(t, "every notification marked sent", func() bool {
			var err error
			if ns, err = st.ListNotifications(ctx, 0); err != nil {
				t.Fatal(err)
			}
			for _, n := range ns {
				if n.SentAt == nil {
					return false
				}
			}
			return true
		})
		for _, n := range ns {
			if n.Recipient == failing.URL && n.Attempts != 3 {
				t.Errorf("failing receiver's notification has %d attempts, want 3", n.Attempts)
			}
		}
	})
}

func TestDelivery_4xxOrTooManyFailures_GivenUp(t *testing.T) {
	tests := []struct {
		name     string
		fail     int // 500s before success
		attempts int // max_attempts
		wantTry  int
	}{
		{"three 500s with max_attempts 2", 3, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := modelstest.SQLite(t)
			h := startHook(t, time.Now, tt.fail)
			cfg := testConfig(nil, h)
			cfg.MaxAttempts, cfg.RetryBackoff = tt.attempts, 50*time.Millisecond
			svc := newService(t, cfg, st, time.Now)
			startDelivery(t, svc)
			newOrg(t, st, nil)
			svc.RequestSubmitted(context.Background(), submit(t, st))
			var n models.Notification
			eventually(t, "the notification to be given up", func() bool {
				ns, _ := st.ListNotifications(context.Background(), 0)
				if len(ns) == 1 && ns[0].FailedAt != nil {
					n = ns[0]
					return true
				}
				return false
			})
			settle()
			if got := len(h.Attempts()); got != tt.wantTry || n.Attempts != tt.wantTry {
				t.Fatalf("%d attempts (%d recorded), want %d", got, n.Attempts, tt.wantTry)
			}
			if !strings.Contains(n.LastError, "500") {
				t.Fatalf("last_error = %q, want the 500", n.LastError)
			}
		})
	}
	t.Run("a 401 is not retried", func(t *testing.T) {
		st := modelstest.SQLite(t)
		h := startHook(t, time.Now, 0)
		h.Secret = "not-the-configured-secret" // the receiver refuses the signature with 401
		h.Quiet = true
		cfg := testConfig(nil, h)
		svc := newService(t, cfg, st, time.Now)
		startDelivery(t, svc)
		newOrg(t, st, nil)
		svc.RequestSubmitted(context.Background(), submit(t, st))
		eventually(t, "the notification to be given up", func() bool {
			ns, _ := st.ListNotifications(context.Background(), 0)
			return len(ns) == 1 && ns[0].FailedAt != nil && ns[0].Attempts == 1 && strings.Contains(ns[0].LastError, "401")
		})
	})
}

func TestRequestSubmitted_AdminsAndWebhookNotified(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, st *models.Store) {
		mail, h := startSMTP(t), startHook(t, time.Now, 0)
		cfg := testConfig(mail, h)
		cfg.AdminEmails = append(cfg.AdminEmails, "bob@pki.example")
		svc := newService(t, cfg, st, time.Now)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		newOrg(t, st, nil)
		r := submit(t, st)
		svc.RequestSubmitted(ctx, r)
		eventually(t, "the admins' e-mails and the webhook", func() bool {
			return len(mail.Messages()) == 2 && len(h.Events()) == 1
		})
		for _, addr := range []string{"alice@pki.example", "bob@pki.example"} {
			got := mail.To(addr)
			if len(got) != 1 || !strings.Contains(got[0].Subject, "New certificate request from acme") ||
				!strings.Contains(got[0].Text, "https://certdesk.example/requests/"+r.ID) ||
				got[0].Header.Get("Auto-Submitted") != "auto-generated" {
				t.Fatalf("e-mail to %s: %+v", addr, got)
			}
		}
		if len(mail.To(partner.Email)) != 0 {
			t.Fatal("the requester was mailed about her own submission")
		}
		ev := h.Events()[0]
		var d RequestData
		eventData(t, ev, &d)
		if ev.Type != EventRequestSubmitted || d.ID != r.ID || d.State != models.StateSubmitted || d.RequestedBy != partner.Subject {
			t.Fatalf("webhook event %s %+v", ev.Type, d)
		}
	})
}

func TestRequestDecided_RequesterNotified(t *testing.T) {
	tests := []struct {
		name    string
		decide  func(st *models.Store, id string) (*models.Request, error)
		state   string
		subject string
	}{
		{"rejected", func(st *models.Store, id string) (*models.Request, error) {
			return st.RejectRequest(context.Background(), admin, id, "wrong identity")
		}, models.StateRejected, "was rejected"},
		{"approved", func(st *models.Store, id string) (*models.Request, error) {
			return st.ApproveRequest(context.Background(), admin, id, "fine")
		}, models.StateApproved, "was approved"},
	}
	modelstest.Each(t, func(t *testing.T, st *models.Store) {
		mail, h := startSMTP(t), startHook(t, time.Now, 0)
		cfg := testConfig(mail, h)
		cfg.Webhooks[0].Events = []string{EventRequestDecided}
		svc := newService(t, cfg, st, time.Now)
		startDelivery(t, svc)
		newOrg(t, st, nil)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := submit(t, st)
				svc.RequestSubmitted(context.Background(), r) // the webhook is not subscribed to it
				decided, err := tt.decide(st, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				svc.RequestDecided(context.Background(), decided)
				eventually(t, "the requester's e-mail and the webhook", func() bool {
					return len(mail.To(partner.Email)) == i+1 && len(h.Events()) == i+1
				})
				m := mail.To(partner.Email)[i]
				if !strings.Contains(m.Subject, tt.subject) || !strings.Contains(m.Text, r.ID) {
					t.Fatalf("e-mail %q:\n%s", m.Subject, m.Text)
				}
				ev := h.Events()[i]
				var d RequestData
				eventData(t, ev, &d)
				if ev.Type != EventRequestDecided || d.ID != r.ID || d.State != tt.state || d.DecidedBy != admin.Subject {
					t.Fatalf("webhook event %s %+v", ev.Type, d)
				}
			})
		}
		settle()
		if n := len(h.Events()); n != len(tests) {
			t.Fatalf("webhook subscribed to request.decided got %d events, want %d", n, len(tests))
		}
	})
}

func TestRequestDecided_Cancelled_NothingSent(t *testing.T) {
	st := modelstest.SQLite(t)
	h := startHook(t, time.Now, 0)
	svc := newService(t, testConfig(nil, h), st, time.Now)
	newOrg(t, st, nil)
	r, err := st.CancelRequest(context.Background(), partner, submit(t, st).ID)
	if err != nil {
		t.Fatal(err)
	}
	svc.RequestDecided(context.Background(), r)
	if ns, _ := st.ListNotifications(context.Background(), 0); len(ns) != 0 {
		t.Fatalf("a cancellation enqueued %d notifications", len(ns))
	}
}

// failingStore is a store whose outbox cannot be written.
type failingStore struct{ Store }

func (failingStore) EnqueueNotifications(context.Context, []models.Notification) error {
	return errors.New("database unreachable")
}

func TestNotifier_StoreDown_NeitherFailsNorBlocksTheCaller(t *testing.T) {
	h := startHook(t, time.Now, 0)
	svc := newService(t, testConfig(nil, h), failingStore{}, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller's request is already over
	begin := time.Now()
	svc.RequestSubmitted(ctx, &models.Request{ID: "r1", Org: "acme", State: models.StateSubmitted})
	svc.RequestDecided(ctx, &models.Request{ID: "r1", Org: "acme", State: models.StateRejected})
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("the notifier held the caller for %v", d)
	}
}
