package web

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// DeniedCookie carries, from a refused sign-in to the no-access page, who
// the provider said the user is, sealed like the pending-login cookie, so
// that the page can show the user what to send their admin without a
// session and without trusting the query string.
const DeniedCookie = "certdesk_denied"

// deniedLifetime bounds how long the no-access page shows the identity.
const deniedLifetime = 10 * time.Minute

// noAccessScriptPath serves the no-access page's copy button (the
// Content-Security-Policy allows no inline script).
const noAccessScriptPath = "/auth/noaccess.js"

// deniedIdentity is what the no-access page shows.
type deniedIdentity struct {
	Subject string    `json:"sub"`
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Expires time.Time `json:"exp"`
}

func (a *Auth) setDeniedCookie(c echo.Context, id deniedIdentity) {
	id.Expires = a.now().Add(deniedLifetime)
	plain, err := json.Marshal(id)
	if err != nil {
		return
	}
	nonce := make([]byte, a.loginAEAD.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return
	}
	v := base64.RawURLEncoding.EncodeToString(a.loginAEAD.Seal(nonce, nonce, plain, []byte(DeniedCookie)))
	c.SetCookie(&http.Cookie{
		Name: DeniedCookie, Value: v, Path: noAccessPath, MaxAge: int(deniedLifetime / time.Second),
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// deniedFrom opens the request's denied cookie; nil when there is none or
// it is not valid.
func (a *Auth) deniedFrom(c echo.Context) *deniedIdentity {
	ck, err := c.Cookie(DeniedCookie)
	if err != nil {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	ns := a.loginAEAD.NonceSize()
	if err != nil || len(raw) < ns {
		return nil
	}
	plain, err := a.loginAEAD.Open(nil, raw[:ns], raw[ns:], []byte(DeniedCookie))
	if err != nil {
		return nil
	}
	var id deniedIdentity
	if json.Unmarshal(plain, &id) != nil || id.Subject == "" || !a.now().Before(id.Expires) {
		return nil
	}
	return &id
}

// noAccessScript fills the copy button of the no-access page.
func noAccessScript(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", []byte(noAccessJS))
}

const noAccessJS = `"use strict";
(function () {
  var b = document.getElementById("copy-identity");
  var t = document.getElementById("identity-text");
  var s = document.getElementById("copy-status");
  if (!b || !t) return;
  b.hidden = false;
  b.addEventListener("click", function () {
    var done = function () { if (s) s.textContent = "Copied."; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(t.value).then(done, function () { t.select(); });
    } else { t.select(); }
  });
})();
`
