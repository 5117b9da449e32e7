package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
)

// BenchmarkSignP256 compares a P-256 signature through SoftHSM2 with the same
// signature by a Go software key, serially and from parallel goroutines.
func BenchmarkSignP256(b *testing.B) {
	tok := openShared(b)
	hsmKey, err := tok.GenerateKey("bench-p256", KeyECP256)
	if errors.Is(err, ErrKeyExists) {
		hsmKey, err = tok.Signer("bench-p256")
	}
	if err != nil {
		b.Fatal(err)
	}
	softKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("benchmark"))
	for _, bc := range []struct {
		name string
		s    crypto.Signer
	}{{"softhsm", hsmKey}, {"software", softKey}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bc.s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
