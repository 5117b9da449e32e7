package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/certdesk/certdesk/models"
)

// Paths of the sign-in routes.
const (
	loginPath    = "/auth/login"
	callbackPath = "/auth/callback"
	logoutPath   = "/auth/logout"
	noAccessPath = "/auth/noaccess"
)

// anonymousActor is the audit actor of a sign-in that did not establish who
// the user is.
const anonymousActor = "anonymous"

// exchangeTimeout bounds the back-channel calls to the provider.
const exchangeTimeout = 15 * time.Second

// Register adds the sign-in routes: GET /auth/login?next=/local/path,
// GET /auth/callback, POST /auth/logout and GET /auth/noaccess.
func (a *Auth) Register(e *echo.Echo) {
	e.GET(loginPath, a.login)
	e.GET(callbackPath, a.callback)
	e.POST(logoutPath, a.logout, a.Middleware(), a.CSRF())
	e.GET(noAccessPath, a.noAccess)
	e.GET(noAccessScriptPath, noAccessScript)
}

// login starts the authorization code flow: fresh state, nonce and PKCE
// verifier, remembered in the encrypted pending-login cookie.
func (a *Auth) login(c echo.Context) error {
	op := a.op.Load()
	if op == nil {
		return signInUnavailable()
	}
	state, err := newSecret()
	if err != nil {
		return err
	}
	nonce, err := newSecret()
	if err != nil {
		return err
	}
	p := pendingLogin{
		State:    state,
		Nonce:    nonce,
		Verifier: oauth2.GenerateVerifier(),
		Next:     safeNext(c.QueryParam("next")),
		Expires:  a.now().Add(pendingLoginLifetime),
	}
	sealed, err := a.sealPendingLogin(p)
	if err != nil {
		return err
	}
	a.setLoginCookie(c, sealed)
	noStore(c)
	return c.Redirect(http.StatusFound, op.oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)))
}

// callback completes the flow: it checks state, exchanges the code with the
// PKCE verifier, verifies the ID token and its nonce, maps the role and
// organisation, and starts a new session. The pending login is consumed
// whatever the outcome.
func (a *Auth) callback(c echo.Context) error {
	op := a.op.Load()
	if op == nil {
		return signInUnavailable()
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), exchangeTimeout)
	defer cancel()
	q := c.QueryParams()

	ck, _ := c.Cookie(LoginCookie)
	a.clearLoginCookie(c)
	noStore(c)
	if ck == nil {
		return a.loginFailed(c, "no_pending_login", "", "")
	}
	pending, err := a.openPendingLogin(ck.Value)
	if err != nil {
		return a.loginFailed(c, "no_pending_login", "", "")
	}
	if e := q.Get("error"); e != "" {
		return a.loginFailed(c, "provider_error", "", oauthErrorCode(e))
	}
	// RFC 6749 §10.12: the state binds the callback to this browser.
	if !equalConstantTime(q.Get("state"), pending.State) {
		return a.loginFailed(c, "bad_state", "", "")
	}
	if a.markStateUsed(pending.State, pending.Expires) {
		return a.loginFailed(c, "replayed_login", "", "")
	}
	code := q.Get("code")
	if code == "" {
		return a.loginFailed(c, "missing_code", "", "")
	}
	tok, err := op.oauth.Exchange(ctx, code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		// The error may quote the provider's answer but never the code or secret.
		a.log.WarnContext(ctx, "sign-in: code exchange failed", "err", redactOAuthErr(err))
		return a.loginFailed(c, "exchange_failed", "", "")
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return a.loginFailed(c, "no_id_token", "", "")
	}
	idt, err := op.verifier.Verify(ctx, rawID)
	if err != nil {
		a.log.WarnContext(ctx, "sign-in: ID token rejected", "err", err)
		return a.loginFailed(c, "id_token_invalid", "", "")
	}
	// OpenID Connect Core §3.1.3.7 step 11; go-oidc leaves the nonce to us.
	if !equalConstantTime(idt.Nonce, pending.Nonce) {
		return a.loginFailed(c, "bad_nonce", idt.Subject, "")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return a.loginFailed(c, "id_token_invalid", idt.Subject, "")
	}
	claims, why := a.withUserInfo(ctx, op, tok, idt.Subject, claims)
	if why != "" {
		return a.loginFailed(c, why, idt.Subject, "")
	}
	return a.startSession(ctx, c, idt.Subject, rawID, claims, pending.Next)
}

// userInfoClaims are the claims certdesk reads besides the subject: when
// the ID token lacks any of them, they are asked of the userinfo endpoint.
func (a *Auth) userInfoClaims() []string {
	return []string{a.cfg.RoleClaim, a.cfg.OrgClaim, "name", "email", "email_verified"}
}

