//go:build benchocsp

// The OCSP load comparison behind docs/performance.md. It is not part of
// make test; run it through .ci/bench-ocsp.sh.
package revocation_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/signertest/cputime"
	"github.com/certdesk/certdesk/web"
)

// loadResult is what we keep of a wrk run.
type loadResult struct {
	rps, p50, p99  float64 // requests/s, seconds
	p90, p999, max float64 // seconds
	ok, total      int
	// genCPU is the CPU time the load generator used (user+system).
	genCPU time.Duration
}

// wrkScript makes wrk POST the DER request in the file it names (BODY), and
// print the figures we keep on one line at the end. wrk.resolve is replaced
// by one that does not probe the address with a connection closed at once:
// openssl ocsp (3.0) spins on such a connection and answers nobody after.
const wrkScript = `
wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end
local f = assert(io.open(BODY, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/ocsp-request"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d bad_status=%d socket_errors=%d p90_us=%d p999_us=%d max_us=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(90), latency:percentile(99.9), latency.max))
end
`

var wrkLine = regexp.MustCompile(`BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) bad_status=(\d+) socket_errors=(\d+) p90_us=(\d+) p999_us=(\d+) max_us=(\d+)`)

// runWrk loads url for dur with c connections on one wrk thread, running
// script (wrkScript for one request file).
func runWrk(t *testing.T, url, script string, c int, dur time.Duration) loadResult {
	t.Helper()
	cmd := exec.Command("wrk", "-t", "1", "-c", strconv.Itoa(c), "-d", strconv.Itoa(max(1, int(dur.Seconds())))+"s", "--timeout", "5s",
		"-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	m := wrkLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("wrk output not understood:\n%s", out)
	}
	n := make([]float64, len(m)-1)
	for i := range n {
		n[i], _ = strconv.ParseFloat(string(m[i+1]), 64)
	}
	r := loadResult{total: int(n[0]), ok: int(n[0] - n[4]), rps: n[0] / (n[1] / 1e6), p50: n[2] / 1e6, p99: n[3] / 1e6,
		p90: n[6] / 1e6, p999: n[7] / 1e6, max: n[8] / 1e6,
		genCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if n[5] > 0 {
		t.Logf("wrk %s: %.0f socket errors", url, n[5])
	}
	if r.ok == 0 {
		t.Fatalf("wrk: no answer:\n%s", out)
	}
	return r
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procCPU is the user+system CPU time a process has used so far.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	p, ok := cputime.Of(pid)
	if !ok {
		t.Fatalf("reading the CPU time of process %d", pid)
	}
	return p.Self
}

// productionServer is the real echo server (web.New, with its middleware,
// request log and metrics) serving env's revocation service.
func productionServer(env *revocationEnv, metrics *web.Metrics) http.Handler {
	return web.New(web.Deps{
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Auth: &web.Auth{},
		Requests: &handlers.Requests{}, Certificates: &handlers.Certificates{}, Orgs: &handlers.Orgs{}, Tokens: &handlers.Tokens{},
		BlockedKeys: &handlers.BlockedKeys{}, Audit: &handlers.Audit{}, CAFiles: &handlers.CAFiles{}, Health: &handlers.Health{},
		Stats: &handlers.Stats{}, Revocation: &handlers.Revocation{Service: env.h}, Metrics: metrics,
		Frontend: fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}},
	})
}

// TestOCSPHandler_Cost is the pre-signed answer through the production
// server's handler chain (httptest, no network): time and allocations per
// answer, less those of the test's own request and recorder.
func TestOCSPHandler_Cost(t *testing.T) {
	metrics := web.NewMetrics(nil, nil, testLogs)
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "cost"), func(c *revocation.Config) { c.Observer = metrics })
	c := env.issue("svc")
	reqDER, err := ocsp.CreateRequest(c.x509, env.ca.CA.Issuer.Certificate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := productionServer(env, metrics)
	// One request and one response writer, reused: what is counted is the
	// server's own work and allocations.
	body := bytes.NewReader(reqDER)
	req := httptest.NewRequest(http.MethodPost, "/ocsp", body)
	w := &reusedWriter{h: http.Header{}}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			body.Reset(reqDER)
			clear(w.h)
			w.code, w.n = 0, 0
			srv.ServeHTTP(w, req)
			if w.code != 200 || w.n < 100 {
				b.Fatalf("answer %d, %d bytes", w.code, w.n)
			}
		}
	})
	t.Logf("%v, %d allocs/op, %d B/op", res, res.AllocsPerOp(), res.AllocedBytesPerOp())
	benchRow(t,
		fmt.Sprintf("| OCSP pre-signed, handler path (web.New, in process): allocs per answer | %d | – | – |", res.AllocsPerOp()),
		fmt.Sprintf("| OCSP pre-signed, handler path (web.New, in process): CPU µs per answer | %.2f | – | – |", float64(res.NsPerOp())/1000))
}

