package main

import (
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestE2E_ACMEBindings_AskApproveTakeOnceRevoke drives the ACME bindings
// page in Chromium: a partner asks for a binding, an admin (who cannot
// approve the one they asked for themselves) approves it, the partner
// takes the credentials once and makes a one-time EST code, a device
// enrols with the code and its request shows the EST channel and the
// binding, then the admin revokes the binding after confirming. Every page
// is saved under testout/e2e/acme/.
func TestE2E_ACMEBindings_AskApproveTakeOnceRevoke(t *testing.T) {
	requireFrontend(t)
	shots := filepath.Join(repoRoot(t), "testout", "e2e", "acme")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startE2EPortal(t, "sqlite")
	b := newE2EBrowser(t, shots)
	partner := b.user(t, "partner")
	admin := b.user(t, "admin")
	defer func() {
		for _, u := range []*e2eUser{partner, admin} {
			u.checkConsole(t)
		}
	}()
	firstRow := `(() => { const r = document.querySelector('[data-testid^="binding-row-"]'); return r ? r.dataset.testid.slice("binding-row-".length) : ""; })()`

	// 1. The partner asks for a binding.
	partner.signIn(p.URL, "acme-01")
	partner.do("opening the ACME page", chromedp.Click(tid("nav-tokens")), chromedp.WaitVisible(tid("ask-binding")), chromedp.WaitVisible(tid("no-bindings")))
	partner.do("filling in the binding", chromedp.SendKeys(tid("binding-name"), "edge devices"), chromedp.SendKeys(tid("binding-names"), "*.edge.acme.example"))
	partner.shot("acme-01-partner-asks")
	partner.do("asking for the binding", chromedp.Click(tid("ask-binding")), chromedp.WaitVisible(tid("binding-asked")), chromedp.WaitVisible(chromedp.CSS(`[data-testid^="binding-row-"]`)))
	id := eval[string](partner, "reading the binding id", firstRow)
	if got := partner.text("binding-state-" + id); got != "requested" {
		t.Fatalf("the new binding reads %q, want requested", got)
	}
	partner.shot("acme-01-partner-asked")

	// 2. The admin asks for one too, cannot approve it, and approves the partner's.
	admin.signIn(p.URL, "acme-02")
	admin.do("opening the ACME page", chromedp.Click(tid("nav-tokens")), chromedp.WaitVisible(tid("binding-row-"+id)))
	if d := eval[float64](admin, "measuring the menu", `(() => { const li = [...document.querySelectorAll("nav li")]; return li[li.length - 1].getBoundingClientRect().top - li[0].getBoundingClientRect().top; })()`); d > 2 {
		t.Errorf("the admin menu wraps at 1280 px: its last item is %.0f px below the first", d)
	}
	admin.do("asking for an own binding", chromedp.SendKeys(tid("binding-names"), "ops.acme.example"), chromedp.SendKeys(tid("binding-org"), "acme"), chromedp.Click(tid("ask-binding")), chromedp.WaitVisible(tid("binding-asked")),
		// The list is reloaded after the answer: wait for the second row.
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid^="binding-row-"]').length >= 2`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout)))
	own := strings.TrimSpace(eval[string](admin, "reading the own binding", `(() => { const r = [...document.querySelectorAll('[data-testid^="binding-row-"]')].map((e) => e.dataset.testid.slice("binding-row-".length)); return r.find((x) => x !== `+jsString(id)+`) || ""; })()`))
	if own == "" {
		t.Fatal("the admin's own binding is not listed")
	}
	if disabled := eval[bool](admin, "reading the own approve button", `document.querySelector('[data-testid="approve-binding-`+own+`"]').disabled`); !disabled {
		t.Error("the admin may press approve on the binding they asked for")
	}
	if why := admin.text("approve-why-" + own); !strings.Contains(why, "another admin must approve") {
		t.Errorf("the reason beside the disabled approve reads %q", why)
	}
	admin.shot("acme-02-admin-bindings")
	admin.do("approving the partner's binding", chromedp.Click(tid("approve-binding-"+id)), waitText("binding-state-"+id, "approved"))
	admin.shot("acme-02-admin-approved")

	// 3. The partner takes the credentials, once.
	partner.do("reloading the ACME page", chromedp.Navigate(p.URL+"/tokens"), chromedp.WaitVisible(tid("take-credentials-"+id)))
	partner.do("taking the credentials", chromedp.Click(tid("take-credentials-"+id)), chromedp.WaitVisible(tid("binding-credentials")))
	if kid := partner.text("eab-kid"); kid != id {
		t.Errorf("the key id reads %q, want %s", kid, id)
	}
	hmacKey := partner.text("eab-hmac-key")
	if len(hmacKey) != 43 {
		t.Errorf("the HMAC key reads %q, want 43 base64url characters", hmacKey)
	}
	if cmd := partner.text("certbot-command"); !strings.Contains(cmd, "--eab-kid "+id+" --eab-hmac-key="+hmacKey) || !strings.Contains(cmd, p.URL+"/acme/directory") {
		t.Errorf("the certbot command reads %q", cmd)
	}
	if text := partner.text("binding-credentials"); !strings.Contains(text, "shown only once") {
		t.Errorf("the credentials box does not say they are shown once: %q", text)
	}
	partner.shot("acme-03-partner-credentials")
	partner.do("closing the credentials", chromedp.Click(tid("credentials-stored")), chromedp.WaitNotPresent(tid("binding-credentials")))
	// The credentials can be taken once: the button goes.
	partner.do("waiting for the take button to go", chromedp.WaitNotPresent(tid("take-credentials-"+id)))
	if shown := eval[string](partner, "reading the binding", `fetch("/api/v1/acme/bindings/`+id+`").then((r) => r.json()).then((b) => b.key_shown_at || "")`); shown == "" {
		t.Error("the binding does not record that its key was shown")
	}

	// 4. A one-time EST code; a device enrols with it once.
	partner.do("making a one-time EST code", chromedp.Click(tid("est-code-"+id)), chromedp.WaitVisible(tid("est-code")))
	code := partner.text("est-code-value")
	if cmd := partner.text("est-code-command"); !strings.Contains(cmd, "code:"+code) {
		t.Errorf("the EST command reads %q", cmd)
	}
	partner.shot("acme-04-partner-est-code")
	_, csr := e2eCSR(t, "", "device.edge.acme.example")
	blk, _ := pem.Decode(csr)
	enrol := func() int {
		req, _ := http.NewRequest("POST", p.URL+"/.well-known/est/simpleenroll", strings.NewReader(base64.StdEncoding.EncodeToString(blk.Bytes)))
		req.Header.Set("Content-Type", "application/pkcs10")
		req.SetBasicAuth("code", code)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	if got := enrol(); got != 200 {
		t.Fatalf("enrolling with the code: HTTP %d", got)
	}
	if got := enrol(); got != 401 {
		t.Fatalf("enrolling with the code again: HTTP %d, want 401", got)
	}
	partner.do("opening the requests", chromedp.Click(tid("nav-requests")), chromedp.WaitVisible(chromedp.CSS(`[data-testid^="request-channel-"]`)))
	reqID := eval[string](partner, "reading the request id", `document.querySelector('[data-testid^="request-channel-"]').dataset.testid.slice("request-channel-".length)`)
	if got := partner.text("request-channel-" + reqID); got != "EST" {
		t.Errorf("the request list's channel reads %q, want EST", got)
	}
	partner.shot("acme-04-partner-requests")
	partner.do("opening the request", chromedp.Navigate(p.URL+"/requests/"+reqID), chromedp.WaitVisible(tid("request-channel")))
	if got := partner.text("request-channel"); !strings.HasPrefix(got, "EST") || !strings.Contains(got, "binding "+id[:8]) {
		t.Errorf("the request page's channel reads %q, want EST with binding %s", got, id[:8])
	}
	partner.shot("acme-04-partner-request")

	// 5. The admin revokes the binding after confirming.
	admin.do("reloading the ACME page", chromedp.Navigate(p.URL+"/tokens"), chromedp.WaitVisible(tid("revoke-binding-"+id)))
	admin.do("opening the revoke dialog", chromedp.Click(tid("revoke-binding-"+id)), chromedp.WaitVisible(tid("revoke-binding-confirm")))
	admin.shot("acme-05-admin-revoke-confirm")
	admin.do("cancelling", chromedp.Click(tid("revoke-binding-cancel")), chromedp.WaitNotPresent(tid("revoke-binding-confirm")))
	if got := admin.text("binding-state-" + id); got != "approved" {
		t.Fatalf("after cancelling, the binding reads %q", got)
	}
	admin.do("revoking", chromedp.Click(tid("revoke-binding-"+id)), chromedp.Click(tid("revoke-binding-confirm")), waitText("binding-state-"+id, "revoked"))
	admin.shot("acme-05-admin-revoked")
	if got := eval[string](partner, "reading the revoked binding", `fetch("/api/v1/acme/bindings/`+id+`").then((r) => r.json()).then((b) => b.state + " by " + b.revoked_by)`); got != "revoked by admin" {
		t.Fatalf("the binding reads %q, want revoked by admin", got)
	}
}
