package pkcs11

import (
	"errors"

	"github.com/miekg/pkcs11"
	"github.com/thales-e-security/pool"
)

// Error kinds returned by this package. Every error it returns wraps at most
// one of these (plus ErrHSMUnavailable for a failed re-open), so callers test
// them with errors.Is. The wrapping message says what to fix; it never
// contains a PIN.
var (
	// ErrBadURI means the RFC 7512 key URI could not be parsed or is incomplete.
	ErrBadURI = errors.New("invalid PKCS#11 URI")
	// ErrModuleNotFound means the module-path of the URI does not name a
	// loadable PKCS#11 library.
	ErrModuleNotFound = errors.New("PKCS#11 module not found")
	// ErrTokenNotFound means no slot holds a token matching the URI's token,
	// serial or slot-id selector.
	ErrTokenNotFound = errors.New("PKCS#11 token not found")
	// ErrPINIncorrect means the token refused the PIN (or the PIN is locked).
	ErrPINIncorrect = errors.New("PKCS#11 PIN incorrect")
	// ErrKeyNotFound means the token holds no key pair with the requested label.
	ErrKeyNotFound = errors.New("key not found in PKCS#11 token")
	// ErrKeyExists means a key with the requested label is already in the token.
	ErrKeyExists = errors.New("key already exists in PKCS#11 token")
	// ErrHSMUnavailable means the token failed (session lost, device error,
	// token removed, library finalized) or is being re-opened. The operation
	// may succeed later; the context is re-opened on the next use.
	ErrHSMUnavailable = errors.New("HSM unavailable")
)

// brokenCodes are the PKCS#11 return values (PKCS#11 v2.40 §5.1) after which
// the sessions or the whole context can no longer be trusted. crypto11 puts a
// session that failed back into its pool as if nothing happened, so on any of
// these the whole context is closed and configured again.
var brokenCodes = map[pkcs11.Error]bool{
	pkcs11.CKR_SESSION_HANDLE_INVALID:         true,
	pkcs11.CKR_SESSION_CLOSED:                 true,
	pkcs11.CKR_DEVICE_ERROR:                   true,
	pkcs11.CKR_DEVICE_MEMORY:                  true,
	pkcs11.CKR_DEVICE_REMOVED:                 true,
	pkcs11.CKR_TOKEN_NOT_PRESENT:              true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:           true,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:       true,
	pkcs11.CKR_USER_NOT_LOGGED_IN:             true,
	pkcs11.CKR_GENERAL_ERROR:                  true,
	pkcs11.CKR_FUNCTION_FAILED:                true,
	pkcs11.CKR_SLOT_ID_INVALID:                true,
	pkcs11.CKR_KEY_HANDLE_INVALID:             true,
	pkcs11.CKR_OBJECT_HANDLE_INVALID:          true,
	pkcs11.CKR_SESSION_COUNT:                  true,
	pkcs11.CKR_SESSION_PARALLEL_NOT_SUPPORTED: true,
}

// classify reports whether err means the token is unavailable, and whether
// the context must be re-opened because of it. A full session pool (the
// PoolWaitTimeout expired) is unavailable but not broken: re-opening would
// only wait for the same busy sessions.
func classify(err error) (unavailable, broken bool) {
	if err == nil {
		return false, false
	}
	if errors.Is(err, pool.ErrTimeout) {
		return true, false
	}
	var p11 pkcs11.Error
	if errors.As(err, &p11) && brokenCodes[p11] {
		return true, true
	}
	return false, false
}
