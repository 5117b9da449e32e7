// Package pkcs11 turns an RFC 7512 PKCS#11 URI into a crypto.Signer backed by
// a key in a hardware or software token, through github.com/ThalesGroup/crypto11.
//
// A process holds one Token (one crypto11 context, one login). Signers from
// it survive token failures: an operation that fails because the token or
// its sessions are gone returns an error wrapping ErrHSMUnavailable, and the
// next use re-opens the context (rate limited, and never retrying a wrong
// PIN). See docs/hsm.md for the URI format, PIN sources and error messages.
package pkcs11
