package signer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/serial"
)

// crlEntries makes n revoked entries with random 128-bit serials.
func crlEntries(n int, now time.Time) []signer.RevokedCert {
	out := make([]signer.RevokedCert, n)
	buf := make([]byte, 16)
	for i := range out {
		_, _ = rand.Read(buf)
		buf[0] &= 0x7f
		buf[0] |= 0x01
		sn, err := serial.FromBig(new(big.Int).SetBytes(buf))
		if err != nil {
			panic(err)
		}
		out[i] = signer.RevokedCert{Serial: sn, RevokedAt: now.Add(-time.Duration(i%86400) * time.Second), Reason: []int{0, 1, 4, 5}[i%4]}
	}
	return out
}

// peakHeap samples HeapInuse every few milliseconds until stop is called,
// and returns the highest value seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkCRLSign is CRL generation — build, zlint with the throwaway
// key, sign, parse and verify — with n entries. The issuing key is in
// SoftHSM ("hsm") or a software P-256 key ("software"); one signature per
// CRL, so the key makes little difference. The database read is not
// included. Reported: ns/op, peak-heap-MB (HeapInuse sampled every 5 ms,
// entries included), crl-MB.
func BenchmarkCRLSign(b *testing.B) {
	_, ca := hsmCA(b, "bench")
	soft, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	softCert := softCA(b, soft)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, keyKind := range []string{"hsm", "software"} {
			b.Run(fmt.Sprintf("entries=%d/key=%s", n, keyKind), func(b *testing.B) {
				var s *signer.CRLSigner
				var err error
				if keyKind == "hsm" {
					s, err = ca.Issuer.CRLSigner()
				} else {
					s, err = signer.NewCRLSigner(softCert, soft, ca.Issuer.Linter())
				}
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				runtime.GC()
				stop := peakHeap()
				var size int
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					der, err := s.Sign(signer.CRLTemplate{Number: int64(i + 1), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour), Entries: crlEntries(n, now)})
					if err != nil {
						b.Fatal(err)
					}
					size = len(der)
				}
				b.StopTimer()
				b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
				b.ReportMetric(float64(size)/(1<<20), "crl-MB")
			})
		}
	}
}

// softCA is a self-signed software CA certificate for key.
func softCA(b *testing.B, key *ecdsa.PrivateKey) *x509.Certificate {
	ski, _ := signer.SubjectKeyID(key.Public())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench software CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, SubjectKeyId: ski,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}
