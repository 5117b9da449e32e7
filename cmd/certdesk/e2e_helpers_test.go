package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/certdesk/certdesk/frontend"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web/devidp"
)

// chromiumPath is Debian's Chromium, which the end-to-end tests drive.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds one browser step; a step that waits longer fails.
const stepTimeout = 20 * time.Second

// requireFrontend fails the test when the app has not been built into
// frontend/dist: the portal would serve the placeholder page.
func requireFrontend(t *testing.T) {
	t.Helper()
	if _, err := fs.Stat(frontend.Dist(), "index.html"); err != nil {
		t.Fatalf("frontend/dist/index.html is missing (%v): run make test (it builds the frontend)", err)
	}
}

// e2eOrgURI is the URI namespace of the organisation acme in the e2e portal.
const e2eOrgURI = "spiffe://example.org/partners/acme/"

// startE2EPortal runs a portal on driver's database in demo mode, with the
// development OIDC provider showing the demo users partner, admin and
// auditor as buttons, and the organisation acme.
func startE2EPortal(t *testing.T, driver string) *testPortal {
	t.Helper()
	return startE2EPortalWith(t, driver)
}

// startE2EPortalWith is startE2EPortal with more users at the provider.
func startE2EPortalWith(t *testing.T, driver string, extra ...devidp.User) *testPortal {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	portalURL := "http://" + ln.Addr().String()
	idp, err := devidp.Start(context.Background(), devidp.Config{
		Users: append(devidp.DemoUsers(), extra...), Demo: true, Logger: discardLog(),
		Clients: []devidp.Client{{ID: "certdesk", Secret: "s3cret-for-tests",
			RedirectURIs: []string{portalURL + "/auth/callback"}, PostLogoutRedirectURIs: []string{portalURL + "/"}}},
	})
	if err != nil {
		t.Fatalf("starting the demo OIDC provider: %v", err)
	}
	t.Cleanup(func() { idp.Close() })
	cfgPath := writeTestConfig(t, dir, ln.Addr().String(), portalURL, idp.Issuer, driver, dsnFor(t, driver, dir))
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatalf("ca init: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := buildPortal(ctx, cfg, portalOptions{Demo: true}, discardLog())
	if err != nil {
		cancel()
		t.Fatalf("building the portal: %v", err)
	}
	srv := &http.Server{Handler: p.Echo}
	go srv.Serve(ln)
	go p.Revocation.Run(ctx)
	go p.Notifier.Run(ctx)
	t.Cleanup(func() { cancel(); srv.Close(); p.Store.Close() })
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	if err := p.Store.CreateOrg(ctx, sys, &models.Organization{
		Slug: "acme", Name: "Acme Corp", URIPrefixes: models.StringList{e2eOrgURI},
		DNSSuffixes: models.StringList{"acme.example"}, EmailDomains: models.StringList{"acme.example"}, MaxValidityDays: 90,
	}); err != nil {
		t.Fatal(err)
	}
	return &testPortal{URL: portalURL, CfgPath: cfgPath, Cfg: cfg, P: p, Tokens: map[string]string{}, t: t}
}

// e2eCSR makes a P-256 key and a PEM CSR with common name cn for names.
func e2eCSR(t *testing.T, cn string, names ...string) (crypto.Signer, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key, csrPEM(t, key, cn, names...)
}

func csrPEM(t *testing.T, key crypto.Signer, cn string, names ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, n := range names {
		if u, err := url.Parse(n); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// e2eBrowser is one headless Chromium whose users each get their own browser
// context (cookies, storage and downloads apart).
type e2eBrowser struct {
	ctx     context.Context
	shotDir string

	mu    sync.Mutex
	names map[string]string // download guid → suggested file name
	done  map[string]bool   // download guid → completed
}

// newE2EBrowser starts Chromium with the flags that work on a closed network and
// a new empty profile.
func newE2EBrowser(t *testing.T, shotDir string) *e2eBrowser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is not installed at %s (%v): run make test (its testenv installs it)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("window-size", "1280,900"),
		chromedp.UserDataDir(t.TempDir()),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	b := &e2eBrowser{ctx: ctx, shotDir: shotDir, names: map[string]string{}, done: map[string]bool{}}
	if err := chromedp.ListenBrowser(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			b.names[e.GUID] = e.SuggestedFilename
		case *browser.EventDownloadProgress:
			if e.State == browser.DownloadProgressStateCompleted {
				b.done[e.GUID] = true
			}
		}
	}); err != nil {
		t.Fatalf("listening to the browser: %v", err)
	}
	return b
}

// e2eUser is one person in their own browser context.
type e2eUser struct {
	name  string
	b     *e2eBrowser
	ctx   context.Context
	dlDir string
	t     *testing.T

	mu      sync.Mutex
	console []string
}

// cspProbe reports every CSP violation of a page to the console, in words
// the console check looks for, in case Chromium's own report is missed.
const cspProbe = `document.addEventListener("securitypolicyviolation", (e) =>
  console.error("Content Security Policy violation: " + e.violatedDirective + " blocked " + e.blockedURI));`

// user opens a new browser context for name, with downloads into its own
// folder and its console recorded.
func (b *e2eBrowser) user(t *testing.T, name string) *e2eUser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	u := &e2eUser{name: name, b: b, ctx: ctx, dlDir: t.TempDir(), t: t}
	msgs := chromedp.Console(ctx) // opens the tab and subscribes before any page loads
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			u.mu.Lock()
			u.console = append(u.console, fmt.Sprintf("[%s] %s (%s)", m.Type, m.Text, m.URL))
			u.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("%s: installing the CSP probe: %v", name, err)
	}
	yes := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		DownloadPath: u.dlDir, EventsEnabled: &yes,
	}); err != nil {
		t.Fatalf("%s: allowing downloads: %v", name, err)
	}
	return u
}