// withUserInfo completes the ID token's claims from the provider's userinfo
// endpoint (OpenID Connect Core §5.3) when the ID token lacks a claim that
// certdesk reads: many providers put scope claims, and custom claims such
// as groups, only there. A claim the ID token has is never replaced. The
// userinfo subject must equal the ID token's (§5.3.2), or the sign-in
// fails ("userinfo_subject_mismatch"). When userinfo cannot be read, the
// sign-in fails only if the ID token has no role claim either
// ("userinfo_failed"): without it nobody has a role.
func (a *Auth) withUserInfo(ctx context.Context, op *provider, tok *oauth2.Token, subject string, claims map[string]any) (map[string]any, string) {
	missing := false
	for _, name := range a.userInfoClaims() {
		if _, ok := claims[name]; !ok {
			missing = true
		}
	}
	if !missing || !op.userinfo {
		return claims, ""
	}
	_, haveRole := claims[a.cfg.RoleClaim]
	ui, err := op.op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	var extra map[string]any
	if err == nil {
		err = ui.Claims(&extra)
	}
	if err != nil {
		a.log.WarnContext(ctx, "sign-in: reading userinfo failed", "subject", subject, "err", err)
		if haveRole {
			return claims, ""
		}
		return nil, "userinfo_failed"
	}
	if !equalConstantTime(ui.Subject, subject) {
		a.log.WarnContext(ctx, "sign-in: userinfo is about another subject", "subject", subject)
		return nil, "userinfo_subject_mismatch"
	}
	for _, name := range a.userInfoClaims() {
		if _, ok := claims[name]; !ok {
			if v, ok := extra[name]; ok {
				claims[name] = v
			}
		}
	}
	return claims, ""
}

// startSession maps claims to a role and organisation and, if the user may
// use certdesk, replaces any previous session with a new one.
func (a *Auth) startSession(ctx context.Context, c echo.Context, subject, rawID string, claims map[string]any, next string) error {
	values := claimStrings(claims[a.cfg.RoleClaim])
	role := a.roleFor(values)
	name := firstNonEmpty(claimString(claims, "name"), claimString(claims, "preferred_username"), subject)
	email := claimString(claims, "email")
	verified := claimTrue(claims, "email_verified")
	claimedOrg := claimString(claims, a.cfg.OrgClaim)
	old := sessionIDFromCookie(c)
	who := deniedIdentity{Subject: subject, Name: name, Email: email}
	// Every sign-in the provider vouched for is recorded, let in or not, so
	// that an admin can find and assign the user.
	if err := a.store.SeeUser(ctx, models.User{
		Subject: subject, Name: limitRunes(name, 255), Email: limitRunes(email, 320), EmailVerified: verified,
		Role: role, ClaimedOrg: limitRunes(claimedOrg, 64),
	}); err != nil {
		return err
	}
	if role == "" {
		return a.loginDenied(ctx, c, old, who, "no_role", values)
	}
	org := ""
	if role == models.RolePartner {
		org = claimedOrg
		if org == "" {
			m, err := a.store.GetMembership(ctx, subject)
			switch {
			case err == nil:
				org = m
			case !errors.Is(err, models.ErrNotFound):
				return err
			}
		}
		if org == "" {
			// An invitation to the verified address joins its organisation.
			actor := models.Actor{Subject: subject, Role: role, Email: email, Source: c.RealIP()}
			m, err := a.store.AcceptInvitation(ctx, actor, subject, email, verified)
			switch {
			case err == nil:
				org = m
				a.log.InfoContext(ctx, "invitation accepted", "subject", subject, "org", org)
			case !errors.Is(err, models.ErrNotFound):
				return err
			}
		}
		if org == "" {
			return a.loginDenied(ctx, c, old, who, "no_org", values)
		}
	}

	secret, err := newSecret()
	if err != nil {
		return err
	}
	csrf, err := newSecret()
	if err != nil {
		return err
	}
	now := a.now()
	sess := &models.Session{
		ID: hashSecret(secret), Subject: subject, Name: name, Email: email, Role: role, Org: org,
		CSRFToken: csrf, IDTokenHint: rawID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(a.cfg.Absolute),
	}
	// Rotation: a sign-in never continues a previous session (session fixation).
	if old != "" {
		if err := a.store.DeleteSession(ctx, old); err != nil {
			return err
		}
	}
	if err := a.store.CreateSession(ctx, sess); err != nil {
		return err
	}
	actor := models.Actor{Subject: subject, Role: role, Org: org, Source: c.RealIP()}
	if err := a.store.Record(ctx, actor, "user", subject, models.AuthLoginEvent{Email: email, Method: "oidc", Name: name}); err != nil {
		// A sign-in that cannot be audited does not happen.
		_ = a.store.DeleteSession(ctx, sess.ID)
		return err
	}
	a.log.InfoContext(ctx, "signed in", "subject", subject, "role", role, "org", org)
	a.setSessionCookie(c, secret)
	return c.Redirect(http.StatusSeeOther, next)
}

