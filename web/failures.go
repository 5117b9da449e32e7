package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/certdesk/certdesk/models"
)

// Kinds of authentication failure, the "kind" label of
// certdesk_auth_failures_total and of the folded audit events.
const (
	FailureBearer   = "bearer"   // an API token that authenticates nobody
	FailureCookie   = "cookie"   // a session cookie that matches no session
	FailureCallback = "callback" // a sign-in callback that did not sign anyone in
)

// failureKinds lists every kind.
var failureKinds = []string{FailureBearer, FailureCookie, FailureCallback}

// FailureLimits bounds what anonymous and failing traffic costs, per source
// (the client IP as echo's RealIP gives it; an IPv6 address counts as its
// /64, which one host or subscriber usually holds whole).
type FailureLimits struct {
	// Rate and Burst are the token bucket of failures a source may make:
	// past Burst, failures beyond Rate per second are answered 429 with
	// Retry-After. Only failures take tokens: a valid token or session from
	// the same source always passes.
	Rate  rate.Limit
	Burst int
	// Window is the folding window: the first failure of a source, kind
	// and reason in a window is audited at once, the others are counted and
	// recorded as one auth.failures_folded event when the window ends.
	Window time.Duration
	// MaxSources bounds the sources remembered at once.
	MaxSources int
}

// DefaultFailureLimits: a burst of 20 failures, then one every 3 seconds
// (20 a minute), folded per minute, for at most 10,000 sources.
var DefaultFailureLimits = FailureLimits{Rate: rate.Every(3 * time.Second), Burst: 20, Window: time.Minute, MaxSources: 10000}

// RateLimitedError is the answer to a source that failed too often: 429
// with Retry-After (RFC 6585 §4).
type RateLimitedError struct{ RetryAfter time.Duration }

// Error implements error.
func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many failed authentication attempts; retry in %s", e.RetryAfter)
}

// failureWindow is one source's current window for one kind and reason.
type failureWindow struct {
	kind, why string
	start     time.Time // the window's first failure
	folded    int       // failures after the first, not yet recorded
	last      time.Time // the last folded failure
}

// sourceFailures is what is remembered of one source. Its windows are keyed
// by kind and reason, both from fixed vocabularies, so they stay few.
type sourceFailures struct {
	bucket  *rate.Limiter
	seen    time.Time
	windows map[string]*failureWindow
}

// foldedCount is a window's count, due to be recorded.
type foldedCount struct {
	source, kind, why string
	count             int
	since, until      time.Time
}

// failureGuard limits and folds authentication failures per source. Its map
// is bounded: a source idle long enough for its bucket to be full again is
// forgotten (it would be treated the same as a new one), and when the map
// is full the source seen longest ago is forgotten; a forgotten source's
// pending count is recorded first, so nothing is lost.
type failureGuard struct {
	limits FailureLimits
	now    func() time.Time
	// record writes one folded count to the audit log.
	record func(ctx context.Context, f foldedCount) error
	// observe counts a failure of kind (metrics); nil when unused.
	observe func(kind string)
	onError func(ctx context.Context, err error)

	mu      sync.Mutex
	sources map[string]*sourceFailures
}

func newFailureGuard(l FailureLimits, now func() time.Time) *failureGuard {
	if l.Rate <= 0 || l.Burst <= 0 || l.Window <= 0 || l.MaxSources <= 0 {
		l = DefaultFailureLimits
	}
	return &failureGuard{limits: l, now: now, sources: map[string]*sourceFailures{}}
}

// sourceKey is the key of a client address: the IP itself, or the /64 of
// an IPv6 address; anything unparsable is its own key.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// failed counts one failure of kind, for the reason why (a short code word),
// from the client at ip. It reports whether it is the first of its source,
// kind and reason in the window (the caller audits it in full) and,
// when the source is over its limit, how long it should wait. Counts of
// ended windows of this source are recorded before it returns.
func (g *failureGuard) failed(ctx context.Context, ip, kind, why string) (first bool, wait time.Duration) {
	if g.observe != nil {
		g.observe(kind)
	}
	now := g.now()
	key := sourceKey(ip)
	var due []foldedCount

	g.mu.Lock()
	s := g.sources[key]
	if s == nil {
		due = g.makeRoom(now)
		s = &sourceFailures{bucket: rate.NewLimiter(g.limits.Rate, g.limits.Burst), windows: map[string]*failureWindow{}}
		g.sources[key] = s
	}
	s.seen = now
	w := s.windows[kind+" "+why]
	if w == nil || !now.Before(w.start.Add(g.limits.Window)) {
		if w != nil && w.folded > 0 {
			due = append(due, w.count(key))
		}
		s.windows[kind+" "+why] = &failureWindow{kind: kind, why: why, start: now}
		first = true
	} else {
		w.folded++
		w.last = now
	}
	if !s.bucket.AllowN(now, 1) {
		wait = retryAfter(s.bucket, now)
	}
	g.mu.Unlock()

	g.write(ctx, due)
	return first, wait
}

