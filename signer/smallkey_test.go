package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3/lint"
)

var caName = pkix.Name{CommonName: "Small Key Test"}

var smallKeyCurves = []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()}

// keyWithScalar is the ECDSA key whose private scalar is d (1 <= d < n).
func keyWithScalar(t testing.TB, curve elliptic.Curve, d *big.Int) *ecdsa.PrivateKey {
	t.Helper()
	raw := d.FillBytes(make([]byte, (curve.Params().N.BitLen()+7)/8))
	k, err := ecdsa.ParseRawPrivateKey(curve, raw)
	if err != nil {
		t.Fatalf("%s key with d = %s: %v", curve.Params().Name, d, err)
	}
	return k
}

// TestSmallScalarTable_HoldsXOfEveryMultipleOfG: entry d−1 of each curve's
// table holds the x-coordinate of d·G, as crypto/elliptic computes it: for
// every d = 1..2^16 on P-224 and P-256 (a chain of the curve's additions),
// and for every 37th d on P-384 and P-521 (its scalar multiplication; 37 is
// prime to the build's 512 lanes, so every lane is checked in every round).
func TestSmallScalarTable_HoldsXOfEveryMultipleOfG(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		every int
	}{{elliptic.P224(), 1}, {elliptic.P256(), 1}, {elliptic.P384(), 37}, {elliptic.P521(), 37}} {
		t.Run(tc.curve.Params().Name, func(t *testing.T) {
			tab := smallScalarTableFor(tc.curve)
			if len(tab.entries) != smallScalarCount {
				t.Fatalf("%d entries, want %d", len(tab.entries), smallScalarCount)
			}
			byD := make([]uint64, smallScalarCount)
			seen := make([]bool, smallScalarCount)
			for _, e := range tab.entries {
				d := e & (smallScalarCount - 1)
				if seen[d] {
					t.Fatalf("d = %d appears twice", d+1)
				}
				seen[d], byD[d] = true, e>>smallKeyBits
			}
			params := tc.curve.Params()
			x, y := params.Gx, params.Gy
			for d := 1; d <= smallScalarCount; d += tc.every {
				if tc.every > 1 {
					x, _ = tc.curve.ScalarBaseMult(big.NewInt(int64(d)).Bytes())
				}
				if byD[d-1] != lowBits(x) {
					t.Fatalf("the entry of d = %d is %x, x(d·G) ends in %x", d, byD[d-1], lowBits(x))
				}
				if tc.every == 1 {
					x, y = tc.curve.Add(x, y, params.Gx, params.Gy)
				}
			}
		})
	}
}

// BenchmarkSmallScalarTableBuild measures the one-time build of each
// curve's table.
func BenchmarkSmallScalarTableBuild(b *testing.B) {
	for _, curve := range smallKeyCurves {
		b.Run(curve.Params().Name, func(b *testing.B) {
			for b.Loop() {
				(&smallScalarTable{curve: curve}).build()
			}
		})
	}
}

// TestSmallKeyLint_AgreesWithZlint: certdesk's e_ecdsa_small_private_key
// and zlint's, run through the lint framework on the same zcrypto
// certificates, give the same status and details for small scalars at the
// edges of zlint's search (its baby-step table of 4096 points and giant
// steps of 8193), their negations n − d, scalars just outside 2^16, random
// small scalars and random keys, on every curve zcrypto parses.
func TestSmallKeyLint_AgreesWithZlint(t *testing.T) {
	theirs := lint.GlobalRegistry().CertificateLints().ByName(smallKeyLintName)
	if theirs == nil {
		t.Fatalf("zlint has no lint %s", smallKeyLintName)
	}
	ours := smallKeyLint()
	if ours.LintMetadata != theirs.LintMetadata {
		t.Errorf("metadata differs:\nours   %+v\nzlint's %+v", ours.LintMetadata, theirs.LintMetadata)
	}
	cfg := lint.NewEmptyConfig()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: caName, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, curve := range smallKeyCurves {
		t.Run(curve.Params().Name, func(t *testing.T) {
			n := curve.Params().N
			var small []int64
			for _, d := range []int64{1, 2, 3, 255, 256, 4095, 4096, 4097, 8192, 8193, 8194, 2 * 8193, 7 * 8193, 1<<16 - 1, 1 << 16, 1<<16 + 1, 1<<16 + 2, 8 * 8193} {
				small = append(small, d)
			}
			for range 100 {
				small = append(small, 1+rng.Int64N(1<<17))
			}
			var scalars []*big.Int
			for _, d := range small {
				scalars = append(scalars, big.NewInt(d), new(big.Int).Sub(n, big.NewInt(d)))
			}
			for range 300 {
				d, _ := rand.Int(rand.Reader, new(big.Int).Sub(n, big.NewInt(1)))
				scalars = append(scalars, d.Add(d, big.NewInt(1)))
			}
			refused := 0
			for i, d := range scalars {
				leaf := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: caName,
					NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
				der, err := x509.CreateCertificate(rand.Reader, leaf, ca, keyWithScalar(t, curve, d).Public(), caKey)
				if err != nil {
					t.Fatal(err)
				}
				c, err := zx509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				want, got := theirs.Execute(c, cfg), ours.Execute(c, cfg)
				if *got != *want {
					t.Fatalf("d = %s: zlint says %+v, certdesk %+v", d, want, got)
				}
				if want.Status == lint.Error {
					refused++
				}
			}
			// Every small scalar up to 2^16, and its negation, is refused.
			wantRefused := 0
			for _, d := range small {
				if d <= 1<<16 {
					wantRefused += 2
				}
			}
			if refused != wantRefused {
				t.Errorf("%d keys refused, want %d", refused, wantRefused)
			}
		})
	}
}

