package pkcs11

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokenFiles returns the path of the test token's directory inside
// SoftHSM2's token directory (one UUID-named directory per token).
func tokenFiles(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir(hsm.TokenDir())
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one token directory in %s: %v, %v", hsm.TokenDir(), entries, err)
	}
	return filepath.Join(hsm.TokenDir(), entries[0].Name())
}

// signAndVerify signs a fresh digest with s and verifies the signature.
func signAndVerify(s crypto.Signer, msg string) error {
	d := sha256.Sum256([]byte(msg))
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	return verify(s.Public(), d[:], sig, crypto.SHA256)
}

func TestSigner_TokenBreaksAndComesBack(t *testing.T) {
	tok := openShared(t)
	label := uniqueLabel("reopen")
	s, err := tok.GenerateKey(label, KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond // openShared's re-open interval

	tests := []struct {
		name string
		// brk breaks the token under crypto11 and returns how to restore it.
		brk func(t *testing.T, raw *rawModule) (restore func())
		// tokenGone: while broken, re-opening fails with ErrTokenNotFound.
		tokenGone bool
	}{
		{
			name: "all sessions closed under crypto11 (CKR_SESSION_HANDLE_INVALID)",
			brk: func(t *testing.T, raw *rawModule) func() {
				if err := raw.ctx.CloseAllSessions(raw.slot); err != nil {
					t.Fatalf("C_CloseAllSessions: %v", err)
				}
				return func() {}
			},
		},
		{
			name: "module finalized (CKR_CRYPTOKI_NOT_INITIALIZED) and token files moved away",
			brk: func(t *testing.T, raw *rawModule) func() {
				if err := raw.ctx.Finalize(); err != nil {
					t.Fatalf("C_Finalize: %v", err)
				}
				dir := tokenFiles(t)
				moved := filepath.Join(hsm.Dir, "moved-away")
				if err := os.Rename(dir, moved); err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.Rename(moved, dir); err != nil {
						t.Fatal(err)
					}
				}
			},
			tokenGone: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			time.Sleep(interval) // let an earlier re-open attempt age out
			if err := signAndVerify(s, "before"); err != nil {
				t.Fatalf("healthy token: %v", err)
			}
			raw, err := openRaw(hsm.Module, hsm.Label)
			if err != nil {
				t.Fatal(err)
			}
			restore := tt.brk(t, raw)
			raw.release()

			err = signAndVerify(s, "broken")
			if !errors.Is(err, ErrHSMUnavailable) {
				t.Fatalf("Sign on a broken token = %v, want ErrHSMUnavailable", err)
			}
			t.Logf("while broken: %v", err)

			if tt.tokenGone {
				err = signAndVerify(s, "re-open fails")
				if !errors.Is(err, ErrHSMUnavailable) || !errors.Is(err, ErrTokenNotFound) {
					t.Fatalf("Sign while the token is gone = %v, want ErrHSMUnavailable and ErrTokenNotFound", err)
				}
				t.Logf("re-open while gone: %v", err)
				n := tok.configureCount()
				for range 5 {
					if err := signAndVerify(s, "rate limited"); !errors.Is(err, ErrHSMUnavailable) {
						t.Fatalf("Sign right after a failed re-open = %v, want ErrHSMUnavailable", err)
					}
					if err := tok.Ping(); !errors.Is(err, ErrHSMUnavailable) {
						t.Fatalf("Ping while gone = %v, want ErrHSMUnavailable", err)
					}
				}
				if got := tok.configureCount(); got != n {
					t.Errorf("re-open attempted %d more times within the rate limit, want 0", got-n)
				}
			}

			restore()
			time.Sleep(interval + 20*time.Millisecond)
			if err := signAndVerify(s, "after"); err != nil {
				t.Fatalf("Sign after restoring the token: %v", err)
			}
			if err := tok.Ping(); err != nil {
				t.Errorf("Ping after restoring the token: %v", err)
			}
			if again, err := tok.Signer(label); err != nil || again != s {
				t.Errorf("Signer after re-open = %v, %v; want the same cached signer", again, err)
			}
		})
	}
}

