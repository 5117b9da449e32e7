package models_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// newOrg creates organisation slug.
func newOrg(t testing.TB, s *models.Store, slug string, autoRenew bool) *models.Organization {
	t.Helper()
	o := &models.Organization{Slug: slug, Name: slug + " Ltd", URIPrefixes: models.StringList{"spiffe://example.org/partners/" + slug + "/"},
		MaxValidityDays: 90, AutoApproveRenewals: autoRenew}
	if err := s.CreateOrg(ctx, admin, o); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	return o
}

// submit files a request for acme by the partner.
func submit(t testing.TB, s *models.Store) *models.Request {
	t.Helper()
	r := &models.Request{Org: "acme", CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...", KeyType: "ECDSA P-256",
		Identities: models.StringList{"spiffe://example.org/partners/acme/billing"}, ValidityDays: 30, Note: "billing"}
	if err := s.SubmitRequest(ctx, partner, r); err != nil {
		t.Fatalf("SubmitRequest: %v", err)
	}
	return r
}

func TestSubmitRequest_AssignsIDStateAndAudits(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		r := submit(t, s)
		if len(r.ID) != 36 || r.State != models.StateSubmitted || r.RequestedBy != partner.Subject || r.CreatedAt.IsZero() {
			t.Fatalf("submitted request = %+v", r)
		}
		got, err := s.GetRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Org != "acme" || len(got.Identities) != 1 || got.ValidityDays != 30 {
			t.Fatalf("stored request = %+v", got)
		}
		ev := wantLastAudit(t, s, "request.submit", partner, r.ID)
		if ev.Org != "acme" {
			t.Fatalf("audit org = %q", ev.Org)
		}
		_, err = s.GetRequest(ctx, "00000000-0000-0000-0000-000000000000")
		wantErr(t, err, models.ErrNotFound)
	})
}

func TestSubmitRequest_BadInput_IsInvalid(t *testing.T) {
	bad := func(mut func(r *models.Request)) *models.Request {
		r := &models.Request{Org: "acme", CSRPEM: "pem", Identities: models.StringList{"a"}, ValidityDays: 30}
		mut(r)
		return r
	}
	cases := []struct {
		name string
		r    *models.Request
	}{
		{"unknown organisation", bad(func(r *models.Request) { r.Org = "nope" })},
		{"no CSR", bad(func(r *models.Request) { r.CSRPEM = " " })},
		{"no identities", bad(func(r *models.Request) { r.Identities = nil })},
		{"validity above the organisation's maximum", bad(func(r *models.Request) { r.ValidityDays = 91 })},
		{"negative validity", bad(func(r *models.Request) { r.ValidityDays = -1 })},
		{"renewal of an unknown certificate", bad(func(r *models.Request) { x := "nope"; r.RenewalOf = &x })},
	}
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		before := auditCount(t, s)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantErr(t, s.SubmitRequest(ctx, partner, c.r), models.ErrInvalid)
			})
		}
		if n := auditCount(t, s); n != before {
			t.Fatalf("refused submissions appended %d audit events", n-before)
		}
		rs, _, err := s.ListRequests(ctx, models.RequestFilter{})
		if err != nil || len(rs) != 0 {
			t.Fatalf("refused submissions stored %d requests (err %v)", len(rs), err)
		}
	})
}

func TestRequestTransitions_LegalAndIllegal(t *testing.T) {
	type step func(s *models.Store, id string) (*models.Request, error)
	approve := func(s *models.Store, id string) (*models.Request, error) {
		return s.ApproveRequest(ctx, admin, id, "ok")
	}
	reject := func(s *models.Store, id string) (*models.Request, error) {
		return s.RejectRequest(ctx, admin, id, "wrong names")
	}
	cancel := func(s *models.Store, id string) (*models.Request, error) { return s.CancelRequest(ctx, partner, id) }
	cases := []struct {
		name      string
		first     step
		wantState string
		action    string
		actor     models.Actor
	}{
		{"approve", approve, models.StateApproved, "request.approve", admin},
		{"reject", reject, models.StateRejected, "request.reject", admin},
		{"cancel", cancel, models.StateCancelled, "request.cancel", partner},
	}
	then := map[string]step{"approve": approve, "reject": reject, "cancel": cancel}
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := submit(t, s)
				got, err := c.first(s, r.ID)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if got.State != c.wantState || got.DecidedBy != c.actor.Subject || got.DecidedAt == nil {
					t.Fatalf("after %s: %+v", c.name, got)
				}
				wantLastAudit(t, s, c.action, c.actor, r.ID)
				before := auditCount(t, s)
				for name, next := range then {
					_, err := next(s, r.ID)
					if !errors.Is(err, models.ErrConflict) {
						t.Errorf("%s after %s: error %v, want ErrConflict", name, c.name, err)
					}
				}
				if n := auditCount(t, s); n != before {
					t.Fatalf("illegal transitions appended %d audit events", n-before)
				}
				again, _ := s.GetRequest(ctx, r.ID)
				if again.State != c.wantState {
					t.Fatalf("illegal transitions changed state to %s", again.State)
				}
			})
		}
		t.Run("unknown request", func(t *testing.T) {
			for name, next := range then {
				if _, err := next(s, "nope"); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("%s: error %v, want ErrNotFound", name, err)
				}
			}
		})
	})
}

