package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
)

// TestE2E_IssuanceFaults_WaitingForTheHSMAndRetry drives the request page in
// Chromium: an approval while the HSM is down shows "approved — waiting for
// the HSM"; an approved request whose issuance failed shows the reason and a
// Retry button for an admin, which issues it.
func TestE2E_IssuanceFaults_WaitingForTheHSMAndRetry(t *testing.T) {
	requireFrontend(t)
	p := startE2EPortal(t, "sqlite")
	ctx := t.Context()
	pat := models.Actor{Subject: "partner", Role: models.RolePartner, Org: "acme", Source: "test"}
	submit := func(name string) string {
		_, csr := e2eCSR(t, name, e2eOrgURI+name)
		r, err := p.P.Workflow.Submit(ctx, pat, issuance.Submission{Org: "acme", CSRPEM: string(csr)})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	waitContains := func(id, want string) chromedp.Action[chromedp.Void] {
		expr := fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]'); return !!e && e.textContent.includes(%q); })()`, id, want)
		return func(ctx2 context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))(ctx2, tg)
			return chromedp.Void{}, err
		}
	}
	admin := newE2EBrowser(t, t.TempDir()).user(t, "admin")
	admin.signIn(p.URL, "faults")

	// The HSM is down: approving answers 202 and the page says what happens.
	waiting := submit("nohsm")
	real := p.P.Workflow.Issuer
	p.P.Workflow.Issuer = downHSM{real}
	admin.do("opening the request", chromedp.Navigate(p.URL+"/requests/"+waiting), chromedp.WaitVisible(tid("approve-"+waiting)))
	admin.do("approving with the HSM down", chromedp.Click(tid("approve-"+waiting)), waitContains("issuance-state", "approved — waiting for the HSM"))
	p.P.Workflow.Issuer = real

	// An issuance that failed: the reason shows, and Retry issues it.
	failed := submit("failed")
	if _, err := p.P.Store.ApproveRequest(ctx, models.Actor{Subject: "someone-else", Role: models.RoleAdmin, Source: "test"}, failed, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.P.Store.FailRequest(ctx, models.Actor{Subject: "system:recovery", Role: models.RoleSystem, Source: "recovery"}, failed, "namespace: the organisation's namespace changed"); err != nil {
		t.Fatal(err)
	}
	admin.do("opening the failed request", chromedp.Navigate(p.URL+"/requests/"+failed), chromedp.WaitVisible(tid("retry-"+failed)))
	if got := admin.text("issuance-state"); !strings.Contains(got, "issuance failed: namespace") {
		t.Fatalf("the failed request reads %q", got)
	}
	admin.do("retrying", chromedp.Click(tid("retry-"+failed)), chromedp.WaitVisible(tid("certificate-link")))
	if r, _ := p.P.Store.GetRequest(ctx, failed); r.State != models.StateIssued {
		t.Fatalf("after Retry the request is %s", r.State)
	}
}