func TestSigner_ConcurrentSignersDuringBreak_GetValidSignatureOrHSMUnavailable(t *testing.T) {
	tok := openShared(t)
	s, err := tok.GenerateKey(uniqueLabel("reopen-concurrent"), KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	var ok, unavailable atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := signAndVerify(s, fmt.Sprint(g, i))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrHSMUnavailable):
					unavailable.Add(1)
				default:
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	raw, err := openRaw(hsm.Module, hsm.Label)
	if err != nil {
		t.Fatal(err)
	}
	// Break between operations: SoftHSM2 frees a session that another
	// thread is signing with when C_CloseAllSessions races with C_Sign (heap
	// corruption), so hold the token's lock while the sessions are closed.
	tok.mu.Lock()
	err = raw.ctx.CloseAllSessions(raw.slot)
	tok.mu.Unlock()
	raw.release()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error kind: %v", err)
	}
	if unavailable.Load() == 0 {
		t.Error("no signer saw ErrHSMUnavailable: the token was not broken")
	}
	if err := signAndVerify(s, "after"); err != nil {
		t.Errorf("Sign after the break: %v", err)
	}
	t.Logf("%d signatures, %d ErrHSMUnavailable", ok.Load(), unavailable.Load())
}

func TestReopen_WrongPIN_IsNotRetried(t *testing.T) {
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(hsm.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=" + hsm.Label + "?module-path=" + hsm.Module + "&pin-source=file:" + pinFile
	out, err := runChildScenario(t, "pin-latch", "CHILD_URI="+uri, "CHILD_PIN_FILE="+pinFile, "CHILD_PIN="+hsm.PIN)
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// childPINLatch: a token whose re-open meets a wrong PIN reports
// ErrPINIncorrect, never logs in again, and recovers when opened anew.
func childPINLatch() error {
	u, err := ParseURI(os.Getenv("CHILD_URI"))
	if err != nil {
		return err
	}
	pinFile, pin := os.Getenv("CHILD_PIN_FILE"), os.Getenv("CHILD_PIN")
	tok, err := Open(u)
	if err != nil {
		return err
	}
	const interval = 50 * time.Millisecond
	tok.setReopenInterval(interval)
	s, err := tok.GenerateKey("latch", KeyECP256)
	if errors.Is(err, ErrKeyExists) {
		s, err = tok.Signer("latch")
	}
	if err != nil {
		return err
	}
	if err := signAndVerify(s, "healthy"); err != nil {
		return fmt.Errorf("healthy token: %w", err)
	}
	if err := os.WriteFile(pinFile, []byte("00000000\n"), 0o600); err != nil {
		return err
	}
	raw, err := openRaw(u.ModulePath, u.Token)
	if err != nil {
		return err
	}
	if err := raw.ctx.CloseAllSessions(raw.slot); err != nil {
		return err
	}
	raw.release()

	if err := signAndVerify(s, "broken"); !errors.Is(err, ErrHSMUnavailable) || errors.Is(err, ErrPINIncorrect) {
		return fmt.Errorf("first Sign after the break = %v, want ErrHSMUnavailable only", err)
	}
	time.Sleep(interval + 10*time.Millisecond)
	err = signAndVerify(s, "wrong pin")
	if !errors.Is(err, ErrPINIncorrect) || !errors.Is(err, ErrHSMUnavailable) {
		return fmt.Errorf("Sign whose re-open meets a wrong PIN = %v, want ErrPINIncorrect", err)
	}
	fmt.Printf("latched: %v\n", err)
	logins := tok.configureCount()
	for range 5 {
		time.Sleep(interval + 10*time.Millisecond)
		if err := signAndVerify(s, "latched"); !errors.Is(err, ErrPINIncorrect) {
			return fmt.Errorf("Sign after a latched wrong PIN = %v, want ErrPINIncorrect", err)
		}
		if err := tok.Ping(); !errors.Is(err, ErrPINIncorrect) {
			return fmt.Errorf("Ping after a latched wrong PIN = %v, want ErrPINIncorrect", err)
		}
	}
	if got := tok.configureCount(); got != logins {
		return fmt.Errorf("logged in %d more times after a wrong PIN, want 0", got-logins)
	}
	if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
		return err
	}
	again, err := Open(u)
	if err != nil {
		return fmt.Errorf("Open anew with the right PIN: %w", err)
	}
	if again != tok {
		return errors.New("Open anew returned another *Token")
	}
	if err := signAndVerify(s, "recovered"); err != nil {
		return fmt.Errorf("Sign after Open anew: %w", err)
	}
	if got := tok.configureCount(); got != logins+1 {
		return fmt.Errorf("Open anew logged in %d times, want 1", got-logins)
	}
	return tok.Close()
}
