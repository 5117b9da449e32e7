package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/certdesk/certdesk/models"
)

func TestSignIn_Partner_CreatesSessionWithRoleAndOrg(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		b := env.browser()
		resp := env.signIn(b, "partner", "/requests/new?x=1")

		if loc := location(t, resp, http.StatusSeeOther); loc.String() != "/requests/new?x=1" {
			t.Errorf("after sign-in redirected to %q, want the local next path", loc)
		}
		ck := cookie(resp, SessionCookie)
		if ck == nil {
			t.Fatal("no session cookie set")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
			t.Errorf("session cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v, want HttpOnly, Lax, /, not Secure on http", ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
		}
		if lc := cookie(resp, LoginCookie); lc == nil || lc.MaxAge >= 0 {
			t.Errorf("the pending-login cookie was not cleared by the callback: %+v", lc)
		}
		// Only the hash of the cookie is stored.
		if _, err := env.store.GetSession(context.Background(), ck.Value); !isNotFound(err) {
			t.Errorf("the raw cookie value finds a session (err %v): the store must hold only its hash", err)
		}
		if _, err := env.store.GetSession(context.Background(), hashSecret(ck.Value)); err != nil {
			t.Errorf("no session under the cookie's SHA-256: %v", err)
		}

		status, p := env.me(b, nil)
		if status != http.StatusOK {
			t.Fatalf("/me after sign-in: %d", status)
		}
		if p.Subject != "partner" || p.Role != models.RolePartner || p.Org != "acme" || p.Via != ViaSession || p.CSRFToken == "" || p.Email != "partner@acme.example" || p.Name != "Pat Partner" {
			t.Errorf("principal %+v, want partner of acme via session with a CSRF token", p)
		}
		evs := env.audit("auth.login")
		if len(evs) != 1 || evs[0].Actor != "partner" || evs[0].Role != models.RolePartner || evs[0].Org != "acme" || evs[0].Source == "" {
			t.Fatalf("auth.login events %+v, want one by partner/acme with a source", evs)
		}
		if strings.Contains(evs[0].Detail, ck.Value) {
			t.Error("the audit event contains the session cookie")
		}
	})
}

func TestSignIn_RoleAndOrgMapping(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		tests := []struct {
			user, wantRole, wantOrg string
		}{
			{"admin", models.RoleAdmin, ""},
			{"auditor", models.RoleAuditor, ""},
			{"member", models.RolePartner, "globex"}, // no org claim: the admin-assigned membership
			{"boss", models.RoleAdmin, ""},           // partner and admin groups: the highest role wins
		}
		for _, tt := range tests {
			t.Run(tt.user, func(t *testing.T) {
				b := env.browser()
				location(t, env.signIn(b, tt.user, ""), http.StatusSeeOther)
				_, p := env.me(b, nil)
				if p == nil || p.Role != tt.wantRole || p.Org != tt.wantOrg {
					t.Fatalf("principal %+v, want role %q org %q", p, tt.wantRole, tt.wantOrg)
				}
			})
		}
	})
}

func TestSignIn_UserWithoutAccess_GoesToNoAccessWithoutSession(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		tests := []struct{ user, why string }{
			{"nobody", "no_role"}, // no mapped group
			{"orphan", "no_org"},  // a partner with neither org claim nor membership
		}
		for _, tt := range tests {
			t.Run(tt.user, func(t *testing.T) {
				before := env.sessionCount()
				b := env.browser()
				resp := env.signIn(b, tt.user, "/x")
				loc := location(t, resp, http.StatusSeeOther)
				if loc.Path != "/auth/noaccess" || loc.Query().Get("why") != tt.why {
					t.Fatalf("redirected to %s, want /auth/noaccess?why=%s", loc, tt.why)
				}
				if cookie(resp, SessionCookie) != nil && cookie(resp, SessionCookie).MaxAge >= 0 {
					t.Error("a session cookie was set for a user without access")
				}
				if env.sessionCount() != before {
					t.Error("a session was stored for a user without access")
				}
				if status, _ := env.me(b, nil); status != http.StatusUnauthorized {
					t.Errorf("/me: %d, want 401", status)
				}
				page := env.do(b, http.MethodGet, env.rp+loc.String(), nil, nil)
				body := readBody(t, page)
				if page.StatusCode != http.StatusForbidden || !strings.Contains(body, "partner") || !strings.Contains(body, "auditor") ||
					!strings.Contains(body, "certdesk-admins") || !strings.Contains(body, "administrator") {
					t.Errorf("no-access page %d does not list the roles and whom to ask:\n%s", page.StatusCode, body)
				}
				var found bool
				for _, ev := range env.audit("auth.login_denied") {
					if ev.Actor == tt.user && strings.Contains(ev.Detail, tt.why) {
						found = true
					}
				}
				if !found {
					t.Errorf("no auth.login_denied event for %s with %s", tt.user, tt.why)
				}
			})
		}
	})
}

