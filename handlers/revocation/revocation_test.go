package revocation_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// openssl runs the openssl CLI and returns its combined output.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func TestRevocation_OpenSSL_OCSPAndCRLSeeTheRevocation(t *testing.T) {
	env := newRevocation(t, modelstest.Postgres(t), hsmCA(t, "openssl"), nil)
	good, bad := env.issue("billing"), env.issue("payments")
	root := env.write("root.pem", signer.PEM(env.ca.CA.Root.Raw))
	issuing := env.write("issuing.pem", signer.PEM(env.ca.CA.Issuer.Certificate().Raw))
	goodPEM := env.write("good.pem", signer.PEM(good.cert.DER))
	badPEM := env.write("bad.pem", signer.PEM(bad.cert.DER))

	ocspCheck := func(t *testing.T, certPath string, extra ...string) string {
		t.Helper()
		args := append([]string{"ocsp", "-issuer", issuing, "-cert", certPath, "-url", env.srv.URL + "/ocsp",
			"-CAfile", root, "-verify_other", issuing}, extra...)
		out, err := openssl(t, args...)
		if err != nil {
			t.Fatalf("openssl ocsp: %v\n%s", err, out)
		}
		if !strings.Contains(out, "Response verify OK") {
			t.Fatalf("openssl could not verify the OCSP response:\n%s", out)
		}
		return out
	}
	verify := func(t *testing.T, certPath string) (string, error) {
		t.Helper()
		_, issuingCRL := env.get("/crl/issuing.pem", nil)
		_, rootCRL := env.get("/crl/root.pem", nil)
		return openssl(t, "verify", "-crl_check_all", "-CAfile", root, "-untrusted", issuing,
			"-CRLfile", env.write("issuing.crl.pem", issuingCRL), "-CRLfile", env.write("root.crl.pem", rootCRL), certPath)
	}

	t.Run("before the revoke", func(t *testing.T) {
		for _, args := range [][]string{nil, {"-no_nonce"}} {
			out := ocspCheck(t, badPEM, args...)
			if !strings.Contains(out, "bad.pem: good") {
				t.Errorf("openssl ocsp %v: want good\n%s", args, out)
			}
			if strings.Contains(strings.ToLower(out), "nonce") {
				t.Errorf("openssl ocsp %v complains about the nonce:\n%s", args, out)
			}
		}
		if out, err := verify(t, badPEM); err != nil || !strings.Contains(out, "OK") {
			t.Errorf("openssl verify -crl_check_all refused a good certificate: %v\n%s", err, out)
		}
	})

	before := env.crlNumber(revocation.CRLIssuing)
	env.revoke(bad, models.ReasonKeyCompromise)
	took := env.waitFor("a new issuing CRL", 2*time.Second, func() bool { return env.crlNumber(revocation.CRLIssuing) > before })
	t.Logf("revoke to published CRL: %v", took)

	t.Run("after the revoke", func(t *testing.T) {
		for _, args := range [][]string{nil, {"-no_nonce"}} {
			out := ocspCheck(t, badPEM, args...)
			if !strings.Contains(out, "bad.pem: revoked") || !strings.Contains(out, "Reason: keyCompromise") {
				t.Errorf("openssl ocsp %v: want revoked with keyCompromise\n%s", args, out)
			}
		}
		if out := ocspCheck(t, goodPEM); !strings.Contains(out, "good.pem: good") {
			t.Errorf("the other certificate is no longer good:\n%s", out)
		}
		out, err := verify(t, badPEM)
		if err == nil || !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify -crl_check_all accepted a revoked certificate: %v\n%s", err, out)
		}
		if out, err := verify(t, goodPEM); err != nil {
			t.Errorf("openssl verify -crl_check_all refused the good certificate: %v\n%s", err, out)
		}
	})

	t.Run("status shows the publish time", func(t *testing.T) {
		resp, body := env.get("/api/v1/revocation", nil)
		var st revocation.Status
		if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %v: %s", resp.StatusCode, err, body)
		}
		if st.LastRevokeToPublishMS == nil || *st.LastRevokeToPublishMS > 2000 {
			t.Errorf("last_revoke_to_publish_ms = %v, want a figure under 2000", st.LastRevokeToPublishMS)
		}
		if st.OCSP == nil || !st.OCSP.Delegated || !strings.Contains(st.OCSP.ResponderSubject, "OCSP Responder") {
			t.Errorf("ocsp = %+v, want the delegated responder", st.OCSP)
		}
		if len(st.CRLs) != 2 || st.CRLs[0].Entries != 1 || !strings.HasSuffix(st.CRLs[0].URL, "/crl/issuing.crl") {
			t.Errorf("crls = %+v, want the issuing CRL with one entry and the root's", st.CRLs)
		}
	})
}

func TestRevocation_CRLEndpoints_ServeDERPEMAndCacheHeaders(t *testing.T) {
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "headers"), nil)
	tests := []struct {
		path, contentType string
		blocks            int
	}{
		{"/crl/issuing.crl", "application/pkix-crl", 0},
		{"/crl/root.crl", "application/pkix-crl", 0},
		{"/crl/issuing.pem", "application/x-pem-file", 1},
		{"/crl/root.pem", "application/x-pem-file", 1},
		{"/crl/bundle.pem", "application/x-pem-file", 2},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := env.get(tt.path, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			cc := resp.Header.Get("Cache-Control")
			if !strings.Contains(cc, "public") || !strings.Contains(cc, "no-transform") || !strings.Contains(cc, "max-age=300") {
				t.Errorf("Cache-Control = %q, want public, max-age=300, no-transform", cc)
			}
			if resp.Header.Get("Last-Modified") == "" || resp.Header.Get("ETag") == "" {
				t.Errorf("Last-Modified %q, ETag %q: both wanted", resp.Header.Get("Last-Modified"), resp.Header.Get("ETag"))
			}
			if tt.blocks == 0 {
				if _, err := x509.ParseRevocationList(body); err != nil {
					t.Errorf("not a DER CRL: %v", err)
				}
			} else if n := bytes.Count(body, []byte("-----BEGIN X509 CRL-----")); n != tt.blocks {
				t.Errorf("%d PEM CRLs, want %d", n, tt.blocks)
			}
			again, _ := env.get(tt.path, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("conditional GET: status %d, want 304", again.StatusCode)
			}
		})
	}
}

