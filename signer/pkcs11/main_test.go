package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/miekg/pkcs11"
)

// childEnv selects a scenario to run in a child process (see runChild). Some
// scenarios need a process of their own: one crypto11 context per process,
// and a second login on a logged-in token accepts any PIN.
const childEnv = "CERTDESK_PKCS11_CHILD"

// hsm is the SoftHSM2 token of this test binary.
var hsm *softhsmtest.Token

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		os.Exit(runChild(scenario))
	}
	var err error
	hsm, err = softhsmtest.New("certdesk-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if registry.tok != nil {
		_ = registry.tok.Close()
	}
	_ = hsm.Remove()
	os.Exit(code)
}

var (
	sharedOnce sync.Once
	sharedTok  *Token
	sharedErr  error
)

// openShared opens the test binary's token once, with a short re-open
// interval so the break-and-restore tests run quickly.
func openShared(t testing.TB) *Token {
	t.Helper()
	sharedOnce.Do(func() {
		u, err := ParseURI(hsm.URI(""))
		if err != nil {
			sharedErr = err
			return
		}
		sharedTok, sharedErr = Open(u)
		if sharedErr == nil {
			sharedTok.setReopenInterval(100 * time.Millisecond)
		}
	})
	if sharedErr != nil {
		t.Fatalf("opening the SoftHSM2 test token: %v", sharedErr)
	}
	return sharedTok
}

func (t *Token) setReopenInterval(d time.Duration) {
	t.mu.Lock()
	t.reopenInterval = d
	t.mu.Unlock()
}

func (t *Token) configureCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.configures
}

// runChildScenario runs this test binary again with scenario selected and
// the given extra environment, and returns its combined output.
func runChildScenario(t *testing.T, scenario string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + scenario}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runChild runs a child scenario and returns the exit code. It prints
// "KINDS: <kinds>" and "ERROR: <message>" lines for the parent to check.
func runChild(scenario string) int {
	var err error
	switch scenario {
	case "open":
		err = childOpen(os.Getenv("CHILD_URI"))
	case "pin-latch":
		err = childPINLatch()
	default:
		err = fmt.Errorf("unknown child scenario %q", scenario)
	}
	fmt.Printf("KINDS: %s\n", errorKinds(err))
	if err != nil {
		fmt.Printf("ERROR: %v\n", err)
		return 1
	}
	return 0
}

func childOpen(uri string) error {
	u, err := ParseURI(uri)
	if err != nil {
		return err
	}
	tok, err := Open(u)
	if err != nil {
		return err
	}
	return tok.Close()
}

// errorKinds names the sentinel errors err wraps.
func errorKinds(err error) string {
	var kinds []string
	for _, k := range []struct {
		name string
		err  error
	}{
		{"ErrBadURI", ErrBadURI}, {"ErrModuleNotFound", ErrModuleNotFound},
		{"ErrTokenNotFound", ErrTokenNotFound}, {"ErrPINIncorrect", ErrPINIncorrect},
		{"ErrKeyNotFound", ErrKeyNotFound}, {"ErrKeyExists", ErrKeyExists},
		{"ErrHSMUnavailable", ErrHSMUnavailable},
	} {
		if errors.Is(err, k.err) {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, ",")
}

// rawModule is a second handle on the PKCS#11 module, under crypto11, used to
// read attributes back and to break the token the way a failing HSM would.
type rawModule struct {
	ctx  *pkcs11.Ctx
	slot uint
}

func openRaw(module, label string) (*rawModule, error) {
	p := pkcs11.New(module)
	if p == nil {
		return nil, fmt.Errorf("loading %s failed", module)
	}
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		p.Destroy()
		return nil, fmt.Errorf("C_Initialize: %w", err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		p.Destroy()
		return nil, fmt.Errorf("C_GetSlotList: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && strings.TrimSpace(ti.Label) == label {
			return &rawModule{ctx: p, slot: s}, nil
		}
	}
	p.Destroy()
	return nil, fmt.Errorf("no token labelled %q", label)
}

// release drops this handle without finalizing the module for crypto11.
func (r *rawModule) release() { r.ctx.Destroy() }

// privateKeyHandles finds the private keys labelled label.
func (r *rawModule) privateKeyHandles(label string) (pkcs11.SessionHandle, []pkcs11.ObjectHandle, error) {
	s, err := r.ctx.OpenSession(r.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return 0, nil, err
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if err := r.ctx.FindObjectsInit(s, tmpl); err != nil {
		r.ctx.CloseSession(s)
		return 0, nil, err
	}
	hs, _, err := r.ctx.FindObjects(s, 10)
	_ = r.ctx.FindObjectsFinal(s)
	if err != nil {
		r.ctx.CloseSession(s)
		return 0, nil, err
	}
	return s, hs, nil
}

// boolAttrs reads boolean attributes of the single private key labelled label.
func (r *rawModule) boolAttrs(label string, types ...uint) (map[uint]bool, error) {
	s, hs, err := r.privateKeyHandles(label)
	if err != nil {
		return nil, err
	}
	defer r.ctx.CloseSession(s)
	if len(hs) != 1 {
		return nil, fmt.Errorf("%d private keys labelled %q, want 1", len(hs), label)
	}
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, a := range types {
		tmpl[i] = pkcs11.NewAttribute(a, nil)
	}
	attrs, err := r.ctx.GetAttributeValue(s, hs[0], tmpl)
	if err != nil {
		return nil, err
	}
	got := map[uint]bool{}
	for _, a := range attrs {
		got[a.Type] = len(a.Value) == 1 && a.Value[0] == 1
	}
	return got, nil
}

// countPrivateKeys counts the private keys labelled label.
func (r *rawModule) countPrivateKeys(label string) (int, error) {
	s, hs, err := r.privateKeyHandles(label)
	if err != nil {
		return 0, err
	}
	r.ctx.CloseSession(s)
	return len(hs), nil
}
