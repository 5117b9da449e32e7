package pkcs11

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Session pool settings. A zero PoolWaitTimeout would make a caller wait
// forever for a session when the token hangs; 16 sessions is far more than a
// 2-core replica can keep busy (two goroutines saturate SoftHSM2 here).
const (
	maxSessions           = 16
	poolWaitTimeout       = 10 * time.Second
	defaultReopenInterval = time.Second
)

// registry holds the process-wide token. crypto11 shares one module
// initialisation between contexts and a second login on a logged-in token
// "succeeds" whatever the PIN (CKR_USER_ALREADY_LOGGED_IN is ignored), so the
// process keeps exactly one context.
var registry struct {
	mu  sync.Mutex
	tok *Token
}

// Token is the process-wide handle on one PKCS#11 token: one crypto11
// context, the key signers looked up through it, and the logic that re-opens
// the context when the token fails. All methods are safe for concurrent use.
type Token struct {
	uri *URI   // the token part of the URI (no object, no id)
	key string // module path + selector, identifies the token in the registry

	// mu guards the context. Operations hold it for reading while they use
	// the context; a re-open holds it for writing, so it closes the old
	// context only after every in-flight operation has returned its session.
	mu          sync.RWMutex
	ctx         *crypto11.Context
	gen         uint64    // bumped by every successful (re-)open
	broken      error     // why the context must be re-opened; nil when healthy
	lastAttempt time.Time // last re-open attempt, for rate limiting
	pinErr      error     // latched wrong-PIN error: never log in again
	pinHash     [32]byte  // SHA-256 of the PIN the context logged in with
	closed      bool
	configures  int // crypto11.Configure calls (each one is a C_Login), for tests

	reopenInterval time.Duration

	smu     sync.Mutex // guards signers
	signers map[string]*keySigner

	genMu sync.Mutex // serialises GenerateKey's find-then-create
}

// Open returns the token addressed by u, configuring a crypto11 context and
// logging in on first use. Opening the same module and token selector again
// returns the same *Token (the URI's object and id are ignored). Opening a
// different token while one is open is an error: certdesk uses one PKCS#11
// context per process. Opening anew after a wrong PIN was latched (see
// docs/hsm.md) reads the PIN source again and tries one login.
func Open(u *URI) (*Token, error) {
	if u == nil {
		return nil, fmt.Errorf("%w: no URI given", ErrBadURI)
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	uc := u.clone()
	uc.Object, uc.ID = "", nil
	uc.ModulePath = filepath.Clean(uc.ModulePath)
	if err := statModule(uc.ModulePath); err != nil {
		return nil, err
	}
	pin, err := uc.PIN()
	if err != nil {
		return nil, err
	}
	key := uc.ModulePath + "\x00" + uc.selector()

	registry.mu.Lock()
	defer registry.mu.Unlock()
	if t := registry.tok; t != nil {
		if t.key != key {
			return nil, fmt.Errorf("opening %s in %s: %s in %s is already open in this process; certdesk uses one PKCS#11 context per process, so keep all CA keys in one token",
				uc.selector(), uc.ModulePath, t.uri.selector(), t.uri.ModulePath)
		}
		if err := t.reuse(uc, pin); err != nil {
			return nil, err
		}
		return t, nil
	}
	ctx, err := configureAtStart(uc, pin)
	if err != nil {
		return nil, err
	}
	t := &Token{
		uri:            uc,
		key:            key,
		ctx:            ctx,
		gen:            1,
		pinHash:        sha256.Sum256([]byte(pin)),
		configures:     1,
		reopenInterval: defaultReopenInterval,
		signers:        map[string]*keySigner{},
	}
	registry.tok = t
	slog.Info("pkcs11: token opened", "selector", uc.selector(), "module", uc.ModulePath)
	return t, nil
}

// reuse checks a second Open of the already open token. The token is logged
// in, so the PIN cannot be checked by the token again; it must equal the PIN
// the context logged in with. After a latched wrong PIN it re-opens once.
func (t *Token) reuse(uc *URI, pin string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pinErr != nil {
		t.pinErr = nil
		t.uri = uc
		t.lastAttempt = time.Time{}
		return t.reopenLocked()
	}
	h := sha256.Sum256([]byte(pin))
	if subtle.ConstantTimeCompare(h[:], t.pinHash[:]) != 1 {
		return fmt.Errorf("%w: %s is already open with another PIN; check the PIN in the %s", ErrPINIncorrect, uc.selector(), uc.pinSourceName())
	}
	return nil
}

// statModule checks the module file first: crypto11 reports a missing or
// unloadable library only as "could not open PKCS#11".
func statModule(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v; check module-path in the key URI (for SoftHSM2: apt-get install softhsm2, module /usr/lib/softhsm/libsofthsm2.so)",
			ErrModuleNotFound, path, errors.Unwrap(err))
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s is a directory; module-path must name the PKCS#11 library (.so) file", ErrModuleNotFound, path)
	}
	return nil
}

