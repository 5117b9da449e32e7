// Package softhsmtest makes a SoftHSM2 token in a temporary directory for the
// tests of one test binary. Call New from TestMain, before anything calls
// crypto11.Configure: SoftHSM2 reads SOFTHSM2_CONF when it is initialised.
package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePaths are the places Debian and other distributions install the
// SoftHSM2 PKCS#11 module; New uses the first that exists.
var ModulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
}

// Token is a SoftHSM2 token made in a temp dir for one test binary.
type Token struct {
	Dir    string // temp dir holding the conf, the token directory and the PIN file
	Conf   string // path of softhsm2.conf (also in SOFTHSM2_CONF)
	Label  string // token label
	PIN    string // user PIN
	SOPIN  string // security officer PIN
	Module string // path of libsofthsm2.so
}

// New makes the dir, writes softhsm2.conf (directories.tokendir,
// log.level = ERROR, objectstore.backend = file), sets SOFTHSM2_CONF in the
// process environment and runs softhsm2-util --init-token --free. It fails
// with a clear message if SoftHSM2 is not installed. The PINs are random.
func New(label string) (*Token, error) {
	if label == "" {
		return nil, errors.New("softhsmtest: empty token label")
	}
	module := ""
	for _, p := range ModulePaths {
		if _, err := os.Stat(p); err == nil {
			module = p
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		return nil, fmt.Errorf("softhsmtest: SoftHSM2 is not installed (need softhsm2-util and libsofthsm2.so in one of %s); run make test, which installs softhsm2",
			strings.Join(ModulePaths, ", "))
	}
	dir, err := os.MkdirTemp("", "certdesk-softhsm-")
	if err != nil {
		return nil, fmt.Errorf("softhsmtest: %w", err)
	}
	t := &Token{
		Dir:    dir,
		Conf:   filepath.Join(dir, "softhsm2.conf"),
		Label:  label,
		PIN:    randomPIN(),
		SOPIN:  randomPIN(),
		Module: module,
	}
	fail := func(err error) (*Token, error) {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("softhsmtest: %w", err)
	}
	if err := os.Mkdir(t.TokenDir(), 0o700); err != nil {
		return fail(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", t.TokenDir())
	if err := os.WriteFile(t.Conf, []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(t.PINFile(), []byte(t.PIN+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if err := os.Setenv("SOFTHSM2_CONF", t.Conf); err != nil {
		return fail(err)
	}
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", t.PIN, "--so-pin", t.SOPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+t.Conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("softhsm2-util --init-token --label %s: %v: %s", label, err, strings.TrimSpace(string(out))))
	}
	return t, nil
}

func randomPIN() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// TokenDir is SoftHSM2's token directory (directories.tokendir).
func (t *Token) TokenDir() string { return filepath.Join(t.Dir, "tokens") }

// PINFile is a file holding the user PIN and a newline, for pin-source URIs.
func (t *Token) PINFile() string { return filepath.Join(t.Dir, "pin") }

// URI returns "pkcs11:token=<label>;object=<object>?module-path=<module>&pin-value=<pin>".
func (t *Token) URI(object string) string {
	return t.uri(object) + "&pin-value=" + escape(t.PIN)
}

// FileURI is like URI but reads the PIN from PINFile through pin-source.
func (t *Token) FileURI(object string) string {
	return t.uri(object) + "&pin-source=file:" + escape(t.PINFile())
}

func (t *Token) uri(object string) string {
	s := "pkcs11:token=" + escape(t.Label)
	if object != "" {
		s += ";object=" + escape(object)
	}
	return s + "?module-path=" + escape(t.Module)
}

// escape percent-encodes what RFC 7512 does not allow verbatim in a value.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Remove deletes the token directory. Close every PKCS#11 context on the
// token first.
func (t *Token) Remove() error {
	return os.RemoveAll(t.Dir)
}

// Main is a TestMain body for packages whose tests share one token: it makes
// the token labelled label (before anything opens the PKCS#11 module), stores
// it in *tok, runs the tests, removes the token and exits with their result.
func Main(m interface{ Run() int }, label string, tok **Token) {
	t, err := New(label)
	if err != nil {
		fmt.Fprintln(os.Stderr, "softhsm token:", err)
		os.Exit(1)
	}
	*tok = t
	code := m.Run()
	_ = t.Remove()
	os.Exit(code)
}
