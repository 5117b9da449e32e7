package models_test

import (
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/schema"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// note is a valid notification to a webhook.
func note(recipient string) models.Notification {
	return models.Notification{Channel: models.ChannelWebhook, Event: "request.submitted", Recipient: recipient, Body: `{"id":"x"}`}
}

func TestNotificationTables_MatchModels(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		for _, m := range []any{&models.Notification{}, &models.ExpiryNotice{}, &models.Organization{}, &models.Request{}} {
			sch, err := schema.Parse(m, &sync.Map{}, schema.NamingStrategy{})
			if err != nil {
				t.Fatal(err)
			}
			if !s.DB().Migrator().HasTable(sch.Table) {
				t.Fatalf("table %s missing", sch.Table)
			}
			for _, f := range sch.Fields {
				if f.DBName != "" && !s.DB().Migrator().HasColumn(m, f.DBName) {
					t.Errorf("column %s.%s missing", sch.Table, f.DBName)
				}
			}
		}
	})
}

func TestOrg_ContactEmailsAndNoticeDays_RoundTrip(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		o := &models.Organization{Slug: "acme", Name: "Acme", ContactEmails: models.StringList{"pki@acme.example"},
			ExpiryNoticeDays: []int{21, 3}}
		if err := s.CreateOrg(ctx, admin, o); err != nil {
			t.Fatal(err)
		}
		plain := &models.Organization{Slug: "plain", Name: "Plain"}
		if err := s.CreateOrg(ctx, admin, plain); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetOrg(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.ContactEmails) != 1 || got.ContactEmails[0] != "pki@acme.example" {
			t.Errorf("contact_emails = %v", got.ContactEmails)
		}
		if len(got.ExpiryNoticeDays) != 2 || got.ExpiryNoticeDays[0] != 21 || got.ExpiryNoticeDays[1] != 3 {
			t.Errorf("expiry_notice_days = %v", got.ExpiryNoticeDays)
		}
		got, err = s.GetOrg(ctx, "plain")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.ExpiryNoticeDays) != 0 || len(got.ContactEmails) != 0 {
			t.Errorf("an organisation created without them has contact_emails %v, expiry_notice_days %v; want none (the defaults)", got.ContactEmails, got.ExpiryNoticeDays)
		}
	})
}

func TestSubmitRequest_KeepsRequesterEmail(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		r := &models.Request{Org: "acme", CSRPEM: "csr", Identities: models.StringList{"spiffe://example.org/partners/acme/a"},
			RequesterEmail: "carol@acme.example"}
		if err := s.SubmitRequest(ctx, partner, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RequesterEmail != "carol@acme.example" {
			t.Fatalf("requester_email = %q", got.RequesterEmail)
		}
	})
}

func TestEnqueueNotifications_BadInput_IsInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(n *models.Notification)
	}{
		{"unknown channel", func(n *models.Notification) { n.Channel = "sms" }},
		{"no event", func(n *models.Notification) { n.Event = "" }},
		{"no recipient", func(n *models.Notification) { n.Recipient = " " }},
		{"body not JSON", func(n *models.Notification) { n.Body = "{" }},
	}
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n := note("https://hooks.example/a")
				tt.edit(&n)
				wantErr(t, s.EnqueueNotifications(ctx, []models.Notification{note("https://hooks.example/ok"), n}), models.ErrInvalid)
			})
		}
		all, err := s.ListNotifications(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 0 {
			t.Fatalf("a refused batch left %d notifications behind", len(all))
		}
	})
}