func TestCallback_Refuses(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		rpCallback := env.rp + "/auth/callback"

		tests := []struct {
			name string
			why  string
			// run drives the flow to the callback and returns the callback's answer.
			run func(t *testing.T, b *http.Client) *http.Response
		}{
			{"wrong state", "bad_state", func(t *testing.T, b *http.Client) *http.Response {
				cb := env.idpLogin(b, env.startLogin(b, ""), "partner")
				q := cb.Query()
				q.Set("state", q.Get("state")+"x")
				cb.RawQuery = q.Encode()
				return env.do(b, http.MethodGet, cb.String(), nil, nil)
			}},
			{"no pending-login cookie (another browser)", "no_pending_login", func(t *testing.T, b *http.Client) *http.Response {
				cb := env.idpLogin(b, env.startLogin(b, ""), "partner")
				return env.do(env.browser(), http.MethodGet, cb.String(), nil, nil)
			}},
			{"tampered pending-login cookie", "no_pending_login", func(t *testing.T, b *http.Client) *http.Response {
				cb := env.idpLogin(b, env.startLogin(b, ""), "partner")
				v := []byte(jarCookie(b, rpCallback, LoginCookie))
				v[len(v)/2] ^= 'A' ^ 'B'
				if v[len(v)/2] == jarCookie(b, rpCallback, LoginCookie)[len(v)/2] {
					v[len(v)/2] = 'C'
				}
				setJarCookie(b, env.rp, &http.Cookie{Name: LoginCookie, Value: string(v), Path: "/auth/"})
				return env.do(b, http.MethodGet, cb.String(), nil, nil)
			}},
			{"expired pending login", "no_pending_login", func(t *testing.T, b *http.Client) *http.Response {
				cb := env.idpLogin(b, env.startLogin(b, ""), "partner")
				env.clock.Advance(pendingLoginLifetime + time.Second)
				return env.do(b, http.MethodGet, cb.String(), nil, nil)
			}},
			{"wrong nonce", "bad_nonce", func(t *testing.T, b *http.Client) *http.Response {
				// The provider is driven with nonce A while the pending login
				// (sealed with our key, as /auth/login would) expects nonce B.
				verifier := oauth2.GenerateVerifier()
				sealed, err := env.auth.sealPendingLogin(pendingLogin{State: "st-nonce", Nonce: "nonce-B", Verifier: verifier, Next: "/", Expires: env.clock.Now().Add(time.Minute)})
				if err != nil {
					t.Fatal(err)
				}
				setJarCookie(b, env.rp, &http.Cookie{Name: LoginCookie, Value: sealed, Path: "/auth/"})
				authURL := env.auth.op.Load().oauth.AuthCodeURL("st-nonce", oidc.Nonce("nonce-A"), oauth2.S256ChallengeOption(verifier))
				loginURL := location(t, env.do(b, http.MethodGet, authURL, nil, nil), http.StatusFound)
				cb := env.idpLogin(b, loginURL.Query().Get("authRequestID"), "partner")
				return env.do(b, http.MethodGet, cb.String(), nil, nil)
			}},
			{"replayed callback (same pending login)", "replayed_login", func(t *testing.T, b *http.Client) *http.Response {
				victim := env.browser()
				cb := env.idpLogin(victim, env.startLogin(victim, ""), "auditor")
				pending := jarCookie(victim, rpCallback, LoginCookie)
				location(t, env.do(victim, http.MethodGet, cb.String(), nil, nil), http.StatusSeeOther)
				setJarCookie(b, env.rp, &http.Cookie{Name: LoginCookie, Value: pending, Path: "/auth/"})
				return env.do(b, http.MethodGet, cb.String(), nil, nil)
			}},
			{"replayed code (fresh pending login)", "exchange_failed", func(t *testing.T, b *http.Client) *http.Response {
				// A code that was already exchanged, presented with a new valid
				// state: the provider's single-use code refuses it.
				verifier := oauth2.GenerateVerifier()
				authURL := env.auth.op.Load().oauth.AuthCodeURL("st-1", oidc.Nonce("n-1"), oauth2.S256ChallengeOption(verifier))
				loginURL := location(t, env.do(b, http.MethodGet, authURL, nil, nil), http.StatusFound)
				cb := env.idpLogin(b, loginURL.Query().Get("authRequestID"), "auditor")
				for _, state := range []string{"st-1", "st-2"} {
					sealed, _ := env.auth.sealPendingLogin(pendingLogin{State: state, Nonce: "n-1", Verifier: verifier, Next: "/", Expires: env.clock.Now().Add(time.Minute)})
					setJarCookie(b, env.rp, &http.Cookie{Name: LoginCookie, Value: sealed, Path: "/auth/"})
					q := cb.Query()
					q.Set("state", state)
					cb.RawQuery = q.Encode()
					resp := env.do(b, http.MethodGet, cb.String(), nil, nil)
					if state == "st-1" {
						location(t, resp, http.StatusSeeOther) // the first use signs in
						b.Jar.SetCookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(env.rp, "http://")}, []*http.Cookie{{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1}})
						continue
					}
					return resp
				}
				return nil
			}},
			{"error from the provider", "provider_error", func(t *testing.T, b *http.Client) *http.Response {
				authURL := location(t, env.do(b, http.MethodGet, env.rp+"/auth/login", nil, nil), http.StatusFound)
				q := url.Values{"error": {"access_denied"}, "state": {authURL.Query().Get("state")}}
				return env.do(b, http.MethodGet, rpCallback+"?"+q.Encode(), nil, nil)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := env.browser()
				resp := tt.run(t, b)
				body := readBody(t, resp)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("callback answered %d, want 400: %s", resp.StatusCode, body)
				}
				if ck := cookie(resp, SessionCookie); ck != nil && ck.MaxAge >= 0 {
					t.Error("a session cookie was set")
				}
				if status, _ := env.me(b, nil); status != http.StatusUnauthorized {
					t.Errorf("/me after a refused sign-in: %d, want 401", status)
				}
				if !strings.Contains(body, "Sign-in failed") {
					t.Errorf("no clear failure page:\n%s", body)
				}
				var found bool
				for _, ev := range env.audit("auth.login_failed") {
					if strings.Contains(ev.Detail, `"`+tt.why+`"`) {
						found = true
					}
				}
				if !found {
					t.Errorf("no auth.login_failed event with why %q", tt.why)
				}
			})
		}
	})
}