// startRetries are the waits between attempts of the first Open in a
// process. SoftHSM2 rewrites its token file at every login, and a process
// that reads the file meanwhile gets CKR_GENERAL_ERROR, or finds no token at
// all: portal replicas sharing a token that start together hit this, and a
// network HSM that is briefly unreachable while the portal starts looks the
// same. About three seconds in all, each wait with up to 50% jitter so that
// the processes do not collide again.
var startRetries = []time.Duration{
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
}

// tokenNotFoundRetries bounds the retries of ErrTokenNotFound: it is
// transient only in the race above, and otherwise a wrong selector that the
// operator should hear about at once.
const tokenNotFoundRetries = 3

// configureAtStart is configure, retried with backoff while the error may be
// transient. A refused PIN is never retried: tokens lock the PIN after a few
// failures.
func configureAtStart(u *URI, pin string) (*crypto11.Context, error) {
	for attempt := 0; ; attempt++ {
		ctx, err := configure(u, pin)
		if err == nil {
			if attempt > 0 {
				slog.Info("pkcs11: token opened after retrying", "selector", u.selector(), "attempts", attempt+1)
			}
			return ctx, nil
		}
		transient := !errors.Is(err, ErrPINIncorrect) &&
			(errors.Is(err, ErrHSMUnavailable) || (errors.Is(err, ErrTokenNotFound) && attempt < tokenNotFoundRetries))
		if !transient || attempt == len(startRetries) {
			return nil, err
		}
		wait := startRetries[attempt]
		wait += time.Duration(rand.Int64N(int64(wait/2) + 1))
		slog.Debug("pkcs11: opening the token failed; retrying", "selector", u.selector(), "attempt", attempt+1, "wait", wait, "err", err)
		time.Sleep(wait)
	}
}