func TestRevocation_OCSPRequests_EveryKindGetsTheRightAnswer(t *testing.T) {
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "ocsp-kinds"), nil)
	other := hsmCA(t, "ocsp-other")
	c := env.issue("billing")
	issuer := env.ca.CA.Issuer.Certificate()
	request := func(t *testing.T, cert, iss *x509.Certificate, h crypto.Hash) []byte {
		der, err := ocsp.CreateRequest(cert, iss, &ocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	unknownCert := *c.x509
	unknownCert.SerialNumber = new(big.Int).Lsh(c.x509.SerialNumber, 1)
	good := request(t, c.x509, issuer, crypto.SHA1)
	// Find a request whose base64 has a '/' and a '+', to exercise GET
	// path handling; CreateRequest output varies with the serial only, so
	// escape a standard encoding with both.
	getPath := "/ocsp/" + strings.ReplaceAll(base64.StdEncoding.EncodeToString(good), "+", "%2B")

	post := func(_ *testing.T, body []byte) (*http.Response, []byte) { return env.postOCSP(body) }
	tests := []struct {
		name       string
		do         func(t *testing.T) (*http.Response, []byte)
		wantErr    ocsp.ResponseStatus // 0: a signed response
		wantStatus int
		cached     bool
	}{
		{"good over POST", func(t *testing.T) (*http.Response, []byte) { return post(t, good) }, 0, ocsp.Good, true},
		{"good over POST, SHA-256 CertID", func(t *testing.T) (*http.Response, []byte) { return post(t, request(t, c.x509, issuer, crypto.SHA256)) }, 0, ocsp.Good, true},
		{"good over GET, escaped base64", func(t *testing.T) (*http.Response, []byte) { return env.get(getPath, nil) }, 0, ocsp.Good, true},
		{"good over GET, raw base64 with '/'", func(t *testing.T) (*http.Response, []byte) {
			return env.get("/ocsp/"+base64.StdEncoding.EncodeToString(good), nil)
		}, 0, ocsp.Good, true},
		{"unknown serial", func(t *testing.T) (*http.Response, []byte) {
			return post(t, request(t, &unknownCert, issuer, crypto.SHA1))
		}, 0, ocsp.Unknown, true},
		{"another issuer", func(t *testing.T) (*http.Response, []byte) {
			return post(t, request(t, c.x509, other.CA.Issuer.Certificate(), crypto.SHA1))
		}, ocsp.Unauthorized, 0, false},
		{"garbage body", func(t *testing.T) (*http.Response, []byte) { return post(t, []byte("hello")) }, ocsp.Malformed, 0, false},
		{"empty body", func(t *testing.T) (*http.Response, []byte) { return post(t, nil) }, ocsp.Malformed, 0, false},
		{"GET that is not base64", func(t *testing.T) (*http.Response, []byte) { return env.get("/ocsp/@@not-base64!", nil) }, ocsp.Malformed, 0, false},
		{"GET of base64 garbage", func(t *testing.T) (*http.Response, []byte) { return env.get("/ocsp/aGVsbG8=", nil) }, ocsp.Malformed, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.do(t)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("HTTP %d %q, want 200 application/ocsp-response", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			r, err := ocsp.ParseResponseForCert(body, nil, issuer)
			if tt.wantErr != 0 {
				re, ok := err.(ocsp.ResponseError)
				if !ok || re.Status != tt.wantErr {
					t.Fatalf("err = %v, want OCSP status %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("response does not verify: %v", err)
			}
			if r.Status != tt.wantStatus {
				t.Errorf("status = %d, want %d", r.Status, tt.wantStatus)
			}
			cc := resp.Header.Get("Cache-Control")
			if tt.cached && (!strings.Contains(cc, "max-age=") || !strings.Contains(cc, "public") || !strings.Contains(cc, "no-transform") ||
				resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" || resp.Header.Get("Expires") == "") {
				t.Errorf("caching headers missing: Cache-Control %q ETag %q Last-Modified %q Expires %q", cc,
					resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"), resp.Header.Get("Expires"))
			}
		})
	}
}

func TestOCSP_SameRequestBytes_SeeTheRevocation(t *testing.T) {
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "rawcache"), nil)
	c := env.issue("billing")
	issuer := env.ca.CA.Issuer.Certificate()
	req, err := ocsp.CreateRequest(c.x509, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	status := func() int {
		t.Helper()
		_, body := env.postOCSP(req)
		r, err := ocsp.ParseResponseForCert(body, c.x509, issuer)
		if err != nil {
			t.Fatalf("answer: %v", err)
		}
		return r.Status
	}
	for i := 0; i < 3; i++ { // the repeats are answered from the request's bytes
		if got := status(); got != ocsp.Good {
			t.Fatalf("before the revoke, answer %d: status %d, want good", i, got)
		}
	}
	env.revoke(c, models.ReasonKeyCompromise)
	env.waitFor("the same request bytes answered revoked", 20*time.Second, func() bool { return status() == ocsp.Revoked })
	if got := status(); got != ocsp.Revoked {
		t.Fatalf("after the revoke: status %d, want revoked", got)
	}
}