func TestSignIn_NextParameter_OnlyLocalPaths(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		tests := []struct{ next, want string }{
			{"//evil.example/x", "/"},
			{"https://evil.example/x", "/"},
			{"/\\evil.example", "/"},
			{"javascript:alert(1)", "/"},
			{"/ok/path?tab=2", "/ok/path?tab=2"},
		}
		for _, tt := range tests {
			t.Run(tt.next, func(t *testing.T) {
				loc := location(t, env.signIn(env.browser(), "admin", tt.next), http.StatusSeeOther)
				if loc.String() != tt.want {
					t.Fatalf("next=%q redirected to %q, want %q", tt.next, loc, tt.want)
				}
			})
		}
	})
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/a/b?c=d#e", "/a/b?c=d#e"},
		{"//evil", "/"},
		{"///evil", "/"},
		{"/\\evil", "/"},
		{"\\\\evil", "/"},
		{"https://evil", "/"},
		{"http:/evil", "/"},
		{"evil", "/"},
		{"/a\r\nSet-Cookie: x", "/"},
		{"/a\tb", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSignIn_Again_RotatesSession(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		b := env.browser()
		first := cookie(env.signIn(b, "partner", ""), SessionCookie)
		second := cookie(env.signIn(b, "partner", ""), SessionCookie)
		if first == nil || second == nil {
			t.Fatal("no session cookie")
		}
		if first.Value == second.Value {
			t.Fatal("the second sign-in kept the session id")
		}
		if _, err := env.store.GetSession(context.Background(), hashSecret(first.Value)); !isNotFound(err) {
			t.Errorf("the first session still exists after the second sign-in (err %v)", err)
		}
		if status, p := env.me(b, nil); status != http.StatusOK || p.SessionID != hashSecret(second.Value) {
			t.Errorf("/me %d %+v, want the new session", status, p)
		}
		// The old cookie no longer authenticates.
		old := env.browser()
		setJarCookie(old, env.rp, first)
		if status, _ := env.me(old, nil); status != http.StatusUnauthorized {
			t.Errorf("the old session cookie answers %d, want 401", status)
		}
	})
}