// configure makes a crypto11 context and maps its errors to this package's
// error kinds. The PIN is never part of a returned error.
func configure(u *URI, pin string) (*crypto11.Context, error) {
	cfg := &crypto11.Config{
		Path:            u.ModulePath,
		TokenLabel:      u.Token,
		TokenSerial:     u.Serial,
		SlotNumber:      u.SlotID,
		Pin:             pin,
		MaxSessions:     maxSessions,
		PoolWaitTimeout: poolWaitTimeout,
	}
	ctx, err := crypto11.Configure(cfg)
	if err == nil {
		return ctx, nil
	}
	sel := u.selector()
	var p11 pkcs11.Error
	if errors.As(err, &p11) {
		switch p11 {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
			return nil, fmt.Errorf("%w: %s refused the PIN (%v); check the PIN in the %s", ErrPINIncorrect, sel, p11, u.pinSourceName())
		case pkcs11.CKR_PIN_LOCKED:
			return nil, fmt.Errorf("%w: the user PIN of %s is locked after too many wrong attempts; the security officer must reset it, then fix the PIN in the %s", ErrPINIncorrect, sel, u.pinSourceName())
		case pkcs11.CKR_PIN_EXPIRED:
			return nil, fmt.Errorf("%w: the user PIN of %s has expired; set a new one, then update the %s", ErrPINIncorrect, sel, u.pinSourceName())
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return nil, fmt.Errorf("%w: no %s in module %s; check the token selector in the key URI (softhsm2-util --show-slots or pkcs11-tool --list-slots lists the tokens; for SoftHSM2 also check SOFTHSM2_CONF and its token directory)",
			ErrTokenNotFound, sel, u.ModulePath)
	case strings.Contains(msg, "failed to open module"):
		return nil, fmt.Errorf("%w: %s could not be loaded as a PKCS#11 library; check module-path in the key URI", ErrModuleNotFound, u.ModulePath)
	case strings.Contains(msg, "failed to initialize module"):
		return nil, fmt.Errorf("%w: module %s failed to initialize (%v); for SoftHSM2 check SOFTHSM2_CONF and that its token directory exists", ErrHSMUnavailable, u.ModulePath, err)
	}
	return nil, fmt.Errorf("%w: opening %s in %s: %w", ErrHSMUnavailable, sel, u.ModulePath, err)
}

// errClosed is returned for any use of a closed Token.
func (t *Token) errClosed() error {
	return fmt.Errorf("%w: %s was closed", ErrHSMUnavailable, t.uri.selector())
}

// use runs fn with a healthy context, re-opening a broken one first (rate
// limited). An error from fn that means the token failed marks the context
// broken and comes back wrapping ErrHSMUnavailable.
func (t *Token) use(fn func(ctx *crypto11.Context, gen uint64) error) error {
	for attempt := 0; ; attempt++ {
		t.mu.RLock()
		if t.closed {
			t.mu.RUnlock()
			return t.errClosed()
		}
		if t.broken == nil && t.ctx != nil {
			gen := t.gen
			err := fn(t.ctx, gen)
			t.mu.RUnlock()
			return t.checkErr(gen, err)
		}
		t.mu.RUnlock()
		if attempt > 0 {
			// Re-opened, and broken again before we got to use it.
			return fmt.Errorf("%w: %s failed again right after re-opening", ErrHSMUnavailable, t.uri.selector())
		}
		t.mu.Lock()
		err := t.reopenLocked()
		t.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// checkErr classifies an operation error; see classify.
func (t *Token) checkErr(gen uint64, err error) error {
	unavailable, broken := classify(err)
	if !unavailable {
		return err
	}
	if !broken {
		return fmt.Errorf("%w: %s: %w", ErrHSMUnavailable, t.uri.selector(), err)
	}
	t.mu.Lock()
	if t.gen == gen && t.broken == nil && !t.closed {
		t.broken = err
		slog.Warn("pkcs11: token failed; the context will be re-opened on the next use", "selector", t.uri.selector(), "err", err)
	}
	t.mu.Unlock()
	return fmt.Errorf("%w: %s failed (%w); it will be re-opened on the next use", ErrHSMUnavailable, t.uri.selector(), err)
}

// reopenLocked closes a broken context and configures a new one. It is rate
// limited to one attempt per reopenInterval, and after a wrong PIN it never
// logs in again (a token locks its PIN after a few failures). t.mu is held.
func (t *Token) reopenLocked() error {
	sel := t.uri.selector()
	switch {
	case t.closed:
		return t.errClosed()
	case t.broken == nil && t.ctx != nil:
		return nil // another goroutine re-opened it
	case t.pinErr != nil:
		return t.pinErr
	}
	if wait := t.reopenInterval - time.Since(t.lastAttempt); !t.lastAttempt.IsZero() && wait > 0 {
		return fmt.Errorf("%w: %s is not usable (%v); next re-open attempt in %s", ErrHSMUnavailable, sel, t.broken, wait.Round(time.Millisecond))
	}
	t.lastAttempt = time.Now()
	if t.ctx != nil {
		// Closing finalizes the module, so the next Configure initializes
		// it afresh (crypto11 shares one initialization per module path).
		_ = t.ctx.Close()
		t.ctx = nil
	}
	pin, err := t.uri.PIN()
	if err != nil {
		return fmt.Errorf("%w: re-opening %s: %w", ErrHSMUnavailable, sel, err)
	}
	t.configures++
	ctx, err := configure(t.uri, pin)
	if err != nil {
		if errors.Is(err, ErrPINIncorrect) {
			t.pinErr = fmt.Errorf("%w; not logging in again until certdesk restarts (%w)", err, ErrHSMUnavailable)
			slog.Error("pkcs11: re-open refused the PIN; not retrying", "selector", sel, "err", err)
			return t.pinErr
		}
		slog.Warn("pkcs11: re-open failed", "selector", sel, "err", err)
		if errors.Is(err, ErrHSMUnavailable) {
			return err
		}
		return fmt.Errorf("%w: re-opening %s: %w", ErrHSMUnavailable, sel, err)
	}
	t.ctx = ctx
	t.gen++
	t.broken = nil
	t.pinHash = sha256.Sum256([]byte(pin))
	slog.Info("pkcs11: token re-opened", "selector", sel, "module", t.uri.ModulePath)
	return nil
}

// Ping checks that the token answers by drawing a few bytes from its random
// number generator on a pooled session. A broken token is re-opened first
// (rate limited), so a readiness probe also brings the token back.
func (t *Token) Ping() error {
	err := t.use(func(ctx *crypto11.Context, _ uint64) error {
		r, err := ctx.NewRandomReader()
		if err != nil {
			return err
		}
		var b [8]byte
		_, err = r.Read(b[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("pinging %s: %w", t.uri.selector(), err)
	}
	return nil
}

// Close logs out and releases the context. Signers from this Token fail with
// ErrHSMUnavailable afterwards; a later Open configures a new context.
func (t *Token) Close() error {
	registry.mu.Lock()
	if registry.tok == t {
		registry.tok = nil
	}
	registry.mu.Unlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var err error
	if t.ctx != nil {
		err = t.ctx.Close()
		t.ctx = nil
	}
	return err
}

// String names the token and module, for logs.
func (t *Token) String() string {
	return fmt.Sprintf("%s in %s", t.uri.selector(), t.uri.ModulePath)
}