// loginFailed audits a failed sign-in and answers with a plain page. why is
// a short machine word, providerError the provider's error code ("" when it
// sent none); nothing secret goes into the event or the log.
//
// Failures are limited and folded per source: the first of a source's
// window for each why is recorded at once, later ones are counted into one
// auth.failures_folded event (kind "callback"), and a source over its limit
// is answered 429 with Retry-After instead of the page.
func (a *Auth) loginFailed(c echo.Context, why, subject, providerError string) error {
	ctx := c.Request().Context()
	first, wait := a.failures.failed(ctx, c.RealIP(), FailureCallback, why)
	if first {
		ev := models.AuthLoginFailedEvent{Error: providerError, Subject: subject, Why: why}
		if err := a.store.Record(ctx, models.Actor{Subject: anonymousActor, Source: c.RealIP()}, "user", subject, ev); err != nil {
			a.log.ErrorContext(ctx, "auditing failed sign-in", "why", why, "err", err)
		}
	}
	a.log.WarnContext(ctx, "sign-in failed", "why", why, "remote_ip", c.RealIP())
	if wait > 0 {
		return &RateLimitedError{RetryAfter: wait}
	}
	return renderPage(c, http.StatusBadRequest, loginFailedTemplate, map[string]any{"Why": whyText(why), "Login": loginPath})
}

// loginDenied audits a sign-in by a user certdesk does not let in and sends
// them to the no-access page. No session is created; a previous one ends.
func (a *Auth) loginDenied(ctx context.Context, c echo.Context, old string, who deniedIdentity, why string, values []string) error {
	subject := who.Subject
	if old != "" {
		if err := a.store.DeleteSession(ctx, old); err != nil {
			return err
		}
		a.clearSessionCookie(c)
	}
	if len(values) > 50 {
		values = values[:50]
	}
	if err := a.store.Record(ctx, models.Actor{Subject: subject, Source: c.RealIP()}, "user", subject,
		models.AuthLoginDeniedEvent{Claim: a.cfg.RoleClaim, Values: values, Why: why}); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "sign-in denied", "subject", subject, "why", why)
	a.setDeniedCookie(c, who)
	return c.Redirect(http.StatusSeeOther, noAccessPath+"?why="+why)
}

// logoutAnswer is the JSON answer of POST /auth/logout for fetch clients.
type logoutAnswer struct {
	Redirect string `json:"redirect"`
}

// logout ends the session and sends the browser to the provider's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0) when it has
// one, else to "/". JSON clients get {"redirect": url}; others a 303.
func (a *Auth) logout(c echo.Context) error {
	ctx := c.Request().Context()
	redirect := "/"
	if p := PrincipalFrom(c); p != nil && p.Via == ViaSession {
		sess, err := a.store.GetSession(ctx, p.SessionID)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if err := a.store.DeleteSession(ctx, p.SessionID); err != nil {
			return err
		}
		actor := models.Actor{Subject: p.Subject, Role: p.Role, Org: p.Org, Source: c.RealIP()}
		if err := a.store.Record(ctx, actor, "user", p.Subject, models.AuthLogoutEvent{}); err != nil {
			a.log.ErrorContext(ctx, "auditing logout", "err", err)
		}
		if op := a.op.Load(); op != nil && op.endSession != "" {
			hint := ""
			if sess != nil {
				hint = sess.IDTokenHint
			}
			redirect = a.endSessionURL(op.endSession, hint)
		}
	}
	a.clearSessionCookie(c)
	noStore(c)
	if strings.Contains(c.Request().Header.Get(echo.HeaderAccept), echo.MIMEApplicationJSON) {
		return c.JSON(http.StatusOK, logoutAnswer{Redirect: redirect})
	}
	return c.Redirect(http.StatusSeeOther, redirect)
}