func TestClaimNotifications_DueOnceLeasedThenRetriedOrDone(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		now := clk.Now()
		later := note("https://hooks.example/later")
		later.NextAttemptAt = now.Add(time.Hour)
		if err := s.EnqueueNotifications(ctx, []models.Notification{note("https://hooks.example/a"), note("https://hooks.example/b"), later}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimNotifications(ctx, now, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Attempts != 1 || got[1].Attempts != 1 {
			t.Fatalf("claimed %+v, want the two due ones with one attempt each", got)
		}
		if again, _ := s.ClaimNotifications(ctx, now.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
			t.Fatalf("leased notifications were claimed again: %+v", again)
		}
		if err := s.NotificationSent(ctx, got[0].ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryNotification(ctx, got[1].ID, now.Add(10*time.Second), "HTTP 500"); err != nil {
			t.Fatal(err)
		}
		again, err := s.ClaimNotifications(ctx, now.Add(20*time.Second), time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 1 || again[0].ID != got[1].ID || again[0].Attempts != 2 || again[0].LastError != "HTTP 500" {
			t.Fatalf("after a retry claimed %+v, want the failed one with two attempts", again)
		}
		if err := s.AbandonNotification(ctx, again[0].ID, now, "gave up"); err != nil {
			t.Fatal(err)
		}
		rest, err := s.ClaimNotifications(ctx, now.Add(2*time.Hour), time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != 1 || rest[0].Recipient != "https://hooks.example/later" {
			t.Fatalf("two hours later claimed %+v, want only the one scheduled for later", rest)
		}
	})
}

func TestClaimNotifications_TwoReplicas_NeverTheSameTwice(t *testing.T) {
	stores := modelstest.Replicas(t, 2)
	const total = 200
	batch := make([]models.Notification, total)
	for i := range batch {
		batch[i] = note("https://hooks.example/n")
	}
	if err := stores[0].EnqueueNotifications(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for {
				got, err := s.ClaimNotifications(ctx, time.Now(), time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, n := range got {
					seen[n.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("claimed %d distinct notifications, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("notification %d claimed %d times", id, n)
		}
	}
}

func TestExpiringCertificates_OnlyIssuedUnrevokedUnrenewedInWindow(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		now := time.Now()
		in := issue(t, s) // expires in 30 days
		revoked := issue(t, s)
		if _, err := s.RevokeCertificate(ctx, admin, revoked.ID, 4); err != nil {
			t.Fatal(err)
		}
		renewed := issue(t, s)
		r := &models.Request{Org: "acme", CSRPEM: "csr", Identities: renewed.Identities, RenewalOf: &renewed.ID}
		if err := s.SubmitRequest(ctx, partner, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApproveRequest(ctx, admin, r.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		c := &models.Certificate{Serial: randSerial(t), RequestID: r.ID, NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour)}
		if err := s.ReserveCertificate(ctx, system, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteCertificate(ctx, system, c.ID, []byte("der")); err != nil {
			t.Fatal(err)
		}
		reserve(t, s) // pending: not issued

		got, err := s.ExpiringCertificates(ctx, now, now.Add(31*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != in.ID {
			t.Fatalf("expiring = %v, want only %s", ids(got), in.ID)
		}
		if got[0].DER != nil {
			t.Error("expiring certificates were read with their DER")
		}
		if got, _ := s.ExpiringCertificates(ctx, now, now.Add(29*24*time.Hour)); len(got) != 0 {
			t.Fatalf("a certificate expiring after the window was listed: %v", ids(got))
		}
	})
}

func ids(cs []models.Certificate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestRecordExpiryNotice_OncePerThreshold(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		c := issue(t, s)
		sys := models.Actor{Subject: "system:notify", Role: models.RoleSystem}
		for i, want := range []bool{true, false} {
			got, err := s.RecordExpiryNotice(ctx, sys, c.ID, 30, []models.Notification{note("https://hooks.example/a")})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("call %d: recorded = %v, want %v", i+1, got, want)
			}
		}
		if got, err := s.RecordExpiryNotice(ctx, sys, c.ID, 14, nil); err != nil || !got {
			t.Fatalf("another threshold: recorded = %v, %v", got, err)
		}
		wantLastAudit(t, s, "certificate.expiry_notice", sys, c.ID)
		mustVerify(t, s)
		ns, err := s.ListNotifications(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 1 {
			t.Fatalf("%d notifications enqueued, want 1", len(ns))
		}
		notices, err := s.ExpiryNotices(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(notices) != 2 || notices[0].ThresholdDays != 30 || notices[1].ThresholdDays != 14 {
			t.Fatalf("notices = %+v", notices)
		}
		_, err = s.RecordExpiryNotice(ctx, sys, "no-such-certificate", 7, nil)
		wantErr(t, err, models.ErrNotFound)
	})
}