// reusedWriter is an http.ResponseWriter that keeps only the status and
// the length of the body.
type reusedWriter struct {
	h       http.Header
	code, n int
}

func (w *reusedWriter) Header() http.Header { return w.h }
func (w *reusedWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *reusedWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	w.n += len(b)
	return len(b), nil
}

// TestOCSPLoad_CertdeskAgainstOpenSSLResponder loads certdesk (the
// production server, in this process) and openssl ocsp -index with the same
// wrk settings on the same certificates, in paired rounds, and reports the
// rate, p99 latency and CPU of each, and what wrk itself used.
func TestOCSPLoad_CertdeskAgainstOpenSSLResponder(t *testing.T) {
	dur := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil {
		dur = d
	}
	conc := 50
	if n, err := strconv.Atoi(os.Getenv("BENCH_CONCURRENCY")); err == nil {
		conc = n
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	metrics := web.NewMetrics(nil, nil, testLogs)
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "load"), func(c *revocation.Config) { c.DisableOCSPNonce = true; c.Observer = metrics })
	ca := env.ca.CA
	srv := httptest.NewUnstartedServer(productionServer(env, metrics))
	// The timeouts of certdesk serve's http.Server (cmd/certdesk/serve.go):
	// each sets a deadline on the connection for every request.
	srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout = 10*time.Second, 60*time.Second
	srv.Config.WriteTimeout, srv.Config.IdleTimeout, srv.Config.MaxHeaderBytes = 5*time.Minute, 2*time.Minute, 64<<10
	srv.Start()
	t.Cleanup(srv.Close)

	// The same data for both responders: 200 certificates, 20 revoked.
	var index strings.Builder
	var certs []issued
	for i := 0; i < 200; i++ {
		c := env.issue(fmt.Sprintf("svc%03d", i))
		line := fmt.Sprintf("V\t%s\t\t%s\tunknown\t/CN=svc%03d\n", c.x509.NotAfter.UTC().Format("060102150405Z"), indexSerial(c.x509), i)
		if i%10 == 0 {
			rc := env.revoke(c, models.ReasonKeyCompromise)
			line = fmt.Sprintf("R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=svc%03d\n", c.x509.NotAfter.UTC().Format("060102150405Z"),
				rc.RevokedAt.UTC().Format("060102150405Z"), indexSerial(c.x509), i)
		}
		index.WriteString(line)
		certs = append(certs, c)
	}
	env.waitFor("the CRL with 20 entries", 5*time.Second, func() bool { return env.h.Status().CRLs[0].Entries == 20 })

	// openssl's responder: a software delegated responder certificate from
	// the same issuing CA (its key must be a file). One process, so that
	// its CPU is that of one pid.
	softKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	respDER, err := ca.Issuer.NewOCSPResponderCert(softKey.Public(), time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(softKey)
	indexPath := env.write("index.txt", []byte(index.String()))
	_ = os.WriteFile(indexPath+".attr", []byte("unique_subject = no\n"), 0o600)
	issuingPath := env.write("issuing.pem", signer.PEM(ca.Issuer.Certificate().Raw))
	rootPath := env.write("root.pem", signer.PEM(ca.Root.Raw))
	respPath := env.write("resp.pem", signer.PEM(respDER))
	keyPath := env.write("resp.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	// openssl's responder is started afresh for each load: openssl ocsp
	// (3.0) spins on a connection closed before it sent a request, which a
	// load generator may leave behind when it stops, and then answers
	// nobody. One process, so that its CPU is that of one pid.
	startOpenSSL := func(probe []byte) (string, int, func()) {
		port := freePort(t)
		cmd := exec.Command("openssl", "ocsp", "-index", indexPath, "-port", strconv.Itoa(port), "-rsigner", respPath, "-rkey", keyPath,
			"-CA", issuingPath, "-nmin", "60", "-ignore_err")
		cmd.Dir = env.dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		stop := func() { once.Do(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); _ = cmd.Wait() }) }
		t.Cleanup(stop)
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		// Ready when it answers a request (a bare connection would hang it).
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := client.Post(url, "application/ocsp-request", bytes.NewReader(probe))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("openssl ocsp on port %d does not answer: %v", port, err)
			}
		}
		return url, cmd.Process.Pid, stop
	}
	type target struct {
		name  string
		start func(probe []byte) (url string, pid int, stop func())
	}
	targets := []target{
		{"certdesk", func([]byte) (string, int, func()) { return srv.URL + "/ocsp", os.Getpid(), func() {} }},
		{"openssl ocsp -index", startOpenSSL},
	}

	for _, which := range []struct {
		name string
		c    issued
		want string
	}{{"good", certs[1], "good"}, {"revoked", certs[0], "revoked"}} {
		reqDER, err := ocsp.CreateRequest(which.c.x509, ca.Issuer.Certificate(), nil)
		if err != nil {
			t.Fatal(err)
		}
		reqPath := env.write("req-"+which.name+".der", reqDER)
		scriptPath := env.write("post-"+which.name+".lua", []byte(strings.Replace(wrkScript, "BODY", strconv.Quote(reqPath), 1)))
		certPath := env.write("cert-"+which.name+".pem", signer.PEM(which.c.cert.DER))
		for _, tg := range targets {
			// Both answer correctly before the load.
			url, _, stop := tg.start(reqDER)
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, err := exec.Command("openssl", "ocsp", "-issuer", issuingPath, "-cert", certPath, "-url", url, "-no_nonce",
					"-CAfile", rootPath, "-verify_other", issuingPath).CombinedOutput()
				if err == nil && strings.Contains(string(out), ": "+which.want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not answer %s for %s: %v\n%s", tg.name, which.want, indexSerial(which.c.x509), err, out)
				}
				time.Sleep(200 * time.Millisecond)
			}
			stop()
		}
		// Paired rounds, each the same wrk load on both; the order flips
		// every round so that neither peer always runs first.
		var rps, p99, cpu, gen [2][]float64
		var rpsRatio, p99Ratio, cpuRatio []float64
		for round := 0; round < rounds; round++ {
			var r [2]loadResult
			var c [2]float64
			for j := range targets {
				i := (j + round) % len(targets)
				tg := targets[i]
				url, pid, stop := tg.start(reqDER)
				before, rtBefore := procCPU(t, pid), readRuntime()
				r[i] = runWrk(t, url, scriptPath, conc, dur)
				used, rtAfter := procCPU(t, pid)-before, readRuntime()
				stop()
				if r[i].ok != r[i].total {
					t.Fatalf("%s: %d of %d answers had an HTTP error status", tg.name, r[i].total-r[i].ok, r[i].total)
				}
				c[i] = float64(used.Milliseconds()) / (float64(r[i].ok) / 1000)
				g := float64(r[i].genCPU.Milliseconds()) / (float64(r[i].total) / 1000)
				t.Logf("round %d %s: %.0f req/s, p99 %.2f ms, server CPU %.1f ms and wrk CPU %.1f ms per 1,000", round+1, tg.name, r[i].rps, r[i].p99*1000, c[i], g)
				t.Logf("round %d %s: latency p50 %.2f, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f ms", round+1, tg.name,
					r[i].p50*1000, r[i].p90*1000, r[i].p99*1000, r[i].p999*1000, r[i].max*1000)
				if pid == os.Getpid() {
					t.Logf("round %d %s: %s", round+1, tg.name, runtimeDelta(rtBefore, rtAfter, r[i].total))
				}
				rps[i], p99[i], cpu[i], gen[i] = append(rps[i], r[i].rps), append(p99[i], r[i].p99*1000), append(cpu[i], c[i]), append(gen[i], g)
			}
			rpsRatio = append(rpsRatio, r[0].rps/r[1].rps)
			p99Ratio = append(p99Ratio, r[0].p99/r[1].p99)
			cpuRatio = append(cpuRatio, c[0]/c[1])
		}
		work := fmt.Sprintf("OCSP %s, pre-signed, %d connections, %s ×%d rounds", which.name, conc, dur, rounds)
		benchRow(t,
			fmt.Sprintf("| %s: req/s (higher is better) | %.0f | %.0f | %s× |", work, median(rps[0]), median(rps[1]), spread(rpsRatio, "%.2f")),
			fmt.Sprintf("| %s: p99 ms (lower is better) | %.2f | %.2f | %s× |", work, median(p99[0]), median(p99[1]), spread(p99Ratio, "%.2f")),
			fmt.Sprintf("| %s: server CPU ms per 1,000 answers (lower is better) | %.1f | %.1f | %s× |", work, median(cpu[0]), median(cpu[1]), spread(cpuRatio, "%.2f")),
			fmt.Sprintf("| %s: wrk CPU ms per 1,000 requests (the load generator) | %.1f | %.1f | – |", work, median(gen[0]), median(gen[1])))
	}
}

// indexSerial is a serial as openssl's index.txt writes it: upper-case hex
// of whole bytes.
func indexSerial(c *x509.Certificate) string {
	h := fmt.Sprintf("%X", c.SerialNumber)
	if len(h)%2 == 1 {
		h = "0" + h
	}
	return h
}
