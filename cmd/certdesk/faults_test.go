package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

// throwawayPostgres is a PostgreSQL server this test started (never the
// shared one), so that the test may stop it.
type throwawayPostgres struct {
	t    *testing.T
	dir  string
	port string
	DSN  string
}

func pgBin(name string) string { return filepath.Join("/usr/lib/postgresql/15/bin", name) }

// startThrowawayPostgres initialises and starts a PostgreSQL on a free port,
// owned by the postgres user, and stops it when the test ends.
func startThrowawayPostgres(t *testing.T) *throwawayPostgres {
	t.Helper()
	dir, err := os.MkdirTemp("", "certdesk-pg-")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	pg := &throwawayPostgres{t: t, dir: dir, port: port,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", port)}
	for _, d := range []string{filepath.Join(dir, "data"), filepath.Join(dir, "sock")} {
		if out, err := exec.Command("install", "-d", "-o", "postgres", "-m", "700", d).CombinedOutput(); err != nil {
			t.Fatalf("install -d: %v: %s", err, out)
		}
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", pgBin("pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop").Run()
		os.RemoveAll(dir)
	})
	pg.run("initdb", "-D", filepath.Join(dir, "data"), "--auth=trust", "-U", "postgres")
	pg.Start()
	return pg
}

func (pg *throwawayPostgres) run(tool string, args ...string) {
	pg.t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", pgBin(tool)}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		pg.t.Fatalf("%s: %v: %s", tool, err, out)
	}
}

// Start starts the server and waits until it accepts connections.
func (pg *throwawayPostgres) Start() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-l", filepath.Join(pg.dir, "sock", "log"), "-o",
		fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1", pg.port, filepath.Join(pg.dir, "sock")), "-w", "start")
}

// Stop stops the server at once, dropping its connections (an outage).
func (pg *throwawayPostgres) Stop() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-m", "immediate", "-w", "stop")
}

// TestPortal_DatabaseOutage_Answers503WithRetryAfterThenRecovers stops the
// portal's PostgreSQL: token lookups, reads and approvals answer 503 with
// Retry-After, never 500; once it is back, the same requests succeed.
func TestPortal_DatabaseOutage_Answers503WithRetryAfterThenRecovers(t *testing.T) {
	pg := startThrowawayPostgres(t)
	tp := startPortalAt(t, "postgres", t.TempDir(), pg.DSN, true)
	_, csrPEM := newCSR(t, "spiffe://example.org/partners/acme/outage")
	req := tp.must(http.StatusCreated, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csrPEM})
	id := req["id"].(string)

	pg.Stop()
	for _, call := range []struct{ who, method, path string }{
		{"partner", "GET", "/api/v1/requests"},
		{"auditor", "GET", "/api/v1/requests/" + id},
		{"admin", "POST", "/api/v1/requests/" + id + "/approve"},
	} {
		var body any
		if call.method == "POST" {
			body = map[string]any{"reason": "ok"}
		}
		r := tp.do(call.who, call.method, call.path, body)
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s during the outage: %d (Retry-After %q), want 503 with Retry-After: %s",
				call.method, call.path, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}

	pg.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := tp.do("partner", "GET", "/api/v1/requests", nil)
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the database is back: %d: %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := tp.must(http.StatusOK, "admin", "POST", "/api/v1/requests/"+id+"/approve", map[string]any{"reason": "ok"})
	if got["state"] != "issued" {
		t.Fatalf("approval after the outage: %v", got)
	}
}

// downHSM is an issuer whose HSM cannot sign.
type downHSM struct{ issuance.Issuer }

func (downHSM) Issue(*signer.Prepared) ([]byte, error) {
	return nil, errors.New("CKR_DEVICE_REMOVED")
}

// TestPortal_ApproveWithHSMDown_Answers202AndRecoveryIssues: with the HSM
// down an approval answers 202 with the approved request (its certificate
// pending), approving again is 409, and recovery issues it once the HSM is
// back and the lease has passed.
func TestPortal_ApproveWithHSMDown_Answers202AndRecoveryIssues(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			tp := startPortal(t, driver)
			wf := tp.P.Workflow
			real := wf.Issuer
			wf.Issuer = downHSM{real}
			_, csrPEM := newCSR(t, "spiffe://example.org/partners/acme/nohsm")
			id := tp.must(http.StatusCreated, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csrPEM})["id"].(string)
			got := tp.must(http.StatusAccepted, "admin", "POST", "/api/v1/requests/"+id+"/approve", map[string]any{"reason": "ok"})
			if got["state"] != "approved" || got["issuance"] != "pending" {
				t.Fatalf("202 answer: %v, want approved with its issuance pending", got)
			}
			if r := tp.must(http.StatusOK, "partner", "GET", "/api/v1/requests/"+id, nil); r["issuance"] != "pending" {
				t.Fatalf("the request while the HSM is down: %v", r)
			}
			tp.must(http.StatusConflict, "admin2", "POST", "/api/v1/requests/"+id+"/approve", map[string]any{"reason": "again"})
			pending, _, err := tp.P.Store.ListCertificates(t.Context(), models.CertFilter{State: models.CertPending})
			if err != nil || len(pending) != 1 {
				t.Fatalf("pending certificates: %d, %v", len(pending), err)
			}
			wf.Issuer = real
			clock := time.Now().Add(2 * time.Minute)
			tp.P.Store.Now = func() time.Time { return clock }
			if fin, _, err := wf.Recover(t.Context()); err != nil || fin != 1 {
				t.Fatalf("Recover: %d, %v", fin, err)
			}
			if r := tp.must(http.StatusOK, "partner", "GET", "/api/v1/requests/"+id, nil); r["state"] != "issued" {
				t.Fatalf("after recovery: %v", r)
			}
		})
	}
}

