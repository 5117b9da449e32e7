package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// How a principal authenticated (Principal.Via).
const (
	ViaSession = "session"
	ViaToken   = "token"
)

// principalKey is the echo context key of the *Principal.
const principalKey = "certdesk.principal"

// Principal is the authenticated caller of a request.
type Principal struct {
	Subject string
	Name    string
	Email   string
	Role    string // partner, admin or auditor
	Org     string // the partner's organisation slug
	Via     string // ViaSession or ViaToken
	// SessionID is the store id of the session (the SHA-256 of the cookie,
	// not the cookie); empty for tokens.
	SessionID string
	// CSRFToken is the session's token that unsafe cookie-authenticated
	// requests must send in X-CSRF-Token; empty for tokens.
	CSRFToken string
	// TokenID is the id of the API token used; empty for sessions.
	TokenID string
}

// PrincipalFrom returns the request's principal, or nil when anonymous.
func PrincipalFrom(c echo.Context) *Principal {
	p, _ := c.Get(principalKey).(*Principal)
	return p
}

// Middleware resolves the principal from an `Authorization: Bearer cd_…` API
// token or from the session cookie. It never rejects an anonymous request
// (RequireRole does); a bearer token that is unknown, expired or revoked,
// or another authorization scheme, is a 401 problem.
func (a *Auth) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
				p, err := a.tokenPrincipal(c, h)
				if err != nil {
					return err
				}
				c.Set(principalKey, p)
				return next(c)
			}
			p, err := a.sessionPrincipal(c)
			if err != nil {
				return err
			}
			if p != nil {
				c.Set(principalKey, p)
			}
			return next(c)
		}
	}
}

// errBadToken is the answer to any unusable bearer token: it does not say
// whether the token is unknown, expired or revoked.
var errBadToken = &Problem{Type: ProblemTypeDefault, Title: http.StatusText(http.StatusUnauthorized), Status: http.StatusUnauthorized,
	Detail: "The API token is invalid, expired or revoked."}

// tokenPrincipal authenticates an Authorization header (RFC 6750 §2.1).
func (a *Auth) tokenPrincipal(c echo.Context, header string) (*Principal, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, a.credentialFailed(c, FailureBearer, "bad_scheme", &Problem{Type: ProblemTypeDefault,
			Title: http.StatusText(http.StatusUnauthorized), Status: http.StatusUnauthorized,
			Detail: "Use Authorization: Bearer with a certdesk API token."})
	}
	token = strings.TrimSpace(token)
	if !strings.HasPrefix(token, APITokenPrefix) || len(token) > 256 {
		return nil, a.credentialFailed(c, FailureBearer, "malformed_token", errBadToken)
	}
	t, err := a.store.LookupToken(c.Request().Context(), HashAPIToken(token))
	switch {
	case errors.Is(err, models.ErrNotFound):
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="certdesk", error="invalid_token"`)
		return nil, a.credentialFailed(c, FailureBearer, "unknown_token", errBadToken)
	case err != nil:
		return nil, err
	}
	return &Principal{Subject: t.Subject, Name: t.Subject, Role: t.Role, Org: t.Org, Via: ViaToken, TokenID: t.ID}, nil
}

// credentialFailed handles a bearer token or session cookie from c's client
// that authenticated nobody: it is counted (metrics), audited (the first of
// its source's window as auth.credential_rejected, later ones folded into
// one auth.failures_folded), and answered with answer, or with a 429
// (RateLimitedError) once the source is over its limit. Only failures are
// limited: a valid credential from the same source is never refused.
func (a *Auth) credentialFailed(c echo.Context, kind, why string, answer error) error {
	ctx := c.Request().Context()
	first, wait := a.failures.failed(ctx, c.RealIP(), kind, why)
	if first {
		ev := models.AuthCredentialRejectedEvent{Kind: kind, Why: why}
		if err := a.store.Record(ctx, models.Actor{Subject: anonymousActor, Source: c.RealIP()}, "source", sourceKey(c.RealIP()), ev); err != nil {
			a.log.ErrorContext(ctx, "auditing a rejected credential", "kind", kind, "why", why, "err", err)
		}
	}
	if wait > 0 {
		return &RateLimitedError{RetryAfter: wait}
	}
	return answer
}

// sessionPrincipal resolves the session cookie, enforcing the idle and
// absolute timeouts; an unusable session is deleted and its cookie cleared.
func (a *Auth) sessionPrincipal(c echo.Context) (*Principal, error) {
	id := sessionIDFromCookie(c)
	if id == "" {
		return nil, nil
	}
	ctx := c.Request().Context()
	sess, err := a.store.GetSession(ctx, id)
	switch {
	case errors.Is(err, models.ErrNotFound):
		// The request goes on anonymous, unless the source failed too often.
		a.clearSessionCookie(c)
		return nil, a.credentialFailed(c, FailureCookie, "unknown_session", nil)
	case err != nil:
		return nil, err
	}
	now := a.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) > a.cfg.Idle {
		if err := a.store.DeleteSession(ctx, id); err != nil {
			return nil, err
		}
		a.clearSessionCookie(c)
		return nil, nil
	}
	if now.Sub(sess.LastSeenAt) >= touchInterval {
		if err := a.store.TouchSession(ctx, id, now); err != nil && !errors.Is(err, models.ErrNotFound) {
			return nil, err
		}
	}
	return &Principal{
		Subject: sess.Subject, Name: sess.Name, Email: sess.Email, Role: sess.Role, Org: sess.Org,
		Via: ViaSession, SessionID: sess.ID, CSRFToken: sess.CSRFToken,
	}, nil
}

// RequireRole lets a request through only if its principal holds one of
// roles: anonymous is a 401 problem, another role a 403 problem.
func RequireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := PrincipalFrom(c)
			if p == nil {
				return NewProblem(http.StatusUnauthorized, "Sign in, or send an API token.")
			}
			for _, r := range roles {
				if p.Role == r {
					return next(c)
				}
			}
			return NewProblem(http.StatusForbidden, "Your role ("+p.Role+") may not do this.")
		}
	}
}
