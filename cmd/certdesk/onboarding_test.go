package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

// signInHTTP signs username in at the portal through its OpenID provider,
// as a browser would, and returns the browser and where the portal sent it
// after the callback.
func (tp *testPortal) signInHTTP(username string) (*http.Client, *url.URL) {
	t := tp.t
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := func(method, u string, form url.Values) *url.URL {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, u, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := b.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		res.Body.Close()
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("%s %s: %d without a redirect", method, u, res.StatusCode)
		}
		return loc
	}
	authorize := next("GET", tp.URL+"/auth/login", nil)
	login := next("GET", authorize.String(), nil)
	idp := login.Scheme + "://" + login.Host
	done := next("POST", idp+"/login", url.Values{"id": {login.Query().Get("authRequestID")}, "username": {username}})
	callback := next("GET", done.String(), nil)
	return b, next("GET", callback.String(), nil)
}

// meAs is GET /api/v1/me with browser b's session.
func (tp *testPortal) meAs(b *http.Client) (int, string) {
	tp.t.Helper()
	res, err := b.Get(tp.URL + "/api/v1/me")
	if err != nil {
		tp.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func objects(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, it := range m["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// TestOnboarding_UnassignedUserAssignedAndRemoved: a partner without an
// organisation who signed in is listed for admins, an admin assigns them
// and they are in; removing the membership ends their session.
func TestOnboarding_UnassignedUserAssignedAndRemoved(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			tp := startPortal(t, driver)
			if _, loc := tp.signInHTTP("newbie"); loc.Path != "/auth/noaccess" || loc.Query().Get("why") != "no_org" {
				t.Fatalf("newbie without organisation sent to %s", loc)
			}
			tp.signInHTTP("ada")
			un := objects(tp.must(200, "admin", "GET", "/api/v1/users?unassigned=true", nil))
			if len(un) != 1 || un[0]["subject"] != "newbie-7f3a" || un[0]["name"] != "Nia Newbie" || un[0]["email"] != "nia@acme.example" ||
				un[0]["email_verified"] != true || un[0]["role"] != "partner" || un[0]["last_seen_at"] == "" {
				t.Fatalf("unassigned users %v, want newbie alone (the admin needs no organisation)", un)
			}
			if all := objects(tp.must(200, "admin", "GET", "/api/v1/users", nil)); len(all) != 2 {
				t.Fatalf("all users %v, want newbie and ada", all)
			}
			if r := tp.do("admin", "GET", "/api/v1/users?unassigned=maybe", nil); r.Status != 400 || !strings.Contains(string(r.Body), "unassigned") {
				t.Fatalf("bad unassigned: %d %s", r.Status, r.Body)
			}

			tp.must(201, "admin", "POST", "/api/v1/orgs/acme/members", map[string]string{"subject": "newbie-7f3a"})
			if un := objects(tp.must(200, "admin", "GET", "/api/v1/users?unassigned=true", nil)); len(un) != 0 {
				t.Fatalf("still unassigned after assignment: %v", un)
			}
			b, loc := tp.signInHTTP("newbie")
			if loc.Path != "/" {
				t.Fatalf("assigned newbie sent to %s", loc)
			}
			if st, me := tp.meAs(b); st != 200 || !strings.Contains(me, `"org":"acme"`) {
				t.Fatalf("/me of assigned newbie: %d %s", st, me)
			}

			if r := tp.do("admin", "DELETE", "/api/v1/orgs/globex/members/newbie-7f3a", nil); r.Status != 404 {
				t.Fatalf("removing from the wrong organisation: %d %s", r.Status, r.Body)
			}
			tp.must(204, "admin", "DELETE", "/api/v1/orgs/acme/members/"+url.PathEscape("newbie-7f3a"), nil)
			if st, _ := tp.meAs(b); st != 401 {
				t.Fatalf("/me after removal: %d, want 401 (the session ends with the membership)", st)
			}
			if r := tp.do("admin", "DELETE", "/api/v1/orgs/acme/members/newbie-7f3a", nil); r.Status != 404 {
				t.Fatalf("removing twice: %d %s", r.Status, r.Body)
			}
			evs, _, err := tp.P.Store.ListAudit(t.Context(), models.AuditFilter{Action: models.ActionMembershipSet, Limit: 10})
			if err != nil || len(evs) != 2 || evs[0].Actor != "ada" || !strings.Contains(evs[0].Detail, `"previous_org":"acme"`) {
				t.Fatalf("membership.set events %+v (%v), want the assignment and (newest first) the removal by ada", evs, err)
			}

			// A subject with '/', '|', '%' and a space, percent-encoded in the path.
			odd := "auth0|team/a b%c"
			tp.must(201, "admin", "POST", "/api/v1/orgs/acme/members", map[string]string{"subject": odd})
			tp.must(204, "admin", "DELETE", "/api/v1/orgs/acme/members/"+url.PathEscape(odd), nil)
			if _, err := tp.P.Store.GetMembership(t.Context(), odd); err == nil {
				t.Fatalf("membership of %q survived its removal", odd)
			}
		})
	}
}

// TestOnboarding_Invitations: only a verified e-mail joins, an expired
// invitation does not, and an invitation is used once.
func TestOnboarding_Invitations(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			tp := startPortal(t, driver)
			invite := func(org, email string) string {
				return tp.must(201, "admin", "POST", "/api/v1/orgs/"+org+"/invitations", map[string]string{"email": email})["id"].(string)
			}
			state := func(org, id string) string {
				for _, inv := range objects(tp.must(200, "admin", "GET", "/api/v1/orgs/"+org+"/invitations", nil)) {
					if inv["id"] == id {
						return inv["state"].(string)
					}
				}
				return "missing"
			}
			for _, bad := range []map[string]string{{"email": "not an address"}, {"email": "Uma <uma@acme.example>"}, {"email": ""}} {
				if r := tp.do("admin", "POST", "/api/v1/orgs/acme/invitations", bad); r.Status != 400 || !strings.Contains(string(r.Body), "e-mail") {
					t.Fatalf("invitation %v: %d %s, want 400 naming the e-mail", bad, r.Status, r.Body)
				}
			}
			if r := tp.do("admin", "POST", "/api/v1/orgs/nope/invitations", map[string]string{"email": "x@acme.example"}); r.Status != 404 {
				t.Fatalf("invitation to an unknown organisation: %d %s", r.Status, r.Body)
			}

			// Unverified e-mail: never joins.
			uma := invite("acme", "UMA@acme.example")
			if r := tp.do("admin", "POST", "/api/v1/orgs/globex/invitations", map[string]string{"email": "uma@acme.example"}); r.Status != 409 {
				t.Fatalf("second pending invitation of one address: %d %s", r.Status, r.Body)
			}
			if _, loc := tp.signInHTTP("unverified"); loc.Query().Get("why") != "no_org" {
				t.Fatalf("unverified e-mail sent to %s, want no_org", loc)
			}
			if s := state("acme", uma); s != models.InvitationPending {
				t.Fatalf("invitation of an unverified address is %s, want pending", s)
			}

			// Expired invitation: does not join.
			lou := invite("acme", "lou@acme.example")
			if err := tp.P.Store.DB().Model(&models.Invitation{}).Where("id = ?", lou).Update("expires_at", time.Now().Add(-time.Minute)).Error; err != nil {
				t.Fatal(err)
			}
			if _, loc := tp.signInHTTP("late"); loc.Query().Get("why") != "no_org" {
				t.Fatalf("expired invitation: sent to %s, want no_org", loc)
			}
			if s := state("acme", lou); s != models.InvitationExpired {
				t.Fatalf("expired invitation is %s", s)
			}

			// Verified: joins once.
			nia := invite("globex", "nia@acme.example")
			b, loc := tp.signInHTTP("newbie")
			if st, me := tp.meAs(b); loc.Path != "/" || st != 200 || !strings.Contains(me, `"org":"globex"`) {
				t.Fatalf("invited newbie: sent to %s, /me %d %s", loc, st, me)
			}
			if s := state("globex", nia); s != models.InvitationAccepted {
				t.Fatalf("used invitation is %s", s)
			}
			if r := tp.do("admin", "DELETE", "/api/v1/orgs/globex/invitations/"+nia, nil); r.Status != 409 {
				t.Fatalf("deleting an accepted invitation: %d %s", r.Status, r.Body)
			}
			tp.must(204, "admin", "DELETE", "/api/v1/orgs/globex/members/newbie-7f3a", nil)
			if _, loc := tp.signInHTTP("newbie"); loc.Query().Get("why") != "no_org" {
				t.Fatalf("sign-in after leaving: sent to %s, want no_org (the invitation was used)", loc)
			}

			// Withdrawn: gone, audited.
			tp.must(204, "admin", "DELETE", "/api/v1/orgs/acme/invitations/"+uma, nil)
			if r := tp.do("admin", "DELETE", "/api/v1/orgs/acme/invitations/"+uma, nil); r.Status != 404 {
				t.Fatalf("deleting twice: %d", r.Status)
			}
			for action, want := range map[string]int{models.ActionInvitationCreate: 3, models.ActionInvitationAccept: 1, models.ActionInvitationRevoke: 1} {
				evs, _, err := tp.P.Store.ListAudit(t.Context(), models.AuditFilter{Action: action, Limit: 10})
				if err != nil || len(evs) != want {
					t.Errorf("%s events: %d (%v), want %d", action, len(evs), err, want)
				}
			}
		})
	}
}

// TestRequests_AdminWithoutOrganisation_ToldToChooseOne: an admin belongs
// to no organisation; a request or preview without "org" says what to do
// and creates nothing, and one naming an organisation is submitted for it.
func TestRequests_AdminWithoutOrganisation_ToldToChooseOne(t *testing.T) {
	tp := startPortal(t, "sqlite")
	_, csr := newCSR(t, "admin.acme.example")
	before, _ := counts(t, tp.P.Store)
	for _, path := range []string{"/api/v1/requests", "/api/v1/requests/preview"} {
		r := tp.do("admin", "POST", path, map[string]any{"csr": csr})
		if r.Status != 400 || !strings.Contains(string(r.Body), "choose the organisation") || !strings.Contains(string(r.Body), "GET /api/v1/orgs") {
			t.Errorf("POST %s as admin without org: %d %s", path, r.Status, r.Body)
		}
	}
	if after, _ := counts(t, tp.P.Store); after != before {
		t.Fatalf("requests %d -> %d: a refused submission stored something", before, after)
	}
	if got := tp.must(201, "admin", "POST", "/api/v1/requests", map[string]any{"csr": csr, "org": "acme"}); got["org"] != "acme" {
		t.Fatalf("admin's request for acme: %v", got)
	}
}
