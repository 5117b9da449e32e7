package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

func TestCSRF_CookieRequests(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		b := env.browser()
		location(t, env.signIn(b, "partner", ""), http.StatusSeeOther)
		_, p := env.me(b, nil)

		tests := []struct {
			name   string
			method string
			header http.Header
			want   int
		}{
			{"POST without the header", http.MethodPost, nil, http.StatusForbidden},
			{"POST with a wrong token", http.MethodPost, http.Header{CSRFHeader: {p.CSRFToken + "x"}}, http.StatusForbidden},
			{"POST with another session's token", http.MethodPost, http.Header{CSRFHeader: {strings.Repeat("A", len(p.CSRFToken))}}, http.StatusForbidden},
			{"DELETE without the header", http.MethodDelete, nil, http.StatusForbidden},
			{"POST with the session's token", http.MethodPost, http.Header{CSRFHeader: {p.CSRFToken}}, http.StatusNoContent},
			{"DELETE with the session's token", http.MethodDelete, http.Header{CSRFHeader: {p.CSRFToken}}, http.StatusNoContent},
			{"GET needs no token", http.MethodGet, nil, http.StatusOK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u := env.rp + "/api/v1/thing"
				if tt.method == http.MethodGet {
					u = env.rp + "/api/v1/me"
				}
				resp := env.do(b, tt.method, u, nil, tt.header)
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, readBody(t, resp))
				}
				if tt.want == http.StatusForbidden {
					assertProblem(t, resp, http.StatusForbidden)
				}
			})
		}
	})
}

func TestBearerToken(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		ctx := context.Background()
		mint := func(role, org string, ttl time.Duration) (string, *models.APIToken) {
			token, hash := NewAPIToken()
			rec := &models.APIToken{Name: "ci", Subject: "robot-" + role, Role: role, Org: org, Hash: hash, ExpiresAt: env.clock.Now().Add(ttl)}
			if err := env.store.CreateToken(ctx, models.Actor{Subject: "robot-" + role, Role: role, Org: org, Source: "test"}, rec); err != nil {
				t.Fatal(err)
			}
			return token, rec
		}
		partner, _ := mint(models.RolePartner, "acme", time.Hour)
		admin, _ := mint(models.RoleAdmin, "", time.Hour)
		revoked, revokedRec := mint(models.RoleAuditor, "", time.Hour)
		if err := env.store.RevokeToken(ctx, models.Actor{Subject: "robot-auditor", Role: models.RoleAuditor, Source: "test"}, revokedRec.ID); err != nil {
			t.Fatal(err)
		}
		expiring, _ := mint(models.RoleAdmin, "", 10*time.Minute)

		bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
		tests := []struct {
			name   string
			method string
			path   string
			header http.Header
			want   int
		}{
			{"POST with a token needs no CSRF header", http.MethodPost, "/api/v1/thing", bearer(partner), http.StatusNoContent},
			{"token principal", http.MethodGet, "/api/v1/me", bearer(partner), http.StatusOK},
			{"partner token on an admin route", http.MethodGet, "/api/v1/admin", bearer(partner), http.StatusForbidden},
			{"admin token on an admin route", http.MethodGet, "/api/v1/admin", bearer(admin), http.StatusNoContent},
			{"revoked token", http.MethodGet, "/api/v1/me", bearer(revoked), http.StatusUnauthorized},
			{"unknown token", http.MethodGet, "/api/v1/me", bearer("cd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), http.StatusUnauthorized},
			{"not a certdesk token", http.MethodGet, "/api/v1/me", bearer("eyJhbGciOi.x.y"), http.StatusUnauthorized},
			{"another scheme", http.MethodGet, "/api/v1/me", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, http.StatusUnauthorized},
			{"anonymous", http.MethodGet, "/api/v1/me", nil, http.StatusUnauthorized},
			{"anonymous POST", http.MethodPost, "/api/v1/thing", nil, http.StatusUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := env.do(env.browser(), tt.method, env.rp+tt.path, nil, tt.header)
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, readBody(t, resp))
				}
				if tt.want >= 400 {
					assertProblem(t, resp, tt.want)
				}
				if tt.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			})
		}

		t.Run("principal of a token", func(t *testing.T) {
			status, p := env.me(env.browser(), bearer(partner))
			if status != http.StatusOK || p.Via != ViaToken || p.Role != models.RolePartner || p.Org != "acme" || p.Subject != "robot-partner" || p.CSRFToken != "" {
				t.Fatalf("%d %+v, want robot-partner of acme via token, no CSRF token", status, p)
			}
		})
		t.Run("expired token", func(t *testing.T) {
			if status, _ := env.me(env.browser(), bearer(expiring)); status != http.StatusOK {
				t.Fatalf("fresh token: %d", status)
			}
			env.clock.Advance(11 * time.Minute)
			if status, _ := env.me(env.browser(), bearer(expiring)); status != http.StatusUnauthorized {
				t.Fatalf("expired token: %d, want 401", status)
			}
		})
		t.Run("a bearer token wins over a session cookie and skips CSRF", func(t *testing.T) {
			b := env.browser()
			location(t, env.signIn(b, "auditor", ""), http.StatusSeeOther)
			resp := env.do(b, http.MethodPost, env.rp+"/api/v1/thing", nil, bearer(partner))
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d, want 204", resp.StatusCode)
			}
		})
	})
}

func TestRequireRole(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		tests := []struct {
			user string
			want int
		}{
			{"admin", http.StatusNoContent},
			{"auditor", http.StatusForbidden},
			{"partner", http.StatusForbidden},
			{"", http.StatusUnauthorized},
		}
		for _, tt := range tests {
			t.Run("user "+tt.user, func(t *testing.T) {
				b := env.browser()
				if tt.user != "" {
					location(t, env.signIn(b, tt.user, ""), http.StatusSeeOther)
				}
				resp := env.do(b, http.MethodGet, env.rp+"/api/v1/admin", nil, nil)
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
				}
				if tt.want >= 400 {
					assertProblem(t, resp, tt.want)
				}
			})
		}
	})
}

// assertProblem checks that resp is an RFC 9457 problem with status.
func assertProblem(t *testing.T, resp *http.Response, status int) *Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, ContentTypeProblem) {
		t.Fatalf("Content-Type %q, want %s", ct, ContentTypeProblem)
	}
	var p Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("decoding problem: %v", err)
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v, want status %d with type and title", p, status)
	}
	return &p
}