func TestSession_Timeouts(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // clock advances, each followed by GET /me
		want  []int
	}{
		{"active use keeps it alive", []time.Duration{20 * time.Minute, 29 * time.Minute, 29 * time.Minute}, []int{200, 200, 200}},
		{"idle timeout", []time.Duration{10 * time.Minute, 31 * time.Minute, time.Second}, []int{200, 401, 401}},
		{"absolute timeout despite activity", append(repeat(25*time.Minute, 28), 25*time.Minute), append(repeatInt(200, 28), 401)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachAuthEnv(t, func(t *testing.T, env *authEnv) {
				b := env.browser()
				location(t, env.signIn(b, "auditor", ""), http.StatusSeeOther)
				var elapsed time.Duration
				for i, d := range tt.steps {
					env.clock.Advance(d)
					elapsed += d
					if status, _ := env.me(b, nil); status != tt.want[i] {
						t.Fatalf("step %d (after %s): /me %d, want %d", i, elapsed, status, tt.want[i])
					}
				}
				if tt.want[len(tt.want)-1] == 401 && env.sessionCount() != 0 {
					if _, err := env.store.GetSession(context.Background(), hashSecret(jarOrEmpty(b, env.rp))); !isNotFound(err) {
						t.Errorf("the expired session is still usable (err %v)", err)
					}
				}
			})
		})
	}
}

// jarOrEmpty is the browser's session cookie, or "" once it was cleared.
func jarOrEmpty(b *http.Client, rp string) string { return jarCookie(b, rp, SessionCookie) }

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func repeatInt(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestLogout(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {

		t.Run("JSON client gets the end_session URL and the session ends", func(t *testing.T) {
			b := env.browser()
			location(t, env.signIn(b, "partner", ""), http.StatusSeeOther)
			_, p := env.me(b, nil)
			resp := env.do(b, http.MethodPost, env.rp+"/auth/logout", nil, http.Header{"Accept": {"application/json"}, CSRFHeader: {p.CSRFToken}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("logout %d: %s", resp.StatusCode, readBody(t, resp))
			}
			var ans logoutAnswer
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(ans.Redirect)
			if err != nil || !strings.HasPrefix(ans.Redirect, env.idp.Issuer) || u.Query().Get("id_token_hint") == "" || u.Query().Get("post_logout_redirect_uri") != env.rp+"/" {
				t.Fatalf("redirect %q, want the provider's end_session_endpoint with id_token_hint and post_logout_redirect_uri", ans.Redirect)
			}
			if status, _ := env.me(b, nil); status != http.StatusUnauthorized {
				t.Errorf("/me after logout: %d, want 401", status)
			}
			if _, err := env.store.GetSession(context.Background(), p.SessionID); !isNotFound(err) {
				t.Errorf("session still stored after logout (err %v)", err)
			}
			// The provider accepts the hint and sends the browser back to certdesk.
			back := location(t, env.do(b, http.MethodGet, ans.Redirect, nil, nil), http.StatusFound)
			if back.String() != env.rp+"/" {
				t.Errorf("provider sent the browser to %s after logout, want %s/", back, env.rp)
			}
			if evs := env.audit("auth.logout"); len(evs) != 1 || evs[0].Actor != "partner" {
				t.Errorf("auth.logout events %+v, want one by partner", evs)
			}
		})
		t.Run("form post gets a 303", func(t *testing.T) {
			b := env.browser()
			location(t, env.signIn(b, "admin", ""), http.StatusSeeOther)
			_, p := env.me(b, nil)
			form := url.Values{"csrf_token": {p.CSRFToken}}
			loc := location(t, env.do(b, http.MethodPost, env.rp+"/auth/logout", strings.NewReader(form.Encode()),
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}), http.StatusSeeOther)
			if !strings.HasPrefix(loc.String(), env.idp.Issuer) {
				t.Errorf("redirect %s, want the provider's end_session_endpoint", loc)
			}
		})
		t.Run("without the CSRF token it is refused", func(t *testing.T) {
			b := env.browser()
			location(t, env.signIn(b, "admin", ""), http.StatusSeeOther)
			resp := env.do(b, http.MethodPost, env.rp+"/auth/logout", nil, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("logout without CSRF: %d, want 403", resp.StatusCode)
			}
			if status, _ := env.me(b, nil); status != http.StatusOK {
				t.Errorf("session ended by a forged logout")
			}
		})
		t.Run("anonymous logout goes home", func(t *testing.T) {
			loc := location(t, env.do(env.browser(), http.MethodPost, env.rp+"/auth/logout", nil, nil), http.StatusSeeOther)
			if loc.String() != "/" {
				t.Errorf("redirect %s, want /", loc)
			}
		})
	})
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
