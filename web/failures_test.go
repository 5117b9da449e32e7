package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// testLimits: a burst of 20 failures, one more every 3 s, one-minute windows.
var testLimits = FailureLimits{Rate: rate.Every(3 * time.Second), Burst: 20, Window: time.Minute, MaxSources: 100}

// foldedCounts sums the counts of the auth.failures_folded events of kind.
func (env *authEnv) foldedCounts(kind string) (events, total int) {
	env.t.Helper()
	for _, e := range env.audit(models.ActionAuthFailuresFolded) {
		var d models.AuthFailuresFoldedEvent
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
			env.t.Fatal(err)
		}
		if d.Kind == kind {
			events++
			total += d.Count
		}
	}
	return events, total
}

// wantRateLimited fails unless resp is a 429 problem with a Retry-After of
// at least a second.
func wantRateLimited(t *testing.T, resp *http.Response) {
	t.Helper()
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 || resp.Header.Get("Content-Type") != ContentTypeProblem {
		t.Fatalf("status %d, Retry-After %q, Content-Type %q; want a 429 problem with Retry-After", resp.StatusCode,
			resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
	var p Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Type != ProblemTypeRateLimited || p.Status != http.StatusTooManyRequests {
		t.Fatalf("429 body %+v (err %v), want the rate-limited problem", p, err)
	}
}

func TestCallback_300BogusCalls_LimitedAndFoldedIntoOneCount(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		env.auth.SetFailureLimits(testLimits)
		var observed int
		env.auth.ObserveFailures(func(kind string) {
			if kind == FailureCallback {
				observed++
			}
		})
		c := env.browser()
		limited := 0
		for i := range 300 {
			resp := env.do(c, http.MethodGet, env.rp+"/auth/callback?code=x&state=y", nil, nil)
			switch {
			case i < testLimits.Burst && resp.StatusCode != http.StatusBadRequest:
				t.Fatalf("bogus callback %d: %d, want the 400 failure page within the burst", i, resp.StatusCode)
			case i >= testLimits.Burst:
				wantRateLimited(t, resp)
				limited++
			}
		}
		if limited != 300-testLimits.Burst || observed != 300 {
			t.Fatalf("%d answered 429, %d counted; want %d and 300", limited, observed, 300-testLimits.Burst)
		}
		if n := len(env.audit(models.ActionAuthLoginFailed)); n != 1 {
			t.Fatalf("%d auth.login_failed events for 300 bogus callbacks in one window, want 1", n)
		}
		if n, _ := env.foldedCounts(FailureCallback); n != 0 {
			t.Fatalf("%d folded events before the window ended, want 0", n)
		}

		// The next failure after the window records the window's count and
		// is the first of a new window; the bucket has refilled meanwhile.
		env.clock.Advance(testLimits.Window + time.Second)
		if resp := env.do(c, http.MethodGet, env.rp+"/auth/callback?code=x&state=y", nil, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a bogus callback after the window: %d, want 400", resp.StatusCode)
		}
		first := len(env.audit(models.ActionAuthLoginFailed))
		n, total := env.foldedCounts(FailureCallback)
		if first != 2 || n != 1 || first+total != 301 {
			t.Fatalf("%d auth.login_failed and %d folded events counting %d; want 2 and 1, accounting for all 301 failures", first, n, total)
		}
		ev := env.audit(models.ActionAuthFailuresFolded)[0]
		if ev.Actor != anonymousActor || ev.Source != "127.0.0.1" || ev.ObjectType != "source" || ev.ObjectID != "127.0.0.1" {
			t.Errorf("folded event %+v, want by anonymous from and about 127.0.0.1", ev)
		}
		mustVerifyChain(t, env.store)
	})
}

func TestBearer_BadTokens_LimitedCountedFolded_ValidTokenStillPasses(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		env.auth.SetFailureLimits(testLimits)
		kinds := map[string]int{}
		env.auth.ObserveFailures(func(kind string) { kinds[kind]++ })
		good, hash := NewAPIToken()
		if err := env.store.CreateToken(context.Background(), models.Actor{Subject: "robot", Role: models.RolePartner, Org: "acme", Source: "test"},
			&models.APIToken{Name: "ci", Subject: "robot", Role: models.RolePartner, Org: "acme", Hash: hash, ExpiresAt: env.clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		c := env.browser()
		bad := []string{"Bearer " + APITokenPrefix + "unknown", "Bearer not-a-certdesk-token", "Basic dXNlcjpwYXNz"}
		for i := range 30 {
			resp := env.do(c, http.MethodGet, env.rp+"/api/v1/me", nil, http.Header{"Authorization": {bad[i%len(bad)]}})
			if i < testLimits.Burst {
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("bad token %d: %d, want 401 within the burst", i, resp.StatusCode)
				}
				continue
			}
			wantRateLimited(t, resp)
		}
		// Only failures are limited: the source's valid token still works.
		if status, p := env.me(c, http.Header{"Authorization": {"Bearer " + good}}); status != http.StatusOK || p.Subject != "robot" {
			t.Fatalf("a valid token from a limited source: %d, want 200", status)
		}
		if kinds[FailureBearer] != 30 || len(kinds) != 1 {
			t.Fatalf("failures counted %v, want 30 bearer", kinds)
		}
		// One event per reason (unknown, malformed, another scheme), none
		// with the token; the rest folded.
		rej := env.audit(models.ActionAuthCredentialRejected)
		if len(rej) != len(bad) {
			t.Fatalf("%d auth.credential_rejected events, want one per reason (%d)", len(rej), len(bad))
		}
		for _, e := range rej {
			if !strings.Contains(e.Detail, `"kind":"bearer"`) || strings.Contains(e.Detail, APITokenPrefix) || e.Source != "127.0.0.1" {
				t.Errorf("auth.credential_rejected %+v, want a bearer event from 127.0.0.1 without the token", e)
			}
		}
		env.auth.FlushFailures(context.Background())
		if n, total := env.foldedCounts(FailureBearer); n != len(bad) || len(rej)+total != 30 {
			t.Fatalf("after a flush: %d folded bearer events counting %d; with the %d first ones, want all 30 failures", n, total, len(rej))
		}
		mustVerifyChain(t, env.store)
	})
}

