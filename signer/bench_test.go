package signer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/signertest/cputime"
)

// benchIssuers returns an issuer whose P-256 key is in SoftHSM2 and one
// with a P-256 software key, under the same kind of hierarchy.
func benchIssuers(b *testing.B) map[string]*signer.Issuer {
	b.Helper()
	_, hsm := hsmCA(b, "bench")
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return map[string]*signer.Issuer{"softhsm": hsm.Issuer, "software": softwareIssuer(b, issKey)}
}

// softwareIssuer returns an issuer with the software key issKey, under a
// P-384 root.
func softwareIssuer(b *testing.B, issKey crypto.Signer) *signer.Issuer {
	b.Helper()
	linter, _ := signer.NewLinter()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rootDER, err := signer.NewRoot(rootKey, pkix.Name{CommonName: "Bench Root"}, time.Now(), 3650*24*time.Hour, linter)
	if err != nil {
		b.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	intDER, err := signer.NewIntermediate(root, rootKey, issKey.Public(), pkix.Name{CommonName: "Bench Issuing"}, time.Now(), 365*24*time.Hour, signer.IntermediateURLs(pkiURL), linter)
	if err != nil {
		b.Fatal(err)
	}
	intCert, _ := x509.ParseCertificate(intDER)
	iss, err := signer.NewIssuer(intCert, issKey, signer.Profile{}, signer.LeafURLs(pkiURL), linter)
	if err != nil {
		b.Fatal(err)
	}
	return iss
}

func benchRequest(b *testing.B) signer.LeafRequest {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ids, err := signer.ParseIdentities([]string{"spiffe://example.org/partners/acme/billing", "billing.acme.example"})
	if err != nil {
		b.Fatal(err)
	}
	return signer.LeafRequest{PublicKey: crypto.PublicKey(key.Public()), Identities: ids, Organization: "Acme Corp"}
}

// BenchmarkIssueLeaf measures complete leaf issuance — template, lint,
// signature by the CA key and its verification — with the CA key in
// SoftHSM2 and in software, at 1 and 2 goroutines. Besides ns/op it
// reports certs/s and the process's CPU time per certificate (cpu-µs/op).
// Figures in docs/performance.md.
func BenchmarkIssueLeaf(b *testing.B) {
	issuers := benchIssuers(b)
	req := benchRequest(b)
	for _, name := range []string{"softhsm", "software"} {
		iss := issuers[name]
		issue := func() {
			p, err := iss.Prepare(req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := iss.Issue(p); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name+"/goroutines=1", func(b *testing.B) {
			cpu := cputime.Self()
			for i := 0; i < b.N; i++ {
				issue()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
			cputime.Report(b, cpu)
		})
		b.Run(name+"/goroutines=2", func(b *testing.B) {
			b.SetParallelism(2 / max(1, runtimeProcs()))
			cpu := cputime.Self()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					issue()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
			cputime.Report(b, cpu)
		})
	}
}

// BenchmarkLintStep isolates Prepare (template, lint certificate and zlint)
// from the CA signature, to report what linting costs: for the P-256 CA key
// in SoftHSM2, and for software CA keys of the other types (Prepare does
// not use the CA key, only its type).
func BenchmarkLintStep(b *testing.B) {
	issuers := benchIssuers(b)
	req := benchRequest(b)
	b.Run("prepare+lint", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := issuers["softhsm"].Prepare(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		b.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"P-384", p384}, {"RSA-3072", rsa3072}, {"Ed25519", ed}} {
		iss := softwareIssuer(b, k.key)
		b.Run("prepare+lint/CA="+k.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := iss.Prepare(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	linter, _ := signer.NewLinter()
	p, _ := issuers["software"].Prepare(req)
	b.Run("zlint-only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := linter.LintCertificate(p.PrecertDER); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCSRCheck measures CSRPolicy.Check, the whole CSR policy (decode,
// parse, key and signature-algorithm rules, proof of possession, extension
// and name rules), on PEM CSRs with two SANs and the key types a client
// sends.
func BenchmarkCSRCheck(b *testing.B) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 3072)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	spiffe, _ := url.Parse("spiffe://example.org/partners/acme/billing")
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"P-256", p256}, {"P-384", p384}, {"RSA-3072", rsaKey}, {"Ed25519", edKey},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "billing.acme.example"}, DNSNames: []string{"billing.acme.example"}, URIs: []*url.URL{spiffe},
		}, tc.key)
		if err != nil {
			b.Fatal(err)
		}
		csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cputime.Self()
			for i := 0; i < b.N; i++ {
				if _, err := (signer.CSRPolicy{}).Check(csrPEM); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, cpu)
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