func TestApproveRequest_OwnRequest_IsForbidden(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		r := &models.Request{Org: "acme", CSRPEM: "pem", Identities: models.StringList{"a"}, ValidityDays: 1}
		if err := s.SubmitRequest(ctx, admin, r); err != nil {
			t.Fatal(err)
		}
		_, err := s.ApproveRequest(ctx, admin, r.ID, "mine")
		wantErr(t, err, models.ErrForbidden)
		got, _ := s.GetRequest(ctx, r.ID)
		if got.State != models.StateSubmitted {
			t.Fatalf("state = %s after a refused self-approval", got.State)
		}
		if _, err := s.ApproveRequest(ctx, admin2, r.ID, "four eyes"); err != nil {
			t.Fatalf("another admin: %v", err)
		}
	})
}

func TestRejectRequest_WithoutReason_IsInvalid(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		r := submit(t, s)
		_, err := s.RejectRequest(ctx, admin, r.ID, "  ")
		wantErr(t, err, models.ErrInvalid)
	})
}

func TestAutoApproveRequest_OnlyRenewalsOfAllowingOrgs(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", true)
		newOrg(t, s, "globex", false)
		old := issue(t, s)
		renewal := &models.Request{Org: "acme", CSRPEM: "pem", Identities: old.Identities, ValidityDays: 30, RenewalOf: &old.ID}
		if err := s.SubmitRequest(ctx, partner, renewal); err != nil {
			t.Fatal(err)
		}
		plain := submit(t, s)
		_, err := s.AutoApproveRequest(ctx, system, plain.ID)
		wantErr(t, err, models.ErrForbidden)
		got, err := s.AutoApproveRequest(ctx, system, renewal.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != models.StateApproved || got.DecidedBy != models.AutoApprover {
			t.Fatalf("auto-approved request = %+v", got)
		}
		wantLastAudit(t, s, "request.auto_approve", system, renewal.ID)

		o, _ := s.GetOrg(ctx, "acme")
		o.AutoApproveRenewals = false
		if err := s.UpdateOrg(ctx, admin, o); err != nil {
			t.Fatal(err)
		}
		r2 := &models.Request{Org: "acme", CSRPEM: "pem", Identities: old.Identities, ValidityDays: 30, RenewalOf: &old.ID}
		if err := s.SubmitRequest(ctx, partner, r2); err != nil {
			t.Fatal(err)
		}
		_, err = s.AutoApproveRequest(ctx, system, r2.ID)
		wantErr(t, err, models.ErrForbidden)
	})
}

func TestApproveRequest_20Concurrent_ExactlyOneSucceeds(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		r := submit(t, s)
		const n = 20
		var (
			wg           sync.WaitGroup
			mu           sync.Mutex
			ok, conflict int
			other        []error
			start        = make(chan struct{})
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				a := models.Actor{Subject: "admin-" + string(rune('a'+i)), Role: models.RoleAdmin}
				<-start
				_, err := s.ApproveRequest(ctx, a, r.ID, "ok")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, models.ErrConflict):
					conflict++
				default:
					other = append(other, err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		if ok != 1 || conflict != n-1 || len(other) > 0 {
			t.Fatalf("%d succeeded, %d conflicts, other errors %v; want 1 and %d", ok, conflict, other, n-1)
		}
		evs, _, err := s.ListAudit(ctx, models.AuditFilter{Action: "request.approve", ObjectID: r.ID})
		if err != nil || len(evs) != 1 {
			t.Fatalf("%d approval events (err %v), want 1", len(evs), err)
		}
		mustVerify(t, s)
	})
}

func TestListRequests_FiltersAndCursors(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		newOrg(t, s, "acme", false)
		newOrg(t, s, "globex", false)
		var acme []string
		for i := 0; i < 12; i++ {
			if i%4 == 0 {
				// several requests in the same microsecond: the cursor
				// must still neither skip nor repeat.
				clk.Advance(1)
			} else {
				clk.Advance(3 * 1e6)
			}
			r := submit(t, s)
			acme = append(acme, r.ID)
			if i%3 == 0 {
				if _, err := s.ApproveRequest(ctx, admin, r.ID, "ok"); err != nil {
					t.Fatal(err)
				}
			}
		}
		g := &models.Request{Org: "globex", CSRPEM: "pem", Identities: models.StringList{"x"}, ValidityDays: 1, RequestedBy: "dave"}
		if err := s.SubmitRequest(ctx, models.Actor{Subject: "dave", Role: models.RolePartner, Org: "globex"}, g); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			f    models.RequestFilter
			want int
		}{
			{"all", models.RequestFilter{}, 13},
			{"org", models.RequestFilter{Org: "acme"}, 12},
			{"state", models.RequestFilter{State: models.StateApproved}, 4},
			{"org and state", models.RequestFilter{Org: "acme", State: models.StateSubmitted}, 8},
			{"requester", models.RequestFilter{RequestedBy: "dave"}, 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := c.f
				f.Limit = 5
				var got []models.Request
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatal("cursor does not advance")
					}
					rs, next, err := s.ListRequests(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, rs...)
					if next == "" {
						break
					}
					f.Cursor = next
				}
				if len(got) != c.want {
					t.Fatalf("got %d requests, want %d", len(got), c.want)
				}
				seen := map[string]bool{}
				for i, r := range got {
					if seen[r.ID] {
						t.Fatalf("request %s listed twice", r.ID)
					}
					seen[r.ID] = true
					if i > 0 && r.CreatedAt.After(got[i-1].CreatedAt) {
						t.Fatal("not newest first")
					}
				}
			})
		}
		_, _, err := s.ListRequests(ctx, models.RequestFilter{Cursor: "garbage"})
		wantErr(t, err, models.ErrInvalid)
	})
}
