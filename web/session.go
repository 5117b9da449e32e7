package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Cookie names.
const (
	// SessionCookie holds the random session secret; the store keeps only
	// its SHA-256 (models.Session.ID).
	SessionCookie = "certdesk_session"
	// LoginCookie holds the pending sign-in (state, nonce, PKCE verifier,
	// next), encrypted and authenticated, between /auth/login and
	// /auth/callback.
	LoginCookie = "certdesk_login"
)

// Timing of sessions and sign-ins.
const (
	pendingLoginLifetime = 10 * time.Minute
	touchInterval        = time.Minute // LastSeenAt is written at most this often
)

// pendingLogin is what /auth/login remembers for /auth/callback.
type pendingLogin struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Next     string    `json:"x"`
	Expires  time.Time `json:"e"`
}

// newLoginAEAD derives the pending-login cookie key from the session key
// (HKDF-SHA256, RFC 5869) so that the configured key is never used directly.
func newLoginAEAD(sessionKey []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, sessionKey, nil, "certdesk login cookie v1", 32)
	if err != nil {
		return nil, fmt.Errorf("auth.session_key: deriving cookie key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealPendingLogin encrypts p into a cookie value: base64url(nonce || AES-GCM
// ciphertext), with the cookie name as additional data.
func (a *Auth) sealPendingLogin(p pendingLogin) (string, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.loginAEAD.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := a.loginAEAD.Seal(nonce, nonce, plain, []byte(LoginCookie))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openPendingLogin decrypts and checks a pending-login cookie value.
func (a *Auth) openPendingLogin(v string) (*pendingLogin, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	ns := a.loginAEAD.NonceSize()
	if err != nil || len(raw) < ns {
		return nil, errNoPendingLogin
	}
	plain, err := a.loginAEAD.Open(nil, raw[:ns], raw[ns:], []byte(LoginCookie))
	if err != nil {
		return nil, errNoPendingLogin
	}
	var p pendingLogin
	if err := json.Unmarshal(plain, &p); err != nil || p.State == "" || p.Nonce == "" || p.Verifier == "" {
		return nil, errNoPendingLogin
	}
	if a.now().After(p.Expires) {
		return nil, errNoPendingLogin
	}
	return &p, nil
}

// setLoginCookie stores the pending login for the callback only.
func (a *Auth) setLoginCookie(c echo.Context, value string) {
	c.SetCookie(&http.Cookie{
		Name: LoginCookie, Value: value, Path: "/auth/",
		MaxAge:   int(pendingLoginLifetime / time.Second),
		HttpOnly: true, Secure: a.cfg.SecureCookies,
		// Lax: the callback is a top-level GET navigation from the provider.
		SameSite: http.SameSiteLaxMode,
	})
}

func (a *Auth) clearLoginCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: LoginCookie, Value: "", Path: "/auth/", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// setSessionCookie sends the session secret. The browser drops it after the
// session's absolute timeout; the server enforces both timeouts regardless.
func (a *Auth) setSessionCookie(c echo.Context, secret string) {
	c.SetCookie(&http.Cookie{
		Name: SessionCookie, Value: secret, Path: "/",
		MaxAge:   int(a.cfg.Absolute / time.Second),
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (a *Auth) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// sessionIDFromCookie returns the store id (SHA-256 hex) of the request's
// session cookie, or "" if there is no well-formed one.
func sessionIDFromCookie(c echo.Context) string {
	ck, err := c.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil || len(raw) != 32 {
		return ""
	}
	return hashSecret(ck.Value)
}

// newSecret returns 32 random bytes, base64url without padding.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret is the hex SHA-256 under which a secret is stored.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// NewAPIToken returns a new API token ("cd_" + 32 random bytes, base64url)
// and the hash to store (hex SHA-256). The token is shown once and never stored.
func NewAPIToken() (token, hash string) {
	s, err := newSecret()
	if err != nil {
		// crypto/rand does not fail on supported platforms (Go 1.24+ crashes
		// instead); never hand out a predictable token.
		panic(err)
	}
	token = APITokenPrefix + s
	return token, HashAPIToken(token)
}

// APITokenPrefix starts every certdesk API token, so that secret scanners
// and people recognise one.
const APITokenPrefix = "cd_"

// HashAPIToken returns the hex SHA-256 of token, as stored and looked up.
func HashAPIToken(token string) string { return hashSecret(token) }
