package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// csrfFormField is accepted instead of the header for plain HTML form posts
// (application/x-www-form-urlencoded), e.g. a sign-out button without script.
const csrfFormField = "csrf_token"

// CSRF requires, on unsafe methods (POST, PUT, PATCH, DELETE) authenticated
// by the session cookie, the session's CSRF token in X-CSRF-Token (the
// synchronizer token pattern; SameSite=Lax is the second layer). Bearer-token
// requests carry no ambient credential and are exempt; anonymous requests
// pass (RequireRole answers them). A missing or wrong token is a 403 problem.
// Run it after Middleware.
func (a *Auth) CSRF() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := PrincipalFrom(c)
			if p == nil || p.Via != ViaSession || safeMethod(c.Request().Method) {
				return next(c)
			}
			got := c.Request().Header.Get(CSRFHeader)
			if got == "" && isForm(c) {
				got = c.FormValue(csrfFormField)
			}
			if got == "" || p.CSRFToken == "" || !equalConstantTime(got, p.CSRFToken) {
				return NewProblem(http.StatusForbidden, "Missing or invalid CSRF token: send the X-CSRF-Token header from /api/v1/me.")
			}
			return next(c)
		}
	}
}

// safeMethod reports the methods that must not change state (RFC 9110 §9.2.1).
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func isForm(c echo.Context) bool {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	return len(ct) >= len(echo.MIMEApplicationForm) && ct[:len(echo.MIMEApplicationForm)] == echo.MIMEApplicationForm
}