// TestSmallKeyLint_NotApplicable: a certificate without an ECDSA subject key
// is not checked, as zlint's lint does not check it.
func TestSmallKeyLint_NotApplicable(t *testing.T) {
	theirs := lint.GlobalRegistry().CertificateLints().ByName(smallKeyLintName)
	for _, c := range []*zx509.Certificate{
		{PublicKeyAlgorithm: zx509.RSA},
		{PublicKeyAlgorithm: zx509.Ed25519},
		{PublicKeyAlgorithm: zx509.ECDSA, PublicKey: &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}},
	} {
		want, got := theirs.Execute(c, lint.NewEmptyConfig()), smallKeyLint().Execute(c, lint.NewEmptyConfig())
		if want.Status != lint.NA || *got != *want {
			t.Errorf("%v: zlint says %+v, certdesk %+v", c.PublicKeyAlgorithm, want, got)
		}
	}
}

// TestPrepare_SmallScalarKey_RefusedByTheLint: a CSR whose key has private
// scalar 3, or n − 3, passes the CSR policy (its key type and proof of
// possession are fine) and the issuer refuses to prepare its certificate,
// naming e_ecdsa_small_private_key and the scalar.
func TestPrepare_SmallScalarKey_RefusedByTheLint(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, iss := softwareCA(t, caKey)
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		n := curve.Params().N
		for _, d := range []*big.Int{big.NewInt(3), new(big.Int).Sub(n, big.NewInt(3))} {
			t.Run(curve.Params().Name+"/"+d.Text(16), func(t *testing.T) {
				csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
					Subject: pkix.Name{CommonName: "small"}, DNSNames: []string{"billing.acme.example"}}, keyWithScalar(t, curve, d))
				if err != nil {
					t.Fatal(err)
				}
				acc, err := CSRPolicy{}.Check(csr)
				if err != nil {
					t.Fatalf("the CSR policy refuses it: %v", err)
				}
				_, err = iss.Prepare(LeafRequest{PublicKey: acc.CSR.PublicKey, Organization: "Acme Corp",
					Identities: mustIdentities(t, "billing.acme.example")})
				if !errors.Is(err, ErrLint) {
					t.Fatalf("Prepare: %v, want ErrLint", err)
				}
				if want := smallKeyLintName + " (error): the ECDSA private key is 3,"; !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal %q does not say %q", err, want)
				}
			})
		}
	}
}

// BenchmarkSmallKeyLint measures e_ecdsa_small_private_key on one P-256
// leaf, zlint's and certdesk's, through the lint framework, once the tables
// are built.
func BenchmarkSmallKeyLint(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: caName, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	cfg := lint.NewEmptyConfig()
	for _, tc := range []struct {
		name string
		l    *lint.CertificateLint
	}{{"zlint", lint.GlobalRegistry().CertificateLints().ByName(smallKeyLintName)}, {"certdesk", smallKeyLint()}} {
		b.Run(tc.name, func(b *testing.B) {
			tc.l.Execute(c, cfg)
			for b.Loop() {
				if r := tc.l.Execute(c, cfg); r.Status != lint.Pass {
					b.Fatalf("%+v", r)
				}
			}
		})
	}
}
