package serial_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
)

func TestParse_AnyFormOfOneSerial_GivesTheOpenSSLForm(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"openssl form", "089CFEDD0A", "089CFEDD0A"},
		{"lower case", "089cfedd0a", "089CFEDD0A"},
		{"leading zero dropped by big.Int", "89cfedd0a", "089CFEDD0A"},
		{"extra leading zeros", "000089cfedd0a", "089CFEDD0A"},
		{"colons as in openssl -text", "08:9c:fe:dd:0a", "089CFEDD0A"},
		{"0x prefix", "0x89CFEDD0A", "089CFEDD0A"},
		{"surrounding space", "  089CFEDD0A\n", "089CFEDD0A"},
		{"high bit set keeps no sign byte", "00FF", "FF"},
		{"one digit", "1", "01"},
		{"20 octets", strings.Repeat("7F", 20), strings.Repeat("7F", 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := serial.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if n.String() != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.in, n, tt.want)
			}
		})
	}
}

func TestParse_Junk_IsRefusedWithAReason(t *testing.T) {
	tests := []struct {
		name, in, reason string
	}{
		{"empty", "", "empty"},
		{"only spaces", "   ", "empty"},
		{"not hex", "08G1", "only hex digits"},
		{"sign", "-01", "only hex digits"},
		{"inner space", "08 9C", "only hex digits"},
		{"zero", "00", "positive"},
		{"leading colon", ":08", "colons"},
		{"double colon", "08::9C", "colons"},
		{"21 octets", "01" + strings.Repeat("00", 20), "longer than 20 octets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := serial.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tt.in, n)
			}
			if !errors.Is(err, serial.ErrInvalid) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Parse(%q) error %q, want ErrInvalid saying %q", tt.in, err, tt.reason)
			}
		})
	}
}

func TestFromBig_RoundTripsThroughBig(t *testing.T) {
	for _, v := range []string{"1", "ff", "100", "89cfedd90a1b2c3d4e5f60718293a4b5", "7f" + strings.Repeat("ee", 19)} {
		want, _ := new(big.Int).SetString(v, 16)
		n, err := serial.FromBig(want)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Big(); got.Cmp(want) != 0 {
			t.Errorf("FromBig(%x).Big() = %x", want, got)
		}
		p, err := serial.Parse(v)
		if err != nil || p != n {
			t.Errorf("Parse(%q) = %v, %v; want %v (the same comparable value)", v, p, err, n)
		}
	}
	if _, err := serial.FromBig(big.NewInt(-1)); err == nil {
		t.Error("FromBig(-1) succeeded")
	}
	if _, err := serial.FromBig(nil); err == nil {
		t.Error("FromBig(nil) succeeded")
	}
	if n, _ := serial.FromBig(new(big.Int)); n.String() != "00" {
		t.Errorf("FromBig(0) = %q, want 00 as openssl prints it", n)
	}
}

func TestString_EqualsOpenSSLSerial(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, v := range []string{
		"089cfedd90a1b2c3d4e5f60718293a4b", // a leading zero nibble: big.Int.Text(16) drops it
		"89cfedd90a1b2c3d4e5f60718293a4b5", // high bit set: DER adds a 00 byte, openssl does not print it
		"0a", "ff", "100",
		"7f" + strings.Repeat("ee", 19),
	} {
		n, _ := new(big.Int).SetString(v, 16)
		tmpl := &x509.Certificate{SerialNumber: n, Subject: pkix.Name{CommonName: "serial " + v},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, v+".pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("openssl", "x509", "-noout", "-serial", "-in", path).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl x509: %v\n%s", err, out)
		}
		want := strings.TrimPrefix(strings.TrimSpace(string(out)), "serial=")
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		got, err := serial.FromBig(cert.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("serial %s: got %s, openssl prints %s", v, got, want)
		}
	}
}