// retryAfter is how long until the bucket holds a token again.
func retryAfter(b *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	if missing <= 0 || b.Limit() <= 0 {
		return time.Second
	}
	return time.Duration(missing / float64(b.Limit()) * float64(time.Second))
}

// makeRoom forgets sources when the map is full (g.mu held) and returns
// their pending counts.
func (g *failureGuard) makeRoom(now time.Time) []foldedCount {
	if len(g.sources) < g.limits.MaxSources {
		return nil
	}
	var due []foldedCount
	idle := g.idleAfter()
	oldest, oldestAt := "", time.Time{}
	for key, s := range g.sources {
		if now.Sub(s.seen) >= idle {
			due = append(due, s.drain(key)...)
			delete(g.sources, key)
			continue
		}
		if oldest == "" || s.seen.Before(oldestAt) {
			oldest, oldestAt = key, s.seen
		}
	}
	if len(g.sources) >= g.limits.MaxSources && oldest != "" {
		due = append(due, g.sources[oldest].drain(oldest)...)
		delete(g.sources, oldest)
	}
	return due
}

// drain returns every pending count of s and clears them.
func (s *sourceFailures) drain(key string) []foldedCount {
	var out []foldedCount
	for _, w := range s.windows {
		if w.folded > 0 {
			out = append(out, w.count(key))
			w.folded = 0
		}
	}
	return out
}

// count is w's pending count for source key.
func (w *failureWindow) count(key string) foldedCount {
	return foldedCount{source: key, kind: w.kind, why: w.why, count: w.folded, since: w.start, until: w.last}
}

// idleAfter is how long a source must be quiet before forgetting it loses
// nothing: its bucket is full again and its windows have ended.
func (g *failureGuard) idleAfter() time.Duration {
	refill := time.Duration(float64(g.limits.Burst) / float64(g.limits.Rate) * float64(time.Second))
	return max(refill, g.limits.Window)
}

// flush records the counts of windows that have ended (every pending count
// when all is set, at shutdown) and forgets sources that need no memory.
func (g *failureGuard) flush(ctx context.Context, all bool) {
	now := g.now()
	var due []foldedCount
	g.mu.Lock()
	idle := g.idleAfter()
	for key, s := range g.sources {
		for wk, w := range s.windows {
			ended := !now.Before(w.start.Add(g.limits.Window))
			if w.folded > 0 && (all || ended) {
				due = append(due, w.count(key))
				w.folded = 0
			}
			if ended {
				delete(s.windows, wk)
			}
		}
		if now.Sub(s.seen) >= idle {
			delete(g.sources, key)
		}
	}
	g.mu.Unlock()
	g.write(ctx, due)
}

// write records counts; a count that cannot be recorded is reported (and
// logged by onError) with its number, so that it is not silently lost.
func (g *failureGuard) write(ctx context.Context, due []foldedCount) {
	for _, f := range due {
		if err := g.record(ctx, f); err != nil && g.onError != nil {
			g.onError(ctx, fmt.Errorf("recording %d folded %s failures from %s: %w", f.count, f.kind, f.source, err))
		}
	}
}

// recordFolded is the failureGuard's record function: one
// auth.failures_folded event by the anonymous actor from the source.
func recordFolded(store interface {
	Record(ctx context.Context, a models.Actor, objectType, objectID string, ev models.Event) error
}) func(ctx context.Context, f foldedCount) error {
	return func(ctx context.Context, f foldedCount) error {
		// A count is recorded even when the request that closed its window
		// has been cancelled.
		ctx = context.WithoutCancel(ctx)
		return store.Record(ctx, models.Actor{Subject: anonymousActor, Source: f.source}, "source", f.source, models.AuthFailuresFoldedEvent{
			Count: f.count, Kind: f.kind, Why: f.why,
			Since: f.since.UTC().Format(time.RFC3339Nano), Until: f.until.UTC().Format(time.RFC3339Nano),
		})
	}
}

// rateLimitedProblem is the 429 answer for wait (whole seconds, at least 1).
func rateLimitedProblem(wait time.Duration) *Problem {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &Problem{Type: ProblemTypeRateLimited, Title: http.StatusText(http.StatusTooManyRequests), Status: http.StatusTooManyRequests,
		Detail: "Too many failed authentication attempts from your address. Try again later.", RetryAfter: secs}
}
