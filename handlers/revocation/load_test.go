//go:build benchocsp

// The OCSP load comparison behind docs/performance.md. It is not part of
// make test; run it through .ci/bench-ocsp.sh.
package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// heyResult is what we keep of a hey run.
type heyResult struct {
	rps, p50, p99 float64 // requests/s, seconds
	ok, total     int
}

var (
	heyRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	heyPct    = regexp.MustCompile(`(?m)^\s+(50|99)%+ in ([0-9.]+) secs`)
	heyStatus = regexp.MustCompile(`(?m)^\s+\[(\d+)\]\s+(\d+) responses`)
)

// runHey loads url with POSTs of body for dur with c workers.
func runHey(t *testing.T, url, bodyFile string, c int, dur time.Duration) heyResult {
	t.Helper()
	out, err := exec.Command("hey", "-z", dur.String(), "-c", strconv.Itoa(c), "-m", "POST",
		"-T", "application/ocsp-request", "-D", bodyFile, url).CombinedOutput()
	if err != nil {
		t.Fatalf("hey: %v\n%s", err, out)
	}
	var r heyResult
	if m := heyRPS.FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	for _, m := range heyPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		if string(m[1]) == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	for _, m := range heyStatus.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		r.total += n
		if string(m[1]) == "200" {
			r.ok += n
		}
	}
	if r.rps == 0 || r.ok == 0 {
		t.Fatalf("hey output not understood:\n%s", out)
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

func TestOCSPLoad_CertdeskAgainstOpenSSLResponder(t *testing.T) {
	dur := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil {
		dur = d
	}
	conc := 50
	if n, err := strconv.Atoi(os.Getenv("BENCH_CONCURRENCY")); err == nil {
		conc = n
	}
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "load"), func(c *revocation.Config) { c.DisableOCSPNonce = true })
	ca := env.ca.CA

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
	// the same issuing CA (its key must be a file).
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

	type target struct {
		name string
		url  string
	}
	targets := []target{{"certdesk (pre-signed, SoftHSM responder key)", env.srv.URL + "/ocsp"}}
	for _, multi := range []int{1, 2} {
		port := freePort(t)
		args := []string{"ocsp", "-index", indexPath, "-port", strconv.Itoa(port), "-rsigner", respPath, "-rkey", keyPath,
			"-CA", issuingPath, "-nmin", "60", "-ignore_err"}
		if multi > 1 {
			args = append(args, "-multi", strconv.Itoa(multi))
		}
		cmd := exec.Command("openssl", args...)
		cmd.Dir = env.dir
		// Its own process group, so that the children of -multi end with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); _ = cmd.Wait() })
		targets = append(targets, target{fmt.Sprintf("openssl ocsp -index (-multi %d, software key)", multi), fmt.Sprintf("http://127.0.0.1:%d", port)})
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
		certPath := env.write("cert-"+which.name+".pem", signer.PEM(which.c.cert.DER))
		var lines []string
		var base heyResult
		for i, tg := range targets {
			// Both answer correctly before the load.
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, err := exec.Command("openssl", "ocsp", "-issuer", issuingPath, "-cert", certPath, "-url", tg.url, "-no_nonce",
					"-CAfile", rootPath, "-verify_other", issuingPath).CombinedOutput()
				if err == nil && strings.Contains(string(out), ": "+which.want) {
					break
				}
				if time.Now().After(deadline) {
					idx, _ := os.ReadFile(indexPath)
					t.Fatalf("%s does not answer %s for %s: %v\n%s\nindex:\n%.600s", tg.name, which.want, indexSerial(which.c.x509), err, out, idx)
				}
				time.Sleep(200 * time.Millisecond)
			}
			r := runHey(t, tg.url, reqPath, conc, dur)
			if i == 0 {
				base = r
			}
			lines = append(lines, fmt.Sprintf("| %s | %s | %.0f | %.2f | %.2f | %d/%d | %.1f× |", which.name, tg.name, r.rps, r.p50*1000, r.p99*1000,
				r.ok, r.total, base.rps/r.rps))
		}
		t.Logf("\n| status | responder | req/s | p50 ms | p99 ms | HTTP 200 | certdesk ÷ this |\n|---|---|---|---|---|---|---|\n%s", strings.Join(lines, "\n"))
		if out := os.Getenv("BENCH_OUT"); out != "" {
			f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintln(f, strings.Join(lines, "\n"))
				f.Close()
			}
		}
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