// endSessionURL builds the provider's logout URL.
func (a *Auth) endSessionURL(endSession, idTokenHint string) string {
	u, err := url.Parse(endSession)
	if err != nil {
		return "/"
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", a.cfg.ClientID)
	if a.cfg.PostLogoutRedirectURL != "" {
		q.Set("post_logout_redirect_uri", a.cfg.PostLogoutRedirectURL)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// noAccess explains, in plain HTML, which roles exist and whom to ask, and
// shows the user who they signed in as (from the denied cookie), ready to
// copy and send to an administrator.
func (a *Auth) noAccess(c echo.Context) error {
	noStore(c)
	data := map[string]any{
		"NoOrg":  c.QueryParam("why") == "no_org",
		"Claim":  a.cfg.RoleClaim,
		"Roles":  a.sortedRoles(),
		"Login":  loginPath,
		"Script": noAccessScriptPath,
	}
	if id := a.deniedFrom(c); id != nil {
		data["Who"] = id
		data["Message"] = identityMessage(*id, data["NoOrg"].(bool))
	}
	return renderPage(c, http.StatusForbidden, noAccessTemplate, data)
}

// identityMessage is the text a refused user sends their administrator.
func identityMessage(id deniedIdentity, noOrg bool) string {
	ask := "Please give me a certdesk role."
	if noOrg {
		ask = "Please assign me to my organisation in certdesk (Admin → Users)."
	}
	return ask + "\nSubject: " + id.Subject + "\nName: " + id.Name + "\nE-mail: " + id.Email + "\n"
}

func noStore(c echo.Context) { c.Response().Header().Set(echo.HeaderCacheControl, "no-store") }

func renderPage(c echo.Context, status int, t *template.Template, data any) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	return c.HTML(status, b.String())
}

// oauthErrorCode keeps an OAuth error code (RFC 6749 §4.1.2.1) only if it
// looks like one, so that nothing else is echoed into the audit log.
func oauthErrorCode(s string) string {
	if len(s) > 64 {
		return "invalid"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return "invalid"
		}
	}
	return s
}

// redactOAuthErr keeps the provider's error code of a failed exchange and
// drops the rest (the raw response body may echo request parameters).
func redactOAuthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = re.Response.Status
		}
		return "token endpoint: " + oauthErrorCode(strings.ToLower(strings.ReplaceAll(code, " ", "_")))
	}
	return "token endpoint unreachable or invalid answer"
}

// whyText is the user-facing sentence for a failed sign-in.
func whyText(why string) string {
	switch why {
	case "no_pending_login":
		return "The sign-in took too long or was started in another browser."
	case "provider_error":
		return "The identity provider did not sign you in."
	default:
		return "The answer from the identity provider could not be accepted."
	}
}

// limitRunes cuts s to at most n runes (the column sizes of the users
// table).
func limitRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

var loginFailedTemplate = template.Must(template.New("failed").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in failed — certdesk</title></head>
<body><main>
<h1>Sign-in failed</h1>
<p role="alert">{{.Why}}</p>
<p><a href="{{.Login}}">Sign in again</a></p>
</main></body></html>
`))

var noAccessTemplate = template.Must(template.New("noaccess").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>No access — certdesk</title></head>
<body><main>
<h1>You have no access to certdesk</h1>
{{if .NoOrg}}<p role="alert">You are signed in as a partner, but you do not belong to an organisation yet.</p>
{{else}}<p role="alert">You signed in, but your account has none of the certdesk roles.</p>{{end}}
<p>certdesk has three roles, granted by the <code>{{.Claim}}</code> claim of your identity provider:</p>
<ul>
{{range .Roles}}<li><strong>{{.Role}}</strong>{{if .Values}} — {{.Values}}{{end}}</li>
{{end}}</ul>
<p>Partners must also belong to an organisation.</p>
<p>Ask a certdesk administrator to give you a role{{if .NoOrg}} or to assign you to your organisation{{end}}, then <a href="{{.Login}}">sign in again</a>.</p>
{{with .Who}}<h2>What to send your administrator</h2>
<p>You signed in as:</p>
<dl>
<dt>Subject (your identity provider's id for you)</dt><dd><code data-testid="noaccess-subject">{{.Subject}}</code></dd>
<dt>Name</dt><dd data-testid="noaccess-name">{{.Name}}</dd>
<dt>E-mail</dt><dd data-testid="noaccess-email">{{if .Email}}{{.Email}}{{else}}(none sent by your identity provider){{end}}</dd>
</dl>
<label for="identity-text">Copy this and send it to your certdesk administrator:</label><br>
<textarea id="identity-text" data-testid="noaccess-message" readonly rows="5" cols="60">{{$.Message}}</textarea><br>
<button type="button" id="copy-identity" hidden>Copy</button> <span id="copy-status" role="status"></span>
<script src="{{$.Script}}"></script>
{{end}}
</main></body></html>
`))
