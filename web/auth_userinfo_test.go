package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/web/devidp"
)

// idTokenClaims decodes the payload of the ID token kept with the session
// of the browser b (the signature was verified at sign-in).
func (env *authEnv) idTokenClaims(b *http.Client) map[string]any {
	env.t.Helper()
	sess, err := env.store.GetSession(context.Background(), hashSecret(jarOrEmpty(b, env.rp)))
	if err != nil {
		env.t.Fatalf("no session: %v", err)
	}
	parts := strings.Split(sess.IDTokenHint, ".")
	if len(parts) != 3 {
		env.t.Fatalf("ID token is not a JWS: %q", sess.IDTokenHint)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		env.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		env.t.Fatal(err)
	}
	return m
}

func TestSignIn_ClaimsOnlyInUserinfo_ReadFromUserinfo(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, store *models.Store) {
		env := newAuthEnvWith(t, store, func(c *devidp.Config) { c.UserinfoOnly = true }, nil)
		b := env.browser()
		location(t, env.signIn(b, "partner", ""), http.StatusSeeOther)
		_, p := env.me(b, nil)
		if p == nil || p.Role != models.RolePartner || p.Org != "acme" || p.Name != "Pat Partner" || p.Email != "partner@acme.example" {
			t.Fatalf("principal %+v, want partner of acme with name and e-mail from userinfo", p)
		}
		// The provider really kept the claims out of the ID token.
		idt := env.idTokenClaims(b)
		for _, c := range []string{"groups", "org", "email", "name"} {
			if _, ok := idt[c]; ok {
				t.Errorf("the ID token carries %q: the test does not exercise userinfo", c)
			}
		}
	})
}

func TestSignIn_GroupsInACustomScope_NeedTheScopeConfigured(t *testing.T) {
	{
		tests := []struct {
			name   string
			scopes []string
			want   string // role, or "" for the no-access page
		}{
			{"default scopes: no groups, no role", nil, ""},
			{"the custom scope configured", []string{"profile", "email", "certdesk"}, models.RolePartner},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				modelstest.Each(t, func(t *testing.T, store *models.Store) {
					env := newAuthEnvWith(t, store, func(c *devidp.Config) { c.UserinfoOnly, c.GroupsScope = true, "certdesk" },
						func(c *AuthConfig) { c.Scopes = tt.scopes })
					b := env.browser()
					loc := location(t, env.signIn(b, "partner", ""), http.StatusSeeOther)
					if tt.want == "" {
						if loc.Path != noAccessPath || loc.Query().Get("why") != "no_role" {
							t.Fatalf("redirected to %s, want the no-access page for no role", loc)
						}
						return
					}
					_, p := env.me(b, nil)
					if p == nil || p.Role != tt.want || p.Org != "acme" {
						t.Fatalf("principal %+v, want %s of acme", p, tt.want)
					}
				})
			})
		}
	}
}

func TestSignIn_UserinfoRefusedOrUnreachable_SignInFails(t *testing.T) {
	tests := []struct {
		name    string
		answer  string // the userinfo body; "" for an endpoint that is down
		wantWhy string
	}{
		{"userinfo about another subject", `{"sub":"admin","groups":["certdesk-admins"],"name":"Ada Admin"}`, "userinfo_subject_mismatch"},
		{"userinfo unreachable and no role claim in the ID token", "", "userinfo_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modelstest.Each(t, func(t *testing.T, store *models.Store) {
				env := newAuthEnvWith(t, store, func(c *devidp.Config) { c.UserinfoOnly = true }, nil)
				fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(tt.answer))
				}))
				userinfoURL := fake.URL
				if tt.answer == "" {
					fake.Close() // nothing listens there any more
				} else {
					t.Cleanup(fake.Close)
				}
				// The provider as discovered, with its userinfo endpoint replaced.
				op := env.auth.op.Load()
				ep := op.op.Endpoint()
				pc := oidc.ProviderConfig{IssuerURL: env.idp.Issuer, AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, UserInfoURL: userinfoURL, JWKSURL: env.idp.Issuer + "/keys"}
				changed := *op
				changed.op = pc.NewProvider(context.Background())
				env.auth.op.Store(&changed)

				before := env.sessionCount()
				resp := env.signIn(env.browser(), "partner", "")
				if resp.StatusCode != http.StatusBadRequest || env.sessionCount() != before {
					t.Fatalf("sign-in: %d, sessions %d -> %d; want 400 and none", resp.StatusCode, before, env.sessionCount())
				}
				var found bool
				for _, ev := range env.audit("auth.login_failed") {
					found = found || strings.Contains(ev.Detail, tt.wantWhy)
				}
				if !found {
					t.Errorf("no auth.login_failed event with %s", tt.wantWhy)
				}
			})
		})
	}
}