func TestCookie_UnknownSession_LimitedAndFolded_SignInAndSessionsStillWork(t *testing.T) {
	eachAuthEnv(t, func(t *testing.T, env *authEnv) {
		env.auth.SetFailureLimits(testLimits)
		attacker := env.browser()
		for i := range 25 {
			forged, err := newSecret() // well-formed, matching no session
			if err != nil {
				t.Fatal(err)
			}
			setJarCookie(attacker, env.rp, &http.Cookie{Name: SessionCookie, Value: forged, Path: "/"})
			resp := env.do(attacker, http.MethodGet, env.rp+"/api/v1/me", nil, nil)
			if i < testLimits.Burst {
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("forged cookie %d: %d, want 401 (anonymous) within the burst", i, resp.StatusCode)
				}
				continue
			}
			wantRateLimited(t, resp)
		}
		// A partner behind the same address signs in and uses the session.
		partner := env.browser()
		location(t, env.signIn(partner, "partner", ""), http.StatusSeeOther)
		if status, p := env.me(partner, nil); status != http.StatusOK || p.Subject != "partner" {
			t.Fatalf("a valid session from a limited source: %d, want 200", status)
		}
		if n := len(env.audit(models.ActionAuthCredentialRejected)); n != 1 {
			t.Fatalf("%d auth.credential_rejected events, want 1", n)
		}
		env.clock.Advance(testLimits.Window)
		env.auth.failures.flush(context.Background(), false)
		if n, total := env.foldedCounts(FailureCookie); n != 1 || total != 24 {
			t.Fatalf("after the window: %d folded cookie events counting %d, want 1 counting 24", n, total)
		}
	})
}

// mustVerifyChain fails unless the audit chain verifies.
func mustVerifyChain(t *testing.T, s *models.Store) {
	t.Helper()
	if v, err := s.VerifyAudit(context.Background()); err != nil || !v.OK {
		t.Fatalf("audit chain: %+v, %v", v, err)
	}
}

// recordedCounts collects what a failureGuard records.
type recordedCounts struct {
	mu  sync.Mutex
	got []foldedCount
}

func (r *recordedCounts) record(_ context.Context, f foldedCount) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, f)
	return nil
}

func (r *recordedCounts) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.got {
		n += f.count
	}
	return n
}

func TestFailureGuard_FullMap_ForgetsSourcesButNoCount(t *testing.T) {
	clock := modelstest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	g := newFailureGuard(FailureLimits{Rate: 1, Burst: 5, Window: time.Minute, MaxSources: 10}, clock.Now)
	var rec recordedCounts
	g.record = rec.record
	firsts := 0
	for i := range 50 { // 50 sources, 3 failures each, into a map of 10
		ip := fmt.Sprintf("198.51.100.%d", i)
		for range 3 {
			if first, _ := g.failed(context.Background(), ip, FailureBearer, "unknown_token"); first {
				firsts++
			}
		}
		if len(g.sources) > 10 {
			t.Fatalf("%d sources remembered, want at most 10", len(g.sources))
		}
	}
	g.flush(context.Background(), true)
	if firsts+rec.total() != 150 {
		t.Fatalf("%d first failures and %d folded: %d of 150 failures accounted for", firsts, rec.total(), firsts+rec.total())
	}
	clock.Advance(2 * time.Minute)
	g.flush(context.Background(), false)
	if len(g.sources) != 0 {
		t.Fatalf("%d idle sources still remembered after they refilled", len(g.sources))
	}
}

func TestFailureGuard_SourceKey_IPv6CountsAsItsSlash64(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"not-an-ip", "not-an-ip"},
	}
	for _, tt := range tests {
		if got := sourceKey(tt.ip); got != tt.want {
			t.Errorf("sourceKey(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestFailureGuard_RetryAfter_IsTheTimeToTheNextToken(t *testing.T) {
	clock := modelstest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	g := newFailureGuard(FailureLimits{Rate: rate.Every(10 * time.Second), Burst: 2, Window: time.Minute, MaxSources: 10}, clock.Now)
	g.record = (&recordedCounts{}).record
	var waits []time.Duration
	for range 3 {
		_, w := g.failed(context.Background(), "192.0.2.1", FailureCookie, "unknown_session")
		waits = append(waits, w)
	}
	if waits[0] != 0 || waits[1] != 0 || waits[2] < 9*time.Second || waits[2] > 10*time.Second {
		t.Fatalf("waits %v, want none within the burst, then about 10 s", waits)
	}
	if p := rateLimitedProblem(waits[2]); p.RetryAfter != 10 || p.Status != http.StatusTooManyRequests {
		t.Fatalf("problem %+v, want 429 with Retry-After 10", p)
	}
}