// do runs actions as one step; on failure it saves a screenshot named
// "FAILED-<step>" and fails the test with the step's name.
func (u *e2eUser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.saveShot("FAILED-" + step)
		u.t.Fatalf("%s: %s: %v\npage text:\n%s", u.name, step, err, u.pageText())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into out.
func eval[T any](u *e2eUser, step, expr string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		u.saveShot("FAILED-" + step)
		u.t.Fatalf("%s: %s: %v", u.name, step, err)
	}
	return v
}

// text returns the text of the first element with the data-testid id.
func (u *e2eUser) text(id string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(tid(id), chromedp.NodeVisible))
	if err != nil {
		u.saveShot("FAILED-text-" + id)
		u.t.Fatalf("%s: reading [data-testid=%q]: %v\npage text:\n%s", u.name, id, err, u.pageText())
	}
	return strings.TrimSpace(s)
}

// pageText is the page's visible text, for failure messages.
func (u *e2eUser) pageText() string {
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// path is the page's location path.
func (u *e2eUser) path() string {
	u.t.Helper()
	return eval[string](u, "reading the location", `location.pathname`)
}

// waitText waits until the element with data-testid id has exactly want as
// its text.
func waitText(id, want string) chromedp.Action[chromedp.Void] {
	sel, _ := json.Marshal(`[data-testid="` + id + `"]`)
	w, _ := json.Marshal(want)
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.textContent.trim() === %s; })()`, sel, w)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))(ctx, t)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("waiting for [data-testid=%q] to read %q: %w", id, want, err)
		}
		return chromedp.Void{}, nil
	}
}

// shot saves a full-page screenshot as testout/e2e/<name>.png.
func (u *e2eUser) shot(name string) {
	u.t.Helper()
	if err := u.saveShot(name); err != nil {
		u.t.Fatalf("%s: screenshot %s: %v", u.name, name, err)
	}
}

func (u *e2eUser) saveShot(name string) error {
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	// Let React finish rendering what the last action started.
	_, _ = chromedp.Run(ctx, chromedp.Sleep(150*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(u.b.shotDir, name+".png"), png, 0o644)
}

// download waits for the download named name (or, with a leading "*", the
// first new one whose name ends with the rest) to complete in u's folder and
// returns its bytes.
func (u *e2eUser) download(step, name string) []byte {
	u.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		u.b.mu.Lock()
		for guid, n := range u.b.names {
			ok := n == name || (strings.HasPrefix(name, "*") && strings.HasSuffix(n, name[1:]))
			if !ok || !u.b.done[guid] {
				continue
			}
			b, err := os.ReadFile(filepath.Join(u.dlDir, guid))
			if errors.Is(err, fs.ErrNotExist) {
				continue // another user's download of the same name
			}
			delete(u.b.names, guid)
			u.b.mu.Unlock()
			if err != nil {
				u.t.Fatalf("%s: %s: reading the download: %v", u.name, step, err)
			}
			return b
		}
		u.b.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	u.saveShot("FAILED-" + step)
	u.b.mu.Lock()
	seen := fmt.Sprint(u.b.names)
	u.b.mu.Unlock()
	u.t.Fatalf("%s: %s: no completed download %q within %s (downloads seen: %s)\npage text:\n%s", u.name, step, name, stepTimeout, seen, u.pageText())
	return nil
}

// sawCSPViolation waits up to d for a CSP message in u's console.
func (u *e2eUser) sawCSPViolation(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		u.mu.Lock()
		for _, m := range u.console {
			if isCSPMessage(m) {
				u.mu.Unlock()
				return true
			}
		}
		u.mu.Unlock()
	}
	return false
}

func isCSPMessage(m string) bool {
	return strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Content-Security-Policy")
}

// checkConsole fails the test when any page showed a CSP violation; other
// errors are logged.
func (u *e2eUser) checkConsole(t *testing.T) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, m := range u.console {
		if isCSPMessage(m) {
			t.Errorf("%s: CSP violation in the console: %s", u.name, m)
		} else if strings.Contains(m, "status of 401") && strings.Contains(m, "/api/v1/me") {
			continue // the signed-out page asks who is signed in, by design
		} else if strings.HasPrefix(m, "[error]") || strings.HasPrefix(m, "[exception]") {
			t.Logf("%s: console: %s", u.name, m)
		}
	}
}

// signIn goes through the OIDC sign-in: the app's sign-in link, the
// provider's login page, the demo user's button, back to the app.
func (u *e2eUser) signIn(portalURL, stepPrefix string) {
	u.t.Helper()
	u.do("opening the app", chromedp.Navigate(portalURL+"/"), chromedp.WaitVisible(tid("sign-in")))
	u.shot(stepPrefix + "-" + u.name + "-signed-out")
	u.do("following Sign in to the provider", chromedp.Click(tid("sign-in")), chromedp.WaitVisible(chromedp.CSS("#login-"+u.name)))
	if got := u.path(); got != "/login" {
		u.t.Fatalf("%s: the sign-in link led to %q, want the provider's /login page", u.name, got)
	}
	u.shot(stepPrefix + "-" + u.name + "-provider-login")
	u.do("choosing the demo user", chromedp.Click(chromedp.CSS("#login-"+u.name)), chromedp.WaitVisible(tid("whoami")))
	if who := u.text("whoami"); !strings.Contains(who, u.name) {
		u.t.Fatalf("%s: signed in as %q", u.name, who)
	}
}

// tid selects by data-testid.
func tid(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// repoRoot is the repository root (two folders above this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
