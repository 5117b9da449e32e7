package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
	"gopkg.in/yaml.v3"

	"github.com/certdesk/certdesk/models/modelstest"
)

// syncBuffer is the portal's JSON log, collected while it runs.
type syncBuffer struct{ modelstest.LogBuffer }

func (s *syncBuffer) lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestMetrics_ExposeIssuanceHSMAndExpiry(t *testing.T) {
	tp := startPortal(t, "sqlite")
	tp.issue("metrics.acme.example")
	r := tp.do("", "GET", "/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("/metrics: %d", r.Status)
	}
	body := string(r.Body)
	for _, want := range []string{
		`certdesk_certificates_issued_total{org="acme"} 1`,
		`certdesk_issuance_duration_seconds_count 1`,
		`certdesk_hsm_sign_duration_seconds_count 1`,
		`certdesk_hsm_sign_errors_total 0`,
		`certdesk_requests{state="issued"} 1`,
		`certdesk_org_soonest_expiry_timestamp_seconds{org="acme"}`,
		`certdesk_hsm_up 1`,
		`certdesk_http_requests_total{code="200",method="POST",route="/api/v1/requests/:id/approve"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestLogs_EveryLineOfARequestCarriesItsRequestID(t *testing.T) {
	var logs syncBuffer
	dir := t.TempDir()
	tp := startPortalWith(t, "sqlite", dir, dsnFor(t, "sqlite", dir), true, &logs)
	_, csr := newCSR(t, "logs.acme.example")
	sub := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr})
	res := tp.do("admin", "POST", "/api/v1/requests/"+sub["id"].(string)+"/approve", map[string]string{"reason": "ok"})
	id := res.Header.Get("X-Request-Id")
	if res.Status != 200 || id == "" {
		t.Fatalf("approve: %d, request id %q", res.Status, id)
	}
	seen := map[string]bool{}
	for _, l := range logs.lines() {
		if l["request_id"] == id {
			msg, _ := l["msg"].(string)
			if msg == "audit" {
				msg += " " + l["action"].(string)
			}
			seen[msg] = true
		}
		if strings.Contains(strings.ToLower(strings.Join(keys(l), " ")), "token") {
			t.Errorf("a log line has a token field: %v", l)
		}
	}
	for _, want := range []string{"http request", "certificate issued", "audit request.approve", "audit certificate.reserve", "audit certificate.issue"} {
		if !seen[want] {
			t.Errorf("no %q line with request id %s (seen %v)", want, id, seen)
		}
	}
	for _, tok := range tp.Tokens {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("an API token appears in the log")
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMonitoringFiles_ReferenceOnlyExportedMetrics checks that every metric
// the shipped alert rules and Grafana dashboard use is one certdesk exports,
// after a run that exercised issuance, revocation, CRLs and OCSP.
func TestMonitoringFiles_ReferenceOnlyExportedMetrics(t *testing.T) {
	tp := startPortal(t, "sqlite")
	tp.issue("stays-valid.acme.example")
	_, certID := tp.issue("monitor.acme.example")
	tp.must(200, "partner", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{"reason": "superseded"})
	leaf := parsePEMCerts(t, tp.do("partner", "GET", "/api/v1/certificates/"+certID+"/pem", nil).Body)[0]
	req, err := ocsp.CreateRequest(leaf, tp.P.CA.Issuer.Certificate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Post(tp.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if r, err := ocsp.ParseResponse(b, tp.P.CA.Issuer.Certificate()); err == nil && r.Status == ocsp.Revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("OCSP never answered revoked")
		}
		time.Sleep(100 * time.Millisecond)
	}
	exported := map[string]bool{}
	for _, line := range strings.Split(string(tp.do("", "GET", "/metrics", nil).Body), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
		}
	}
	name := regexp.MustCompile(`certdesk_[a-z_]+`)
	for _, file := range []string{"../../deploy/prometheus/certdesk-alerts.yml", "../../deploy/grafana/certdesk-dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		refs := name.FindAllString(string(b), -1)
		if len(refs) < 5 {
			t.Fatalf("%s references only %d metrics", file, len(refs))
		}
		for _, m := range refs {
			base := m
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !exported[base] {
				t.Errorf("%s uses %s, which /metrics does not export", file, m)
			}
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	b, _ := os.ReadFile("../../deploy/prometheus/certdesk-alerts.yml")
	if err := yaml.Unmarshal(b, &rules); err != nil || len(rules.Groups) == 0 || len(rules.Groups[0].Rules) < 5 {
		t.Fatalf("alert rules: %v", err)
	}
	var dash map[string]any
	b, _ = os.ReadFile("../../deploy/grafana/certdesk-dashboard.json")
	if err := json.Unmarshal(b, &dash); err != nil || len(dash["panels"].([]any)) < 10 {
		t.Fatalf("dashboard: %v", err)
	}
}

// TestMetrics_BearerToken: with metrics.bearer_token_file set, /metrics
// answers only the configured token, and the token is never logged.
func TestMetrics_BearerToken(t *testing.T) {
	dir := t.TempDir()
	const token = "metrics-token-7f3Qx9LmZ2"
	tokenFile := filepath.Join(dir, "metrics.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	tp := startPortalWith(t, "sqlite", dir, dsnFor(t, "sqlite", dir), true, &logs,
		"metrics:", "  bearer_token_file: "+tokenFile)
	get := func(auth string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", tp.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, tt := range []struct{ name, auth, challenge string }{
		{"no credentials", "", `Bearer realm="certdesk-metrics"`},
		{"wrong token", "Bearer not-the-metrics-token", `Bearer realm="certdesk-metrics", error="invalid_token"`},
		{"an API token is not the metrics token", "Bearer " + tp.Tokens["admin"], `Bearer realm="certdesk-metrics", error="invalid_token"`},
		{"basic auth", "Basic " + token, `Bearer realm="certdesk-metrics"`},
	} {
		res, body := get(tt.auth)
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != tt.challenge ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") || strings.Contains(body, "certdesk_") {
			t.Errorf("%s: %d %q %q %.80s", tt.name, res.StatusCode, res.Header.Get("WWW-Authenticate"), res.Header.Get("Content-Type"), body)
		}
	}
	res, body := get("Bearer " + token)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "certdesk_hsm_up 1") {
		t.Fatalf("with the token: %d %.200s", res.StatusCode, body)
	}
	// Everything else is unchanged: the public PKI routes need no token.
	if r := tp.do("", "GET", "/ca/bundle.pem", nil); r.Status != 200 {
		t.Fatalf("/ca/bundle.pem: %d", r.Status)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("the metrics token is in the log")
	}
}

func TestReadMetricsToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, file, env, want, err string
	}{
		{"neither: open", "", "", "", ""},
		{"file", write("ok", "0123456789abcdefXYZ\n"), "", "0123456789abcdefXYZ", ""},
		{"environment", "", "env-token-0123456789", "env-token-0123456789", ""},
		{"too short", write("short", "abc\n"), "", "", "at least 16 characters"},
		{"two tokens", write("two", "0123456789abcdef 0123456789abcdef\n"), "", "", "without spaces"},
		{"missing file", filepath.Join(dir, "absent"), "", "", "metrics.bearer_token_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CERTDESK_METRICS_TOKEN", tt.env)
			got, err := readMetricsToken(MetricsConfig{BearerTokenFile: tt.file})
			if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("readMetricsToken = %q, %v; want %q and an error about %q", got, err, tt.want, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "abc") {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

// TestReadme_ConfigurationReference_DecodesStrictly keeps the README's
// configuration reference true to the code: every key it shows exists.
func TestReadme_ConfigurationReference_DecodesStrictly(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("the README has no yaml block")
	}
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("the README's configuration reference does not decode: %v", err)
	}
	if cfg.Metrics.BearerTokenFile != "" || cfg.Notifications.SMTP.Port != 587 {
		t.Fatalf("unexpected values decoded: %+v", cfg)
	}
}
