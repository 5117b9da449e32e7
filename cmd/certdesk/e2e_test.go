package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/certdesk/certdesk/models"
)

// TestE2E_PartnerAdminAuditor_FullLifecycleInChromium drives the whole
// browser story in headless Chromium against a real portal: sign
// in through OIDC, upload a CSR file, approve, download and verify the
// certificate, generate a key in the browser and open the PKCS#12 it
// exports, revoke, read the audit history and its CSV export, and refuse a
// bad CSR without sending anything. Every page is saved under testout/e2e/.
func TestE2E_PartnerAdminAuditor_FullLifecycleInChromium(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) { runE2E(t, driver) })
	}
}

func runE2E(t *testing.T, driver string) {
	requireFrontend(t)
	shots := filepath.Join(repoRoot(t), "testout", "e2e", driver)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startE2EPortal(t, driver)
	b := newE2EBrowser(t, shots)
	partner := b.user(t, "partner")
	admin := b.user(t, "admin")
	auditor := b.user(t, "auditor")
	users := []*e2eUser{partner, admin, auditor}
	defer func() {
		for _, u := range users {
			u.checkConsole(t)
		}
	}()

	// 1. The partner signs in through the OIDC provider.
	partner.signIn(p.URL, "01")
	partner.do("dashboard", chromedp.WaitVisible(tid("new-request")))
	partner.shot("01-partner-dashboard")

	// A partner opening an admin/auditor page gets a plain not-allowed page, none of its UI.
	partner.do("opening /audit as a partner", chromedp.Navigate(p.URL+"/audit"), chromedp.WaitVisible(tid("not-allowed")))
	if n := eval[int](partner, "looking for the audit UI", `document.querySelectorAll('[data-testid="audit-table"],[data-testid="verify-chain"],[data-testid="chart-issued"]').length`); n != 0 {
		t.Errorf("a partner on /audit sees %d pieces of the audit UI, want the not-allowed page only", n)
	}
	partner.shot("01-partner-audit-not-allowed")

	// 2. The partner uploads a CSR file and sees the preview before submitting.
	uploadIDs := []string{e2eOrgURI + "billing", "billing.acme.example"}
	csrKey, csrFile := e2eCSR(t, "billing-service", uploadIDs...)
	csrPath := filepath.Join(t.TempDir(), "billing.csr")
	if err := os.WriteFile(csrPath, csrFile, 0o600); err != nil {
		t.Fatal(err)
	}
	partner.do("opening the new-request page", chromedp.Click(tid("nav-requestsnew")), chromedp.WaitReady(tid("csr-file")), chromedp.WaitVisible(tid("policy-waiting")))
	if n := eval[int](partner, "looking for policy problems on the empty form", `document.querySelectorAll('[data-testid="policy-problems"]').length`); n != 0 {
		t.Errorf("the empty new-request form shows policy problems before anything was typed")
	}
	partner.do("waiting for the namespace example", chromedp.Poll[chromedp.Void](
		`document.querySelector('[data-testid="identities-input"]').placeholder.includes(`+jsString(e2eOrgURI)+`)`, chromedp.WithPollingInterval(100*time.Millisecond)))
	partner.shot("02-partner-new-request-empty")
	partner.do("picking the CSR file",
		chromedp.SetUploadFiles(tid("csr-file"), []string{csrPath}),
		chromedp.WaitVisible(tid("csr-preview")),
		chromedp.WaitVisible(tid("server-preview")),
		chromedp.WaitEnabled(tid("submit-request")))
	if got := partner.text("csr-subject"); !strings.Contains(got, "billing-service") {
		t.Errorf("preview subject = %q, want it to name CN billing-service", got)
	}
	sans := partner.text("csr-sans")
	for _, id := range uploadIDs {
		if !strings.Contains(sans, id) {
			t.Errorf("preview SANs = %q, want %s among them", sans, id)
		}
	}
	if got := partner.text("csr-key-type"); !strings.Contains(got, "P-256") {
		t.Errorf("preview key type = %q, want ECDSA P-256", got)
	}
	if got := partner.text("policy-problems"); !strings.Contains(got, "No policy problems") {
		t.Errorf("policy problems for a good CSR: %q", got)
	}
	partner.shot("02-partner-csr-preview")
	partner.do("submitting the request", chromedp.Click(tid("submit-request")), waitText("request-state", "submitted"), chromedp.WaitVisible(tid("next-steps")))
	req1 := strings.TrimPrefix(partner.path(), "/requests/")
	if req1 == "" || strings.Contains(req1, "/") {
		t.Fatalf("after submitting, the page is %q, want /requests/<id>", partner.path())
	}
	partner.shot("02-partner-request-submitted")

	// 3. The admin signs in, finds the request in the queue and approves it with a reason.
	admin.signIn(p.URL, "03")
	admin.do("reading the pending count", chromedp.Navigate(p.URL+"/"), chromedp.WaitVisible(tid("pending-count")), waitText("pending-badge", "1"))
	if got := admin.text("pending-count"); !strings.Contains(got, "1 request waits") {
		t.Errorf("the admin dashboard's pending count reads %q, want 1 request", got)
	}
	if d := eval[float64](admin, "measuring the menu", `(() => { const li = [...document.querySelectorAll("nav li")]; return li[li.length - 1].getBoundingClientRect().top - li[0].getBoundingClientRect().top; })()`); d > 2 {
		t.Errorf("the admin menu wraps at 1280 px: its last item is %.0f px below the first", d)
	}
	admin.shot("03-admin-dashboard")
	admin.do("opening the queue", chromedp.Click(tid("nav-queue")), chromedp.WaitVisible(tid("queue-item-"+req1)))
	admin.do("typing the reason", chromedp.SendKeys(tid("reason-input-"+req1), "contract ACME-42 checked"))
	admin.shot("03-admin-queue")
	admin.do("approving", chromedp.Click(tid("approve-"+req1)), chromedp.WaitNotPresent(tid("queue-item-"+req1)), chromedp.WaitVisible(tid("issued-link")),
		chromedp.WaitNotPresent(tid("pending-badge")))
	if href := eval[string](admin, "reading the confirmation's link", `document.querySelector('[data-testid="issued-link"]').getAttribute("href")`); !strings.HasPrefix(href, "/certificates/") {
		t.Errorf("the approval confirmation links to %q, want the issued certificate", href)
	}
	admin.shot("03-admin-queue-after-approval")
	r1, err := p.P.Store.GetRequest(t.Context(), req1)
	if err != nil {
		t.Fatalf("reading request %s: %v", req1, err)
	}
	if r1.State != models.StateIssued || r1.DecisionReason != "contract ACME-42 checked" {
		t.Fatalf("after approval the request is %s with reason %q, want issued with the admin's reason", r1.State, r1.DecisionReason)
	}

	// 4. The partner downloads the certificate; it verifies against the CA bundle for clientAuth.
	partner.do("opening the issued request", chromedp.Navigate(p.URL+"/requests/"+req1), waitText("request-state", "issued"), chromedp.WaitVisible(tid("download-cert")))
	cert1 := partner.text("certificate-link")
	partner.do("reading the download URLs", chromedp.WaitVisible(tid("download-urls")), chromedp.WaitVisible(tid("no-key-here")))
	if got := partner.text("download-urls"); !strings.Contains(got, p.URL+"/api/v1/certificates/"+cert1+"/chain") {
		t.Errorf("download URLs = %q, want the chain's stable URL", got)
	}
	if got := partner.text("snippet-fetch"); !strings.Contains(got, "Authorization: Bearer $CERTDESK_TOKEN") || !strings.Contains(got, "--fail-with-body") {
		t.Errorf("fetch snippet = %q, want curl --fail-with-body with a bearer token", got)
	}
	if got := partner.text("snippet-curl"); strings.Contains(got, "openssl pkey") {
		t.Errorf("curl snippet for an uploaded CSR assumes an encrypted key: %q", got)
	}
	partner.shot("04-partner-request-issued")
	partner.do("downloading the certificate", chromedp.Click(tid("download-cert")))
	leaf := parseCertPEM(t, partner.download("certificate download", "certdesk-"+cert1+".pem"))
	partner.do("downloading the CA bundle", chromedp.Click(tid("download-bundle")))
	bundle := partner.download("CA bundle download", "certdesk-ca-bundle.pem")
	if served := httpGet(t, p.URL+"/ca/bundle.pem"); !bytes.Equal(bundle, served) {
		t.Errorf("the CA bundle downloaded in the browser differs from /ca/bundle.pem")
	}
	verifyClientCert(t, leaf, httpGet(t, p.URL+"/ca/bundle.pem"))
	if !publicKeyEqual(leaf.PublicKey, csrKey.Public()) {
		t.Errorf("the certificate's key is not the uploaded CSR's key")
	}
	for _, id := range uploadIDs {
		if !certHasIdentity(leaf, id) {
			t.Errorf("certificate lacks identity %s (URIs %v, DNS %v)", id, leaf.URIs, leaf.DNSNames)
		}
	}

	// 5. The partner generates a key in the browser; after approval, a PKCS#12 opens with the key matching the certificate.
	genID := e2eOrgURI + "payments"
	partner.do("opening the new-request page again", chromedp.Click(tid("nav-requestsnew")), chromedp.WaitVisible(tid("mode-generate")))
	partner.do("generating a key in the browser",
		chromedp.Click(tid("mode-generate")),
		chromedp.SendKeys(tid("identities-input"), genID),
		chromedp.Click(tid("generate-key")),
		chromedp.WaitVisible(tid("key-generated")),
		chromedp.WaitVisible(tid("server-preview")),
		chromedp.WaitEnabled(tid("submit-request")))
	if got := partner.text("csr-key-type"); !strings.Contains(got, "P-256") {
		t.Errorf("generated key type = %q, want ECDSA P-256 (the default)", got)
	}
	partner.do("reading the key warning", chromedp.WaitVisible(tid("key-browser-only")))
	partner.shot("05-partner-key-generated")
	partner.do("submitting the generated CSR", chromedp.Click(tid("submit-request")), waitText("request-state", "submitted"))
	req2 := strings.TrimPrefix(partner.path(), "/requests/")
	admin.do("opening the second request", chromedp.Navigate(p.URL+"/requests/"+req2), chromedp.WaitVisible(tid("approve-"+req2)))
	admin.do("approving from the request page",
		chromedp.SendKeys(tid("reason-input"), "payments rollout"),
		chromedp.Click(tid("approve-"+req2)),
		waitText("request-state", "issued"))
	admin.shot("05-admin-request-approved")
	partner.do("opening the second issued request", chromedp.Navigate(p.URL+"/requests/"+req2), waitText("request-state", "issued"), chromedp.WaitVisible(tid("key-download")))
	cert2 := partner.text("certificate-link")
	history := eval[[]string](partner, "reading the request history",
		`[...document.querySelectorAll('[data-testid="request-history"] li')].map(li => li.innerText)`)
	if len(history) < 3 || !strings.Contains(history[0], "request.submit") || !anyContainsAll(history, "request.approve", "payments rollout") {
		t.Errorf("the request history should start with request.submit and show the approval with its reason; it reads:\n%s", strings.Join(history, "\n"))
	}
	const passphrase = "correct horse battery"
	partner.do("choosing a passphrase",
		chromedp.SendKeys(tid("passphrase-input"), passphrase),
		chromedp.SendKeys(tid("passphrase-confirm"), passphrase),
		chromedp.WaitEnabled(tid("download-p12")))
	partner.shot("05-partner-key-download")
	partner.do("downloading the PKCS#12", chromedp.Click(tid("download-p12")))
	p12 := partner.download("PKCS#12 download", "certdesk-"+cert2+".p12")
	checkPKCS12(t, p12, passphrase, genID, httpGet(t, p.URL+"/ca/bundle.pem"))

	// 6. The partner revokes the first certificate: reason picker, confirmation, revoked.
	partner.do("opening the first certificate", chromedp.Navigate(p.URL+"/certificates/"+cert1), waitText("certificate-state", "valid"))
	partner.do("opening the revoke dialog", chromedp.Click(tid("revoke-button")), chromedp.WaitVisible(tid("revoke-reason")))
	partner.do("picking keyCompromise", chromedp.SetValue(tid("revoke-reason"), "keyCompromise"), chromedp.WaitVisible(tid("confirm-text")))
	if en := eval[bool](partner, "checking the confirm button", `!document.querySelector('[data-testid="confirm-revoke"]').disabled`); en {
		t.Errorf("the revoke button is enabled before REVOKE was typed for keyCompromise")
	}
	partner.do("confirming", chromedp.SendKeys(tid("confirm-text"), "REVOKE"), chromedp.WaitEnabled(tid("confirm-revoke")))
	partner.shot("06-partner-revoke-dialog")
	partner.do("revoking", chromedp.Click(tid("confirm-revoke")), waitText("certificate-state", "revoked"), chromedp.WaitVisible(tid("revocation-info")))
	if got := partner.text("revocation-info"); !strings.Contains(strings.ToLower(got), "key compromise") && !strings.Contains(got, "keyCompromise") {
		t.Errorf("revocation info = %q, want the reason key compromise", got)
	}
	partner.do("reading the revoked certificate's downloads", chromedp.WaitVisible(tid("not-usable")))
	if n := eval[int](partner, "looking for snippets", `document.querySelectorAll('[data-testid="snippet-curl"],[data-testid="snippet-fetch"]').length`); n != 0 {
		t.Errorf("a revoked certificate still shows %d usage snippets", n)
	}
	partner.shot("06-partner-certificate-revoked")

	// The admin's revocation page shows the CRLs (the issuing CA's now lists
	// the revocation: number 2 or more) and the delegated OCSP responder.
	for attempt := 0; ; attempt++ {
		admin.do("opening the revocation page", chromedp.Navigate(p.URL+"/revocation"), chromedp.WaitVisible(tid("crl-table")), chromedp.WaitVisible(tid("ocsp-info")))
		n := eval[int](admin, "reading the issuing CRL number", `Number(document.querySelector('[data-testid="crl-number-issuing"]')?.textContent || 0)`)
		if n >= 2 {
			break
		}
		if attempt == 10 {
			t.Fatalf("the revocation page shows issuing CRL number %d after a revocation, want 2 or more", n)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := admin.text("ocsp-info"); !strings.Contains(got, "OCSP Responder") {
		t.Errorf("the revocation page's OCSP section reads %q, want the responder certificate", got)
	}
	if got := admin.text("crl-bundle-url"); !strings.HasSuffix(got, "/crl/bundle.pem") {
		t.Errorf("the revocation page's CRL bundle URL reads %q", got)
	}
	admin.shot("06-admin-revocation-status")
	admin.do("opening the organisations", chromedp.Navigate(p.URL+"/orgs"), chromedp.WaitVisible(tid("org-namespace-acme")))
	if got := admin.text("org-namespace-acme"); !strings.Contains(got, "URI prefixes") || !strings.Contains(got, "DNS suffixes") {
		t.Errorf("the organisation's namespace reads %q, want its kinds labelled", got)
	}
	admin.shot("06-admin-orgs")

	// 7. The auditor sees every step in the history and exports it as CSV.
	auditor.signIn(p.URL, "07")
	auditor.do("reading the history", chromedp.WaitVisible(tid("audit-table")), chromedp.WaitVisible(tid("chart-issued")))
	type step struct{ action, object string }
	want := []step{
		{"request.submit", req1}, {"request.approve", req1}, {"certificate.issue", cert1},
		{"request.submit", req2}, {"request.approve", req2}, {"certificate.issue", cert2},
		{"certificate.revoke", cert1},
	}
	rows := eval[[]string](auditor, "reading the audit rows",
		`[...document.querySelectorAll('[data-testid="audit-table"] tbody tr')].map(r => r.innerText.replace(/\s+/g, " "))`)
	for _, w := range want {
		if !anyContainsAll(rows, w.action, w.object) {
			t.Errorf("the audit table has no %s on %s; rows:\n%s", w.action, w.object, strings.Join(rows, "\n"))
		}
	}
	auditor.do("verifying the chain", chromedp.Click(tid("verify-chain")), chromedp.WaitVisible(tid("chain-status")))
	if got := auditor.text("chain-status"); !strings.HasPrefix(got, "Chain intact") {
		t.Errorf("chain status = %q, want intact", got)
	}
	if !eval[bool](auditor, "placing the charts", `!!(document.querySelector('[data-testid="chart-issued"]').compareDocumentPosition(document.querySelector('[data-testid="audit-table"]')) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
		t.Errorf("the charts are below the audit log, want them above it")
	}
	expiring := eval[int](auditor, "counting expiring certificates", `[...document.querySelectorAll('[data-testid="chart-expiring"] rect title')].reduce((n, t) => n + Number(t.textContent.split(": ")[1]), 0)`)
	if expiring < 1 {
		t.Errorf("the expiring chart counts %d certificates, want the valid one issued here", expiring)
	}
	seq := eval[string](auditor, "finding the first event", `document.querySelector('[data-testid="audit-table"] tbody tr').dataset.testid.replace("audit-row-", "")`)
	auditor.do("opening an event", chromedp.Click(tid("audit-show-"+seq)), chromedp.WaitVisible(tid("audit-detail-row-"+seq)))
	if next := eval[string](auditor, "placing the event detail", `document.querySelector('[data-testid="audit-row-`+seq+`"]').nextElementSibling.dataset.testid`); next != "audit-detail-row-"+seq {
		t.Errorf("the event detail opens at %q, want right under its row", next)
	}
	auditor.shot("07-auditor-history")
	auditor.do("exporting CSV", chromedp.Click(tid("export-csv")))
	recs, err := csv.NewReader(bytes.NewReader(auditor.download("CSV export", "*.csv"))).ReadAll()
	if err != nil {
		t.Fatalf("the CSV export does not parse: %v", err)
	}
	if len(recs) < len(want)+1 {
		t.Fatalf("the CSV export has %d lines, want a header and at least %d events", len(recs), len(want))
	}
	var lines []string
	for _, r := range recs[1:] {
		lines = append(lines, strings.Join(r, ","))
	}
	for _, w := range want {
		if !anyContainsAll(lines, w.action, w.object) {
			t.Errorf("the CSV export has no %s on %s (header %v)", w.action, w.object, recs[0])
		}
	}

	// 8. A bad CSR, picked or dropped, shows the reason and submits nothing.
	before, _ := counts(t, p.P.Store)
	partner.do("opening the new-request page for bad CSRs", chromedp.Click(tid("nav-requestsnew")), chromedp.WaitReady(tid("csr-file")))
	garbage := filepath.Join(t.TempDir(), "garbage.csr")
	if err := os.WriteFile(garbage, []byte("this is not a certificate request\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	partner.do("picking a garbage file", chromedp.SetUploadFiles(tid("csr-file"), []string{garbage}), chromedp.WaitVisible(tid("csr-error")))
	if got := partner.text("csr-error"); !strings.Contains(got, "not a usable CSR") {
		t.Errorf("csr-error for garbage = %q", got)
	}
	partner.shot("08-partner-garbage-csr")
	assertSubmitDisabled(t, partner, "garbage CSR")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weak := csrPEM(t, rsaKey, "weak", e2eOrgURI+"weak")
	dropFile(partner, "csr-dropzone", "weak.csr", weak)
	partner.do("dropping an RSA-2048 CSR", chromedp.WaitVisible(tid("csr-preview")), chromedp.Poll[chromedp.Void](
		`document.querySelector('[data-testid="policy-problems"]').textContent.includes("2048")`, chromedp.WithPollingInterval(100*time.Millisecond)))
	problems := partner.text("policy-problems")
	if !strings.Contains(problems, "RSA") || !strings.Contains(problems, "2048") {
		t.Errorf("policy problems for an RSA-2048 CSR = %q, want the key size named", problems)
	}
	partner.do("asking for another identity than the CSR's", chromedp.SendKeys(tid("identities-input"), e2eOrgURI+"other"), chromedp.WaitVisible(tid("ignored-sans")))
	if got := partner.text("ignored-sans"); !strings.Contains(got, e2eOrgURI+"weak") {
		t.Errorf("the preview's note on ignored SANs reads %q, want the CSR's %sweak", got, e2eOrgURI)
	}
	partner.shot("08-partner-rsa2048-csr")
	assertSubmitDisabled(t, partner, "RSA-2048 CSR")
	if after, _ := counts(t, p.P.Store); after != before {
		t.Errorf("bad CSRs changed the number of requests from %d to %d", before, after)
	}

	// The console check above must be able to see a violation at all.
	probe := b.user(t, "csp-probe")
	probe.do("opening the app", chromedp.Navigate(p.URL+"/"), chromedp.WaitVisible(tid("sign-in")))
	eval[bool](probe, "loading a foreign image", `!!document.body.appendChild(Object.assign(document.createElement("img"), { src: "http://192.0.2.1/x.png" }))`)
	if !probe.sawCSPViolation(5 * time.Second) {
		t.Errorf("a blocked foreign image left no CSP message in the console: the CSP check of this test sees nothing")
	}
}

// assertSubmitDisabled checks the submit button is disabled, then presses
// Enter in the form anyway to show that nothing is sent.
func assertSubmitDisabled(t *testing.T, u *e2eUser, what string) {
	t.Helper()
	if !eval[bool](u, "checking the submit button", `document.querySelector('[data-testid="submit-request"]').disabled`) {
		t.Errorf("the submit button is enabled for a %s", what)
	}
	u.do("trying to submit a "+what, chromedp.Evaluate[chromedp.Void](
		`document.querySelector('[data-testid="submit-request"]').form.requestSubmit()`), chromedp.Sleep(500*time.Millisecond))
	if p := u.path(); p != "/requests/new" {
		t.Errorf("after trying to submit a %s the page is %s", what, p)
	}
}

// dropFile drops a file with data on the element with data-testid id, as a
// drag from the desktop does.
func dropFile(u *e2eUser, id, name string, data []byte) {
	u.t.Helper()
	expr := fmt.Sprintf(`(() => {
  const bytes = Uint8Array.from(atob(%q), c => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], %q, { type: "application/pkcs10" }));
  const zone = document.querySelector('[data-testid="%s"]');
  for (const type of ["dragenter", "dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  return true;
})()`, base64.StdEncoding.EncodeToString(data), name, id)
	eval[bool](u, "dropping "+name, expr)
}

func anyContainsAll(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return b
}

func parseCertPEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("the download is not a PEM certificate: %.200q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("parsing the downloaded certificate: %v", err)
	}
	return c
}

// verifyClientCert verifies leaf for clientAuth with the bundle's
// self-signed certificates as roots and the others as intermediates.
func verifyClientCert(t *testing.T, leaf *x509.Certificate, bundle []byte) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for rest := bundle; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("CA bundle: %v", err)
		}
		n++
		if bytes.Equal(c.RawIssuer, c.RawSubject) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	if n < 2 {
		t.Fatalf("the CA bundle holds %d certificates, want the issuing CA and the root", n)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the downloaded certificate does not verify for clientAuth against /ca/bundle.pem: %v", err)
	}
}

// checkPKCS12 opens the bundle with OpenSSL (an independent reader) and
// checks that its key matches its certificate, which verifies for clientAuth.
func checkPKCS12(t *testing.T, p12 []byte, pass, identity string, bundle []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "bundle.p12")
	if err := os.WriteFile(f, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "pkcs12", "-in", f, "-passin", "env:E2E_P12_PASS", "-nodes")
	cmd.Env = append(os.Environ(), "E2E_P12_PASS="+pass)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl cannot open the PKCS#12 with its passphrase: %v: %s", err, stderr.String())
	}
	var key crypto.Signer
	var certs []*x509.Certificate
	for rest := out; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				t.Fatalf("the PKCS#12 key: %v", err)
			}
			key = k.(crypto.Signer)
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatalf("a PKCS#12 certificate: %v", err)
			}
			certs = append(certs, c)
		}
	}
	if key == nil || len(certs) == 0 {
		t.Fatalf("the PKCS#12 holds no key or no certificate:\n%s", stderr.String())
	}
	var leaf *x509.Certificate
	for _, c := range certs {
		if !c.IsCA {
			leaf = c
		}
	}
	if leaf == nil {
		t.Fatalf("the PKCS#12 holds no end-entity certificate (%d CA certificates)", len(certs))
	}
	if len(certs) < 2 {
		t.Errorf("the PKCS#12 holds %d certificates, want the leaf and the issuing CA", len(certs))
	}
	if !publicKeyEqual(leaf.PublicKey, key.Public()) {
		t.Fatalf("the PKCS#12 key does not match its certificate")
	}
	if ec, ok := key.Public().(*ecdsa.PublicKey); !ok || ec.Curve != elliptic.P256() {
		t.Errorf("the browser-generated key is %T, want ECDSA P-256", key.Public())
	}
	if !certHasIdentity(leaf, identity) {
		t.Errorf("the PKCS#12 certificate lacks %s", identity)
	}
	verifyClientCert(t, leaf, bundle)
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func certHasIdentity(c *x509.Certificate, id string) bool {
	for _, u := range c.URIs {
		if u.String() == id {
			return true
		}
	}
	for _, d := range c.DNSNames {
		if d == id {
			return true
		}
	}
	return false
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
