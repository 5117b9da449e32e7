package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/web/devidp"
)

// selectOption chooses value in the <select> with data-testid id as a
// person would: React hears the change event.
func selectOption(id, value string) chromedp.Action[chromedp.Void] {
	sel, _ := json.Marshal(`[data-testid="` + id + `"]`)
	v, _ := json.Marshal(value)
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false;
  Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, "value").set.call(e, %s);
  e.dispatchEvent(new Event("change", { bubbles: true })); return e.value === %s; })()`, sel, v, v)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("[data-testid=%q] has no option %q", id, value)
		}
		return chromedp.Void{}, err
	}
}

// TestE2E_AdminAssignsAnUnassignedUserAndRequestsForAnOrganisation: a
// partner whose provider sends no organisation signs in and sees what to
// send their admin; the admin finds them on the Users page, assigns them to
// acme, and they are in at their next sign-in. The admin then submits a
// request, which needs an organisation chosen first. Screenshots go to
// testout/e2e/onboarding/.
func TestE2E_AdminAssignsAnUnassignedUserAndRequestsForAnOrganisation(t *testing.T) {
	requireFrontend(t)
	shots := filepath.Join(repoRoot(t), "testout", "e2e", "onboarding")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startE2EPortalWith(t, "sqlite", devidp.User{Subject: "nc-4711", Username: "newcomer", Name: "Nora Newcomer", Email: "nora@acme.example", Groups: []string{"certdesk-partners"}})
	b := newE2EBrowser(t, shots)
	newcomer := b.user(t, "newcomer")
	admin := b.user(t, "admin")
	defer func() {
		newcomer.checkConsole(t)
		admin.checkConsole(t)
	}()

	// 1. The newcomer signs in and lands on the no-organisation page.
	newcomer.do("opening the app", chromedp.Navigate(p.URL+"/"), chromedp.WaitVisible(tid("sign-in")))
	newcomer.do("following Sign in", chromedp.Click(tid("sign-in")), chromedp.WaitVisible(chromedp.CSS("#login-newcomer")))
	newcomer.do("signing in without an organisation", chromedp.Click(chromedp.CSS("#login-newcomer")), chromedp.WaitVisible(tid("noaccess-subject")),
		chromedp.WaitVisible(chromedp.CSS("#copy-identity"))) // the copy button shows once its script ran under the CSP
	if got := newcomer.text("noaccess-subject"); got != "nc-4711" {
		t.Errorf("no-access page subject = %q", got)
	}
	if msg := eval[string](newcomer, "reading the message", `document.querySelector('[data-testid="noaccess-message"]').value`); !strings.Contains(msg, "Subject: nc-4711") ||
		!strings.Contains(msg, "nora@acme.example") || !strings.Contains(msg, "Nora Newcomer") {
		t.Errorf("message to the admin = %q", msg)
	}
	newcomer.shot("01-newcomer-no-organisation")

	// 2. The admin assigns the newcomer to acme from the Users page.
	admin.signIn(p.URL, "02")
	admin.do("opening Users", chromedp.Click(tid("nav-users")), chromedp.WaitVisible(tid("unassigned-row-nc-4711")))
	if row := admin.text("unassigned-row-nc-4711"); !strings.Contains(row, "Nora Newcomer") || !strings.Contains(row, "nora@acme.example") {
		t.Errorf("unassigned row = %q", row)
	}
	admin.shot("02-admin-users-unassigned")
	admin.do("choosing acme", selectOption("assign-org-0", "acme"), chromedp.WaitEnabled(tid("assign-0")))
	admin.do("assigning", chromedp.Click(tid("assign-0")), chromedp.WaitVisible(tid("unassigned-empty")))
	admin.do("listing acme's members", selectOption("members-org", "acme"), chromedp.WaitVisible(tid("member-row-nc-4711")))
	admin.shot("03-admin-users-assigned")
	admin.do("inviting an address", selectOption("invite-org", "acme"), chromedp.SendKeys(tid("invite-email"), "ines@acme.example"),
		chromedp.Click(tid("invite-submit")), chromedp.WaitVisible(tid("invitation-row-ines@acme.example")))
	if row := admin.text("invitation-row-ines@acme.example"); !strings.Contains(row, "pending") {
		t.Errorf("invitation row = %q, want pending", row)
	}
	admin.shot("03-admin-users-invited")
	if org, err := p.P.Store.GetMembership(t.Context(), "nc-4711"); err != nil || org != "acme" {
		t.Fatalf("membership of the newcomer: %q, %v", org, err)
	}

	// 3. The newcomer signs in again and is a partner of acme.
	newcomer.do("opening the app again", chromedp.Navigate(p.URL+"/"), chromedp.WaitVisible(tid("sign-in")))
	newcomer.do("signing in again", chromedp.Click(tid("sign-in")), chromedp.WaitVisible(chromedp.CSS("#login-newcomer")),
		chromedp.Click(chromedp.CSS("#login-newcomer")), chromedp.WaitVisible(tid("whoami")))
	if who := newcomer.text("whoami"); !strings.Contains(who, "partner") || !strings.Contains(who, "acme") {
		t.Errorf("newcomer after assignment: %q", who)
	}
	newcomer.do("dashboard", chromedp.WaitVisible(tid("new-request")))
	newcomer.shot("04-newcomer-dashboard")

	// 4. The admin's new request needs an organisation, then goes through.
	_, csr := e2eCSR(t, "admin-made", e2eOrgURI+"made-by-admin")
	csrPath := filepath.Join(t.TempDir(), "admin.csr")
	if err := os.WriteFile(csrPath, csr, 0o600); err != nil {
		t.Fatal(err)
	}
	admin.do("opening New request", chromedp.Click(tid("nav-requestsnew")), chromedp.WaitVisible(tid("request-org")))
	admin.do("picking the CSR", chromedp.SetUploadFiles(tid("csr-file"), []string{csrPath}), chromedp.WaitVisible(tid("csr-preview")))
	if got := admin.text("policy-problems"); !strings.Contains(got, "choose the organisation") {
		t.Errorf("policy problems before choosing an organisation: %q", got)
	}
	if enabled := eval[bool](admin, "reading the submit button", `!document.querySelector('[data-testid="submit-request"]').disabled`); enabled {
		t.Error("submit is enabled before an organisation was chosen")
	}
	admin.shot("05-admin-request-no-org")
	admin.do("choosing acme", selectOption("request-org", "acme"), chromedp.WaitVisible(tid("server-preview")), chromedp.WaitEnabled(tid("submit-request")))
	admin.shot("06-admin-request-for-acme")
	admin.do("submitting", chromedp.Click(tid("submit-request")), waitText("request-state", "submitted"))
	id := strings.TrimPrefix(admin.path(), "/requests/")
	r, err := p.P.Store.GetRequest(t.Context(), id)
	if err != nil || r.Org != "acme" || r.RequestedBy != "admin" || r.State != models.StateSubmitted {
		t.Fatalf("the admin's request %+v (%v), want submitted for acme by admin", r, err)
	}
	admin.shot("07-admin-request-submitted")
}
