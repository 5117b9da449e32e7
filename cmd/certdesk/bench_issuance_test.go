//go:build bench

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer/signertest/cputime"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The issuance load generator behind `make bench` (.ci/bench-issuance.sh).
// It runs N clients against each peer for a bounded time, round by round,
// interleaving certdesk and step-ca so that both see the same machine, and
// prints certificates per second (min / median / max over the rounds) and
// certdesk's median over step-ca's. It reports figures; it never fails on a
// timing.
//
// Environment:
//
//	BENCH_CLIENTS    client counts, default "1,4,16"
//	BENCH_ROUNDS     paired rounds, default 3
//	BENCH_DURATION   time per client count, peer and round, default 4s
//	BENCH_DRIVERS    certdesk databases, default "postgres,sqlite"
//	BENCH_OUT        Markdown table rows are written here as well
//	STEPCA_URL       https://127.0.0.1:port of a running step-ca (optional)
//	STEPCA_ROOT      its root certificate (PEM)
//	STEPCA_PROVISIONER, STEPCA_JWK  its JWK provisioner's name and private JWK (JSON)
//	STEPCA_KEY_LABEL where its intermediate key is, for the table ("SoftHSM2")
//	STEPCA_PID       its process, whose CPU time is counted (optional)
//
// Besides the rate, each load records the CPU time spent per certificate
// (user + system, from /proc and getrusage): by this process, which runs
// the load generator and, for certdesk, the portal; and by the server on
// the other side, step-ca's process or the PostgreSQL server's processes.
// On a shared machine, time stolen by other guests slows the rate but is
// not CPU time of these processes, so the CPU per certificate is the
// steadier figure to compare.

// benchOp issues one certificate; it returns an error when the peer did not.
type benchOp func(c *http.Client, i int) error

// benchPeer is one thing under load: a name, the scenario and its operation.
type benchPeer struct {
	name, scenario string
	client         *http.Client
	op             benchOp
	// serverCPU is the CPU time the server outside this process has used
	// so far (step-ca, PostgreSQL); nil when it cannot be read.
	serverCPU func() (time.Duration, bool)
}

// pidCPU is the CPU time of one process (step-ca), or false.
func pidCPU(pid int) func() (time.Duration, bool) {
	return func() (time.Duration, bool) {
		p, ok := cputime.Of(pid)
		return p.Self, ok
	}
}

// postgresCPU finds the PostgreSQL server behind dsn when it runs on this
// machine: the parent of the backend serving a connection.
func postgresCPU(t *testing.T, dsn string) func() (time.Duration, bool) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Logf("PostgreSQL CPU: %v", err)
		return nil
	}
	defer db.Close()
	var backend int
	if err := db.QueryRow("SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Logf("PostgreSQL CPU: %v", err)
		return nil
	}
	p, ok := cputime.Of(backend)
	if !ok {
		t.Logf("PostgreSQL CPU: backend %d is not on this machine", backend)
		return nil
	}
	return func() (time.Duration, bool) { return cputime.Tree(p.PPID) }
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envList(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	return strings.Split(v, ",")
}

// benchCSRs is how many distinct CSRs (each with its own key) a scenario
// cycles through: more than the workflow remembers as checked, so every
// submission checks its CSR, and every certificate lints a key, as a
// new one would.
const benchCSRs = 8192

// csrPool makes n P-256 CSRs for names (each name with %d replaced by the
// CSR's number), so that making keys is not part of the load.
func csrPool(t *testing.T, n int, names ...string) []string {
	t.Helper()
	pool := make([]string, n)
	for i := range pool {
		ns := make([]string, len(names))
		for j, name := range names {
			ns[j] = strings.ReplaceAll(name, "%d", strconv.Itoa(i))
		}
		_, pool[i] = newCSR(t, ns...)
	}
	return pool
}

// postJSON sends body and decodes a JSON object answer, which must have
// status want.
func postJSON(c *http.Client, url, bearer string, body any, want int) (map[string]any, error) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return nil, fmt.Errorf("POST %s: status %d, want %d: %.200s", url, res.StatusCode, want, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("POST %s: %v", url, err)
	}
	return m, nil
}

func benchClient(tlsConf *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute, TLSClientConfig: tlsConf,
	}}
}