// TestPortal_OIDCProviderDownAtStart_ServesAndSignInFollows: a portal
// whose OpenID provider is unreachable starts anyway. It serves CA files and
// API-token requests, /readyz stays ready but says sign-in is unavailable
// and why, /readyz?check=sign_in answers 503, and
// /auth/login answers 503 with Retry-After; once the provider comes up,
// discovery is retried and sign-in works without a restart.
func TestPortal_OIDCProviderDownAtStart_ServesAndSignInFollows(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	idpAddr := freeAddr(t)
	cfg, err := loadConfig(writeTestConfig(t, dir, ln.Addr().String(), url, "http://"+idpAddr, "sqlite", filepath.Join(dir, "certdesk.db")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := buildPortal(ctx, cfg, portalOptions{}, discardLog())
	if err != nil {
		t.Fatalf("the portal did not start with its OpenID provider down: %v", err)
	}
	srv := &http.Server{Handler: p.Echo}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); p.Store.Close() })
	tok, hash := web.NewAPIToken()
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	if err := p.Store.CreateToken(ctx, sys, &models.APIToken{Name: "aud", Subject: "aud", Role: models.RoleAuditor, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, bearer string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	// Ready for the load balancer (CRL, OCSP and tokens need no provider),
	// saying why sign-in is not; the sign-in check is the probe that fails.
	if res, body := get("/readyz", ""); res.StatusCode != http.StatusOK || !strings.Contains(body, `"sign_in":"unavailable"`) || !strings.Contains(body, "discovery") {
		t.Fatalf("/readyz with the provider down: %d %s", res.StatusCode, body)
	}
	if res, body := get("/readyz?check=sign_in", ""); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"sign_in":"unavailable"`) {
		t.Fatalf("/readyz?check=sign_in with the provider down: %d %s", res.StatusCode, body)
	}
	if res, body := get("/auth/login", ""); res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("/auth/login with the provider down: %d (Retry-After %q) %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	for _, path := range []string{"/ca/root.pem", "/api/v1/requests"} {
		if res, body := get(path, tok); res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s with the provider down: %d %s", path, res.StatusCode, body)
		}
	}

	testIdPAt(t, url, idpAddr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, body := get("/readyz?check=sign_in", "")
		if res.StatusCode == http.StatusOK && strings.Contains(body, `"sign_in":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after the provider came up: %d %s", res.StatusCode, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if res, body := get("/auth/login", ""); res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "http://"+idpAddr) {
		t.Fatalf("/auth/login after discovery: %d -> %q %s", res.StatusCode, res.Header.Get("Location"), body)
	}
}

// TestPortal_RetryFailedIssuance_AdminOnlyAndIssues: an approved request
// that recovery could not issue (policy now refuses it) shows issuance
// failed with the reason; partners cannot retry it, an admin's retry once
// policy allows it issues it, and retrying again is 409.
func TestPortal_RetryFailedIssuance_AdminOnlyAndIssues(t *testing.T) {
	tp := startPortal(t, "sqlite")
	ctx := t.Context()
	_, csrPEM := newCSR(t, "spiffe://example.org/partners/acme/retry")
	id := tp.must(http.StatusCreated, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csrPEM})["id"].(string)
	if _, err := tp.P.Store.ApproveRequest(ctx, principals["admin"], id, "ok"); err != nil {
		t.Fatal(err)
	}
	org, _ := tp.P.Store.GetOrg(ctx, "acme")
	allowed := org.URIPrefixes
	org.URIPrefixes = models.StringList{"spiffe://example.org/partners/moved/"}
	if err := tp.P.Store.UpdateOrg(ctx, principals["admin"], org); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	tp.P.Store.Now = func() time.Time { return later }
	if _, failed, err := tp.P.Workflow.Recover(ctx); failed != 1 || err != nil {
		t.Fatalf("Recover: %d failed, %v", failed, err)
	}
	got := tp.must(http.StatusOK, "partner", "GET", "/api/v1/requests/"+id, nil)
	if got["issuance"] != "failed" || got["failure_reason"] == "" {
		t.Fatalf("the failed request: %v", got)
	}
	tp.must(http.StatusForbidden, "partner", "POST", "/api/v1/requests/"+id+"/retry", nil)
	org.URIPrefixes = allowed
	if err := tp.P.Store.UpdateOrg(ctx, principals["admin"], org); err != nil {
		t.Fatal(err)
	}
	if r := tp.must(http.StatusOK, "admin", "POST", "/api/v1/requests/"+id+"/retry", nil); r["state"] != "issued" {
		t.Fatalf("retry: %v", r)
	}
	tp.must(http.StatusConflict, "admin2", "POST", "/api/v1/requests/"+id+"/retry", nil)
}
