package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

func TestOpen_MissingModule_NamesThePath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnope.so")
	tests := []struct {
		name, module, want string
	}{
		{"file does not exist", missing, missing + ": no such file or directory"},
		{"directory", t.TempDir(), "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &URI{Token: "certdesk", ModulePath: tt.module, PinValue: "s3cret"}
			_, err := Open(u)
			if !errors.Is(err, ErrModuleNotFound) {
				t.Fatalf("Open error = %v, want ErrModuleNotFound", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "module-path") {
				t.Errorf("error %q does not name the path and the URI attribute", err)
			}
		})
	}
}

func TestOpen_NotAPKCS11Library_IsModuleNotFound(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "bogus.so")
	if err := os.WriteFile(bogus, []byte("not a library"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runChildScenario(t, "open", "CHILD_URI=pkcs11:token=certdesk-test?module-path="+bogus+"&pin-value=1234")
	if err == nil || !strings.Contains(out, "KINDS: ErrModuleNotFound\n") || !strings.Contains(out, bogus+" could not be loaded as a PKCS#11 library") {
		t.Errorf("child: %v\n%s", err, out)
	}
}

// TestOpen_ErrorKinds_AgainstSoftHSM runs each Open in its own process: a
// process that is logged in would accept any PIN, and one process may only
// hold one token.
func TestOpen_ErrorKinds_AgainstSoftHSM(t *testing.T) {
	base := "?module-path=" + hsm.Module
	wrongPIN := filepath.Join(t.TempDir(), "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("00000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		uri       string
		wantKinds string
		wantText  []string
	}{
		{"right token and PIN opens", "pkcs11:token=" + hsm.Label + base + "&pin-value=" + hsm.PIN, "none", nil},
		{"right token and PIN file opens", hsm.FileURI("k"), "none", nil},
		{"wrong token label", "pkcs11:token=no-such-token" + base + "&pin-value=" + hsm.PIN, "ErrTokenNotFound",
			[]string{`no token "no-such-token" in module ` + hsm.Module, "check the token selector"}},
		{"wrong serial", "pkcs11:serial=ffffffffffffffff" + base + "&pin-value=" + hsm.PIN, "ErrTokenNotFound",
			[]string{`no serial "ffffffffffffffff"`}},
		{"wrong slot-id", "pkcs11:slot-id=999999" + base + "&pin-value=" + hsm.PIN, "ErrTokenNotFound",
			[]string{"no slot-id 999999"}},
		{"wrong PIN in file", "pkcs11:token=" + hsm.Label + base + "&pin-source=file:" + wrongPIN, "ErrPINIncorrect",
			[]string{`token "` + hsm.Label + `" refused the PIN`, "check the PIN in the file " + wrongPIN}},
		{"wrong PIN value", "pkcs11:token=" + hsm.Label + base + "&pin-value=00000000", "ErrPINIncorrect",
			[]string{"check the PIN in the pin-value of the key URI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := runChildScenario(t, "open", "CHILD_URI="+tt.uri)
			if !strings.Contains(out, "KINDS: "+tt.wantKinds+"\n") {
				t.Fatalf("want kinds %s; child said:\n%s", tt.wantKinds, out)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(out, w) {
					t.Errorf("message does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "00000000") || strings.Contains(out, hsm.PIN) {
				t.Errorf("output contains a PIN:\n%s", out)
			}
		})
	}
}

func TestOpen_SameToken_ReturnsSameHandle(t *testing.T) {
	tok := openShared(t)
	u, err := ParseURI(hsm.FileURI("some-key"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(u)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if again != tok {
		t.Error("second Open of the same token returned another *Token")
	}
}

func TestOpen_SameTokenOtherPIN_IsRefused(t *testing.T) {
	openShared(t)
	u, err := ParseURI("pkcs11:token=" + hsm.Label + "?module-path=" + hsm.Module + "&pin-value=00000000")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(u)
	if !errors.Is(err, ErrPINIncorrect) || strings.Contains(err.Error(), "00000000") {
		t.Errorf("Open with another PIN = %v, want ErrPINIncorrect without the PIN", err)
	}
}

func TestOpen_SecondTokenInProcess_IsRefused(t *testing.T) {
	openShared(t)
	u, err := ParseURI("pkcs11:token=another?module-path=" + hsm.Module + "&pin-value=1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(u)
	if err == nil || !strings.Contains(err.Error(), "one PKCS#11 context per process") {
		t.Errorf("Open of a second token = %v, want a one-context-per-process error", err)
	}
}

// verify checks sig over digest with pub using opts.
func verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(pub, opts.HashFunc(), digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: pss.Hash})
		}
		return rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig)
	}
	return fmt.Errorf("unexpected public key %T", pub)
}

func TestGenerateKey_EachType_MakesAProtectedKeyThatSigns(t *testing.T) {
	tok := openShared(t)
	raw, err := openRaw(hsm.Module, hsm.Label)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.release()
	digest := sha256.Sum256([]byte("certdesk"))
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	pssAuto := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}
	tests := []struct {
		kt      KeyType
		check   func(crypto.PublicKey) bool
		opts    []crypto.SignerOpts
		sigAlgo x509.SignatureAlgorithm
	}{
		{KeyECP256, func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() },
			[]crypto.SignerOpts{crypto.SHA256}, x509.ECDSAWithSHA256},
		{KeyECP384, func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() },
			[]crypto.SignerOpts{crypto.SHA256}, x509.ECDSAWithSHA384},
		{KeyRSA3072, func(p crypto.PublicKey) bool {
			k, ok := p.(*rsa.PublicKey)
			return ok && k.N.BitLen() == 3072 && k.E == 65537
		},
			[]crypto.SignerOpts{crypto.SHA256, pss, pssAuto}, x509.SHA256WithRSAPSS},
		{KeyRSA4096, func(p crypto.PublicKey) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 4096 },
			[]crypto.SignerOpts{crypto.SHA256, pss}, x509.SHA256WithRSA},
	}
	for _, tt := range tests {
		t.Run(string(tt.kt), func(t *testing.T) {
			label := uniqueLabel("gen-" + strings.ToLower(string(tt.kt)))
			s, err := tok.GenerateKey(label, tt.kt)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if !tt.check(s.Public()) {
				t.Fatalf("public key %T is not a %s key", s.Public(), tt.kt)
			}
			attrs, err := raw.boolAttrs(label, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_DECRYPT,
				pkcs11.CKA_SIGN, pkcs11.CKA_TOKEN, pkcs11.CKA_PRIVATE, pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_NEVER_EXTRACTABLE)
			if err != nil {
				t.Fatalf("reading attributes: %v", err)
			}
			want := map[uint]bool{pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_DECRYPT: false,
				pkcs11.CKA_SIGN: true, pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_ALWAYS_SENSITIVE: true,
				pkcs11.CKA_NEVER_EXTRACTABLE: true}
			for a, v := range want {
				if attrs[a] != v {
					t.Errorf("attribute 0x%x = %v, want %v", a, attrs[a], v)
				}
			}
			for _, o := range tt.opts {
				sig, err := s.Sign(rand.Reader, digest[:], o)
				if err != nil {
					t.Fatalf("Sign(%T): %v", o, err)
				}
				if err := verify(s.Public(), digest[:], sig, o); err != nil {
					t.Errorf("Sign(%T): %v", o, err)
				}
			}
			// The signer is a drop-in crypto.Signer for x509.
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: label},
				NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), SignatureAlgorithm: tt.sigAlgo,
				BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
			if err != nil {
				t.Fatalf("CreateCertificate: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignatureFrom(cert); err != nil {
				t.Errorf("self-signed certificate does not verify: %v", err)
			}
		})
	}
}