func TestSignIn_RecordsUsersAndShowsTheUnassignedWhoTheyAre(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		b := env.browser()
		loc := location(t, env.signIn(b, "orphan", ""), http.StatusSeeOther)
		// The no-access page shows, from the sealed cookie, what to send.
		page := readBody(t, env.do(b, http.MethodGet, env.rp+loc.String(), nil, nil))
		for _, want := range []string{`data-testid="noaccess-subject">orphan<`, "orphan@example.org", "Or Phan", "Subject: orphan", noAccessScriptPath} {
			if !strings.Contains(page, want) {
				t.Errorf("no-access page lacks %q:\n%s", want, page)
			}
		}
		// Without the cookie (another browser, or a crafted link) nothing is shown.
		other := readBody(t, env.do(env.browser(), http.MethodGet, env.rp+loc.String(), nil, nil))
		if strings.Contains(other, "orphan") {
			t.Error("the no-access page shows an identity without the sealed cookie")
		}
		location(t, env.signIn(env.browser(), "admin", ""), http.StatusSeeOther)
		env.clock.Advance(time.Hour)
		location(t, env.signIn(env.browser(), "orphan", ""), http.StatusSeeOther)
		// The cookie has expired by now.
		if strings.Contains(readBody(t, env.do(b, http.MethodGet, env.rp+loc.String(), nil, nil)), "orphan@") {
			t.Error("the no-access page still shows the identity after the denied cookie's lifetime")
		}

		users, err := env.store.ListUsers(context.Background(), models.UserFilter{Unassigned: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 1 || users[0].Subject != "orphan" || users[0].Email != "orphan@example.org" || !users[0].EmailVerified ||
			users[0].Name != "Or Phan" || users[0].Role != models.RolePartner || !users[0].LastSeenAt.After(users[0].FirstSeenAt) {
			t.Fatalf("unassigned users %+v, want orphan once, seen twice", users)
		}
	})
}

func TestSignIn_Invitation_VerifiedEmailJoinsOnce(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		ctx := context.Background()
		admin := models.Actor{Subject: "ada", Role: models.RoleAdmin, Source: "test"}
		inv, err := env.store.CreateInvitation(ctx, admin, "globex", "invitee@globex.example")
		if err != nil {
			t.Fatal(err)
		}
		// The same address, unverified: no join, the invitation stays.
		loc := location(t, env.signIn(env.browser(), "unverified", ""), http.StatusSeeOther)
		if loc.Query().Get("why") != "no_org" {
			t.Fatalf("unverified e-mail: redirected to %s, want no_org", loc)
		}
		// Verified (the case of the address does not matter): joins.
		b := env.browser()
		location(t, env.signIn(b, "invitee", ""), http.StatusSeeOther)
		if _, p := env.me(b, nil); p == nil || p.Org != "globex" || p.Role != models.RolePartner {
			t.Fatalf("invitee principal %+v, want partner of globex", p)
		}
		invs, err := env.store.ListInvitations(ctx, "globex")
		if err != nil || len(invs) != 1 || invs[0].ID != inv.ID || invs[0].State != models.InvitationAccepted || invs[0].AcceptedBy != "invitee" {
			t.Fatalf("invitations %+v (%v), want the one accepted by invitee", invs, err)
		}
		if evs := env.audit(models.ActionInvitationAccept); len(evs) != 1 || evs[0].Actor != "invitee" || evs[0].Org != "globex" {
			t.Fatalf("invitation.accept events %+v, want one by invitee", evs)
		}
		// Consumed: once the invitee leaves, signing in again does not rejoin.
		if err := env.store.RemoveMembership(ctx, admin, "globex", "invitee"); err != nil {
			t.Fatal(err)
		}
		if loc := location(t, env.signIn(env.browser(), "invitee", ""), http.StatusSeeOther); loc.Query().Get("why") != "no_org" {
			t.Fatalf("second sign-in after removal: %s, want no_org (the invitation was used)", loc)
		}
	})
}