// certdeskPeers starts a portal on driver's database and returns its two
// scenarios: a partner's submission and an admin's approval, and a
// partner's auto-approved renewal (one call).
func certdeskPeers(t *testing.T, driver string) []benchPeer {
	var extra []string
	if driver == models.DriverPostgres {
		// PostgreSQL runs on the same cores: a pool of about twice the
		// database server's cores, as docs/operator.md advises.
		extra = append(extra, fmt.Sprintf("  max_connections: %d", 2*runtime.NumCPU()))
	}
	dir := t.TempDir()
	dsn := dsnFor(t, driver, dir)
	tp := startPortalWith(t, driver, dir, dsn, true, io.Discard, extra...)
	var server func() (time.Duration, bool)
	if driver == models.DriverPostgres {
		server = postgresCPU(t, dsn)
	}
	allowAutoRenewal(tp)
	_, base := tp.issue("renew.acme.example")
	newReqs := csrPool(t, benchCSRs, "svc-%d.acme.example")
	renewals := csrPool(t, benchCSRs, "renew.acme.example")
	client := benchClient(nil)
	submitApprove := func(c *http.Client, i int) error {
		r, err := postJSON(c, tp.URL+"/api/v1/requests", tp.Tokens["partner"],
			map[string]any{"csr": newReqs[i%len(newReqs)], "validity_days": 30}, http.StatusCreated)
		if err != nil {
			return err
		}
		a, err := postJSON(c, tp.URL+"/api/v1/requests/"+r["id"].(string)+"/approve", tp.Tokens["admin"],
			map[string]string{"reason": "bench"}, http.StatusOK)
		if err == nil && a["state"] != "issued" {
			err = fmt.Errorf("approved request is %v", a["state"])
		}
		return err
	}
	renew := func(c *http.Client, i int) error {
		r, err := postJSON(c, tp.URL+"/api/v1/requests", tp.Tokens["partner"],
			map[string]any{"csr": renewals[i%len(renewals)], "renewal_of": base}, http.StatusCreated)
		if err == nil && r["state"] != "issued" {
			err = fmt.Errorf("renewal is %v", r["state"])
		}
		return err
	}
	return []benchPeer{
		{name: "certdesk " + driver, scenario: "submit + approve", client: client, op: submitApprove, serverCPU: server},
		{name: "certdesk " + driver, scenario: "auto-approved renewal", client: client, op: renew, serverCPU: server},
	}
}