func TestGenerateKey_ExistingLabel_IsRefusedWithoutDuplicate(t *testing.T) {
	tok := openShared(t)
	raw, err := openRaw(hsm.Module, hsm.Label)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.release()
	dup := uniqueLabel("dup")
	if _, err := tok.GenerateKey(dup, KeyECP256); err != nil {
		t.Fatal(err)
	}
	for _, kt := range []KeyType{KeyECP256, KeyECP384} {
		_, err := tok.GenerateKey(dup, kt)
		if !errors.Is(err, ErrKeyExists) || !strings.Contains(err.Error(), `"`+dup+`"`) {
			t.Errorf("GenerateKey(dup, %s) = %v, want ErrKeyExists naming the label", kt, err)
		}
	}
	if n, err := raw.countPrivateKeys(dup); err != nil || n != 1 {
		t.Errorf("private keys labelled dup = %d, %v; want 1", n, err)
	}
}

func TestGenerateKey_UnsupportedType_IsRefused(t *testing.T) {
	tok := openShared(t)
	if _, err := tok.GenerateKey("ed", KeyType("Ed25519")); err == nil || !strings.Contains(err.Error(), "unsupported key type") {
		t.Errorf("GenerateKey(Ed25519) = %v", err)
	}
}

func TestSigner_MissingKey_IsKeyNotFoundNamingLabelAndToken(t *testing.T) {
	tok := openShared(t)
	_, err := tok.Signer("no-such-key")
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Signer(no-such-key) = %v, want ErrKeyNotFound", err)
	}
	for _, w := range []string{`"no-such-key"`, `token "` + hsm.Label + `"`, "object="} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %s", err, w)
		}
	}
}

func TestSigner_SameLabel_ReturnsCachedSigner(t *testing.T) {
	tok := openShared(t)
	cached := uniqueLabel("cached")
	generated, err := tok.GenerateKey(cached, KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tok.Signer(cached)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Signer(cached)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a != generated {
		t.Error("Signer returned different objects for the same label")
	}
}

func TestSigner_EightGoroutines_AllSignaturesVerify(t *testing.T) {
	tok := openShared(t)
	concurrent := uniqueLabel("concurrent")
	if _, err := tok.GenerateKey(concurrent, KeyECP256); err != nil {
		t.Fatal(err)
	}
	s, err := tok.Signer(concurrent)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				d := sha256.Sum256(fmt.Appendf(nil, "%d/%d", g, i))
				sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
				if err == nil {
					err = verify(s.Public(), d[:], sig, crypto.SHA256)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPing_HealthyToken_Succeeds(t *testing.T) {
	if err := openShared(t).Ping(); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// labelSeq makes key labels unique within the process, so that the tests
// pass when repeated (go test -count=N) against the same token.
var labelSeq atomic.Int64

func uniqueLabel(base string) string { return fmt.Sprintf("%s-%d", base, labelSeq.Add(1)) }
