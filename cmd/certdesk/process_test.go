package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/serial"
	"github.com/certdesk/certdesk/web"
	"github.com/certdesk/certdesk/web/devidp"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// certdeskBinary builds the certdesk command once per test binary.
func certdeskBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "certdesk-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "certdesk")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a certdesk child process with its output collected.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	mu     sync.Mutex
	out    strings.Builder
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProcess runs certdesk with args; it is killed when the test ends.
func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(certdeskBinary(t), args...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("the process serving %s exited (%v) before it was ready; output:\n%s", url, p.cmd.ProcessState, p.output())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("%s never became ready; output:\n%s", url, p.output())
}

// logLines returns the JSON log lines of a process whose msg is msg.
func logLines(p *process, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func servedCRLNumber(t *testing.T, url string) (int64, *x509.RevocationList) {
	t.Helper()
	res, err := http.Get(url + "/crl/issuing.crl")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusServiceUnavailable {
		return 0, &x509.RevocationList{} // no CRL generated yet
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		t.Fatalf("CRL from %s (%d): %v", url, res.StatusCode, err)
	}
	return crl.Number.Int64(), crl
}

// TestTwoProcesses_OnePostgres_ExactlyOneGeneratesTheCRL runs two certdesk
// serve processes on one PostgreSQL database. Exactly one of them generates
// each CRL (an advisory lock); both serve it; a revocation through one is
// published by the other within two seconds.
func TestTwoProcesses_OnePostgres_ExactlyOneGeneratesTheCRL(t *testing.T) {
	dsn := modelstest.PostgresDSN(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	urlA, urlB := "http://"+addrA, "http://"+addrB
	idp, err := devidp.Start(context.Background(), devidp.Config{
		Users:   []devidp.User{{Subject: "ada", Username: "ada", Groups: []string{"certdesk-admins"}}},
		Clients: []devidp.Client{{ID: "certdesk", Secret: "s3cret-for-tests", RedirectURIs: []string{urlA + "/auth/callback", urlB + "/auth/callback"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	cfgA := writeTestConfig(t, t.TempDir(), addrA, urlA, idp.Issuer, "postgres", dsn)
	cfgB := writeTestConfig(t, t.TempDir(), addrB, urlB, idp.Issuer, "postgres", dsn)
	cfg, err := loadConfig(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Migrate first, so that the two processes race only on the CRL.
	store, err := models.Open(context.Background(), models.Config{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := []string{"CERTDESK_LOG_LEVEL=info"}
	a := startProcess(t, env, "serve", "--config", cfgA)
	b := startProcess(t, env, "serve", "--config", cfgB)
	waitReady(t, urlA+"/readyz", a)
	waitReady(t, urlB+"/readyz", b)

	generated := func() (int, int) {
		count := func(p *process) int {
			n := 0
			for _, l := range logLines(p, "CRL generated") {
				if l["issuer"] == "issuing" {
					n++
				}
			}
			return n
		}
		return count(a), count(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		na, _ := servedCRLNumber(t, urlA)
		nb, _ := servedCRLNumber(t, urlB)
		if na == 1 && nb == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("served CRL numbers %d and %d, want both 1", na, nb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ga, gb := generated(); ga+gb != 1 {
		t.Fatalf("issuing CRL #1 generated %d times by A and %d by B, want once in all", ga, gb)
	}

	// Issue a certificate and revoke it through A; B serves the new CRL.
	ctx := context.Background()
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	if err := store.CreateOrg(ctx, sys, &models.Organization{Slug: "acme", Name: "Acme", DNSSuffixes: models.StringList{"acme.example"}}); err != nil {
		t.Fatal(err)
	}
	tp := &testPortal{URL: urlA, Tokens: map[string]string{}, t: t}
	for name, act := range map[string]models.Actor{"partner": principals["partner"], "admin": principals["admin"]} {
		tok, hash := web.NewAPIToken()
		if err := store.CreateToken(ctx, sys, &models.APIToken{Name: name, Subject: act.Subject, Role: act.Role, Org: act.Org, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		tp.Tokens[name] = tok
	}
	_, certID := tp.issue("two.acme.example")
	c := tp.must(200, "partner", "GET", "/api/v1/certificates/"+certID, nil)
	revokedAt := time.Now()
	tp.must(200, "partner", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{"reason": "keyCompromise"})
	for {
		n, crl := servedCRLNumber(t, urlB)
		listed := false
		for _, e := range crl.RevokedCertificateEntries {
			if sn, err := serial.FromBig(e.SerialNumber); err == nil && sn.String() == c["serial"] {
				listed = true
			}
		}
		if n >= 2 && listed {
			if took := time.Since(revokedAt); took > 2*time.Second {
				t.Fatalf("B served the revocation after %v, want within 2 s", took)
			}
			break
		}
		if time.Since(revokedAt) > 2*time.Second {
			t.Fatalf("B still serves CRL #%d without serial %s 2 s after the revocation", n, c["serial"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ga, gb := generated(); ga+gb != 2 {
		t.Fatalf("issuing CRLs generated %d times by A and %d by B, want twice in all", ga, gb)
	}
	// The full CRL and its deltas share one sequence of numbers (RFC 5280
	// §5.2.4): two full CRLs, the deltas' numbers between and after them,
	// none twice.
	var numbers, deltas []int64
	store.DB().Model(&models.CRL{}).Where("issuer = ?", "issuing").Order("number").Pluck("number", &numbers)
	store.DB().Model(&models.CRL{}).Where("issuer = ?", "issuing-delta").Order("number").Pluck("number", &deltas)
	if len(numbers) != 2 || numbers[0] != 1 || numbers[1] <= numbers[0] {
		t.Fatalf("stored issuing CRL numbers %v, want two, the first 1", numbers)
	}
	seen := map[int64]bool{}
	for _, n := range append(slices.Clone(numbers), deltas...) {
		if seen[n] {
			t.Fatalf("CRL number %d used twice: full %v, deltas %v", n, numbers, deltas)
		}
		seen[n] = true
	}
}

// TestDemo_OneCommand runs `certdesk demo` as a user would: the portal, the
// CA in a SoftHSM2 token, the demo provider with its users, and a
// certdesk.yaml that operator commands use; then again with the labelled
// software key, which `certdesk serve` refuses.
func TestDemo_OneCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		software bool
	}{{"softhsm", nil, false}, {"software-key", []string{"--software-key"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			idpAddr := freeAddr(t)
			url := "http://" + addr
			d := startProcess(t, nil, append([]string{"demo", "--data", dir, "--addr", addr, "--idp-addr", idpAddr}, tc.args...)...)
			waitReady(t, url+"/readyz", d)
			// The banner follows readiness: the listener accepts before it is printed.
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.output(), "Press Ctrl-C to stop."); {
				if time.Now().After(deadline) {
					t.Fatalf("the demo printed no banner:\n%s", d.output())
				}
				time.Sleep(50 * time.Millisecond)
			}
			out := d.output()
			for _, want := range []string{"certdesk demo is running: " + url, "partner", "admin", "auditor", filepath.Join(dir, "certdesk.yaml")} {
				if !strings.Contains(out, want) {
					t.Errorf("demo output lacks %q:\n%s", want, out)
				}
			}
			if tc.software != strings.Contains(out, "demo key — not for production") {
				t.Errorf("software key %v, but the output says:\n%s", tc.software, out)
			}
			// The sign-in page of the demo provider lists the demo users.
			res, err := http.Get(url + "/auth/login?next=/")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, u := range []string{"login-partner", "login-admin", "login-auditor"} {
				if !strings.Contains(string(page), u) {
					t.Errorf("the demo sign-in page has no %s button", u)
				}
			}
			// An operator command works against the demo's configuration.
			tok, err := exec.Command(certdeskBinary(t), "token", "create", "--config", filepath.Join(dir, "certdesk.yaml"),
				"--subject", "ci", "--role", "partner", "--org", "acme").Output()
			if err != nil {
				t.Fatalf("token create against the demo: %v", err)
			}
			tp := &testPortal{URL: url, Tokens: map[string]string{"ci": strings.TrimSpace(string(tok))}, t: t}
			me := tp.must(200, "ci", "GET", "/api/v1/me", nil)
			if me["org"] != "acme" || me["demo"] != true || me["demo_key"] != tc.software {
				t.Fatalf("/me: %v", me)
			}
			if tc.software {
				// certdesk serve never accepts the demo key.
				msg, err := exec.Command(certdeskBinary(t), "serve", "--config", filepath.Join(dir, "certdesk.yaml")).CombinedOutput()
				if err == nil || !strings.Contains(string(msg), "for the demo only") {
					t.Fatalf("serve with the demo key: %v\n%s", err, msg)
				}
			}
		})
	}
}
