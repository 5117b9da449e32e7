//go:build bench

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
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

// benchOp issues one certificate; it returns an error when the peer did not.
type benchOp func(c *http.Client, i int) error

// benchPeer is one thing under load: a name, the scenario and its operation.
type benchPeer struct {
	name, scenario string
	client         *http.Client
	op             benchOp
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
	tp := startPortalWith(t, driver, dir, dsnFor(t, driver, dir), true, io.Discard, extra...)
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
		{name: "certdesk " + driver, scenario: "submit + approve", client: client, op: submitApprove},
		{name: "certdesk " + driver, scenario: "auto-approved renewal", client: client, op: renew},
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
	return &benchPeer{name: "step-ca v0.30.2 (" + label + ")", scenario: "/1.0/sign", client: benchClient(&tls.Config{RootCAs: roots}), op: op}
}

// runLoad runs clients goroutines issuing through p for d and returns the
// certificates per second and the failures.
func runLoad(p benchPeer, clients int, d time.Duration) (rate float64, failures int64, firstErr error) {
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
	return float64(done.Load()) / time.Since(start).Seconds(), failed.Load(), firstErr
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
	key := func(p benchPeer, n int) string { return p.name + "|" + p.scenario + "|" + strconv.Itoa(n) }
	for round := range rounds {
		for _, n := range counts {
			// Rotate the order each round, so no peer always runs first.
			for k := range peers {
				p := peers[(k+round)%len(peers)]
				rate, failures, ferr := runLoad(p, n, d)
				if failures > 0 {
					t.Logf("%s %s, %d clients: %d failures, first: %v", p.name, p.scenario, n, failures, ferr)
				}
				rates[key(p, n)] = append(rates[key(p, n)], rate)
				t.Logf("round %d: %s, %s, %d clients: %.0f certs/s", round+1, p.name, p.scenario, n, rate)
			}
		}
	}

	var rows []string
	rows = append(rows, fmt.Sprintf("<!-- %d CPUs, %s, %d paired rounds of %s per peer and client count -->",
		runtime.NumCPU(), runtime.Version(), rounds, d))
	rows = append(rows, "| peer | scenario | clients | certs/s min | median | max | ÷ step-ca median |",
		"|---|---|---|---|---|---|---|")
	for _, p := range peers {
		for _, n := range counts {
			r := rates[key(p, n)]
			ratio := "—"
			if len(peers) > 0 && peers[0].scenario == "/1.0/sign" && p.scenario != "/1.0/sign" {
				ratio = fmt.Sprintf("%.2f", median(r)/median(rates[key(peers[0], n)]))
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %d | %.0f | %.0f | %.0f | %s |",
				p.name, p.scenario, n, slices.Min(r), median(r), slices.Max(r), ratio))
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
