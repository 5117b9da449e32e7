package softhsmtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestNew_InitializesTokenAndSetsConf(t *testing.T) {
	tok, err := New("softhsmtest")
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Remove()
	if got := os.Getenv("SOFTHSM2_CONF"); got != tok.Conf {
		t.Errorf("SOFTHSM2_CONF = %q, want %q", got, tok.Conf)
	}
	out, err := exec.Command("softhsm2-util", "--show-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "softhsmtest") {
		t.Errorf("token label not in --show-slots output:\n%s", out)
	}
	pin, err := os.ReadFile(tok.PINFile())
	if err != nil || string(pin) != tok.PIN+"\n" {
		t.Errorf("PIN file = %q, %v; want the PIN and a newline", pin, err)
	}
}

func TestURI_HasLabelObjectModuleAndPIN(t *testing.T) {
	tok := &Token{Label: "ca token", PIN: "1234", Module: "/usr/lib/softhsm/libsofthsm2.so", Dir: "/tmp/x"}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"pin-value", tok.URI("issuing-ca"), "pkcs11:token=ca%20token;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"},
		{"pin-source", tok.FileURI("root"), "pkcs11:token=ca%20token;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/tmp/x/pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}