// stepCAPeer drives a running step-ca's POST /1.0/sign with a one-time
// token from its JWK provisioner per certificate, as `step ca certificate`
// does; nil when STEPCA_URL is not set.
func stepCAPeer(t *testing.T) *benchPeer {
	url := os.Getenv("STEPCA_URL")
	if url == "" {
		return nil
	}
	rootPEM, err := os.ReadFile(os.Getenv("STEPCA_ROOT"))
	if err != nil {
		t.Fatalf("step-ca root: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("step-ca root: no certificate")
	}
	jwkJSON, err := os.ReadFile(os.Getenv("STEPCA_JWK"))
	if err != nil {
		t.Fatalf("step-ca provisioner key: %v", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(jwkJSON); err != nil {
		t.Fatalf("step-ca provisioner key: %v", err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", jwk.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	prov := os.Getenv("STEPCA_PROVISIONER")
	const n = benchCSRs
	names := make([]string, n)
	pool := make([]string, n)
	for i := range pool {
		names[i] = fmt.Sprintf("svc-%d.acme.example", i)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pool[i] = string(csrPEM(t, key, names[i], names[i]))
	}
	op := func(c *http.Client, i int) error {
		now := time.Now()
		jti := make([]byte, 16)
		rand.Read(jti)
		ott, err := jwt.Signed(sig).Claims(jwt.Claims{
			Issuer: prov, Subject: names[i%n], Audience: jwt.Audience{url + "/1.0/sign"},
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: hex.EncodeToString(jti),
		}).Claims(map[string]any{"sans": []string{names[i%n]}}).Serialize()
		if err != nil {
			return err
		}
		_, err = postJSON(c, url+"/1.0/sign", "", map[string]string{"csr": pool[i%n], "ott": ott}, http.StatusCreated)
		return err
	}
	label := os.Getenv("STEPCA_KEY_LABEL")
	if label == "" {
		label = "SoftHSM2"
	}
	var server func() (time.Duration, bool)
	if pid, err := strconv.Atoi(os.Getenv("STEPCA_PID")); err == nil {
		server = pidCPU(pid)
	}
	return &benchPeer{name: "step-ca v0.30.2 (" + label + ")", scenario: "/1.0/sign", client: benchClient(&tls.Config{RootCAs: roots}), op: op, serverCPU: server}
}

// loadResult is what one load measured.
type loadResult struct {
	rate       float64       // certificates per second
	selfCPU    time.Duration // this process's CPU per certificate
	serverCPU  time.Duration // the server's CPU per certificate
	haveServer bool          // serverCPU was read
	failures   int64
	firstErr   error
}

// runLoad runs clients goroutines issuing through p for d and measures it.
func runLoad(p benchPeer, clients int, d time.Duration) loadResult {
	self0 := cputime.Self()
	var server0 time.Duration
	haveServer := p.serverCPU != nil
	if haveServer {
		server0, haveServer = p.serverCPU()
	}
	rate, n, failures, firstErr := runClients(p, clients, d)
	res := loadResult{rate: rate, failures: failures, firstErr: firstErr}
	if n == 0 {
		return res
	}
	res.selfCPU = (cputime.Self() - self0) / time.Duration(n)
	if haveServer {
		if server1, ok := p.serverCPU(); ok {
			res.serverCPU, res.haveServer = (server1-server0)/time.Duration(n), true
		}
	}
	return res
}

// runClients runs clients goroutines issuing through p for d and returns
// the certificates per second, the certificates and the failures.
func runClients(p benchPeer, clients int, d time.Duration) (rate float64, n, failures int64, firstErr error) {
	var done, failed atomic.Int64
	var next atomic.Int64
	var errOnce sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := p.op(p.client, int(next.Add(1))); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds(), done.Load(), failed.Load(), firstErr
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestBenchIssuance is the side-by-side issuance load: see the comment at
// the top of this file.
func TestBenchIssuance(t *testing.T) {
	rounds := envInt("BENCH_ROUNDS", 3)
	d, err := time.ParseDuration(os.Getenv("BENCH_DURATION"))
	if err != nil || d <= 0 {
		d = 4 * time.Second
	}
	var counts []int
	for _, c := range envList("BENCH_CLIENTS", "1,4,16") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			t.Fatalf("BENCH_CLIENTS: %q is not a client count", c)
		}
		counts = append(counts, n)
	}
	var peers []benchPeer
	if step := stepCAPeer(t); step != nil {
		peers = append(peers, *step)
	}
	for _, driver := range envList("BENCH_DRIVERS", "postgres,sqlite") {
		peers = append(peers, certdeskPeers(t, strings.TrimSpace(driver))...)
	}
	// Warm up every peer (connections, caches) outside the figures.
	for _, p := range peers {
		runLoad(p, 2, 500*time.Millisecond)
	}

	rates := map[string][]float64{} // peer/scenario/clients → one rate per round
	// … and the CPU milliseconds per certificate: this process's, and with
	// the server's (when every round read it).
	selfMS, totalMS := map[string][]float64{}, map[string][]float64{}
	serverRead := map[string]bool{}
	key := func(p benchPeer, n int) string { return p.name + "|" + p.scenario + "|" + strconv.Itoa(n) }
	for round := range rounds {
		for _, n := range counts {
			// Rotate the order each round, so no peer always runs first.
			for k := range peers {
				p := peers[(k+round)%len(peers)]
				res := runLoad(p, n, d)
				if res.failures > 0 {
					t.Logf("%s %s, %d clients: %d failures, first: %v", p.name, p.scenario, n, res.failures, res.firstErr)
				}
				k := key(p, n)
				rates[k] = append(rates[k], res.rate)
				ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
				selfMS[k] = append(selfMS[k], ms(res.selfCPU))
				totalMS[k] = append(totalMS[k], ms(res.selfCPU+res.serverCPU))
				serverRead[k] = (round == 0 || serverRead[k]) && res.haveServer
				t.Logf("round %d: %s, %s, %d clients: %.0f certs/s, CPU per certificate %.2f ms here + %.2f ms server",
					round+1, p.name, p.scenario, n, res.rate, ms(res.selfCPU), ms(res.serverCPU))
			}
		}
	}

	var rows []string
	rows = append(rows, fmt.Sprintf("<!-- %d CPUs, %s, %d paired rounds of %s per peer and client count -->",
		runtime.NumCPU(), runtime.Version(), rounds, d))
	rows = append(rows, "| peer | scenario | clients | certs/s min | median | max | ÷ step-ca median "+
		"| CPU ms per cert, load generator (+ portal) | with the server (step-ca, PostgreSQL) | step-ca's ÷ this |",
		"|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range peers {
		for _, n := range counts {
			k := key(p, n)
			r := rates[k]
			ratio, cpuRatio := "—", "—"
			total := "—"
			if serverRead[k] || p.serverCPU == nil && p.scenario != "/1.0/sign" {
				total = fmt.Sprintf("%.2f", median(totalMS[k]))
			}
			if len(peers) > 0 && peers[0].scenario == "/1.0/sign" && p.scenario != "/1.0/sign" {
				step := key(peers[0], n)
				ratio = fmt.Sprintf("%.2f", median(r)/median(rates[step]))
				if total != "—" && serverRead[step] {
					cpuRatio = fmt.Sprintf("%.2f", median(totalMS[step])/median(totalMS[k]))
				}
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %d | %.0f | %.0f | %.0f | %s | %.2f | %s | %s |",
				p.name, p.scenario, n, slices.Min(r), median(r), slices.Max(r), ratio, median(selfMS[k]), total, cpuRatio))
		}
	}
	table := strings.Join(rows, "\n") + "\n"
	fmt.Print(table)
	if out := os.Getenv("BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
