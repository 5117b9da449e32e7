package revocation

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// CRLDelta is the name (models.CRL.Issuer) of the issuing CA's delta CRL:
// the revocations since the full CRL it names as its base (RFC 5280
// §5.2.4). It shares the full CRL's numbering sequence.
const CRLDelta = "issuing-delta"

// PartitionName is the name (models.CRL.Issuer) of partition p of the
// issuing CA's CRL.
func PartitionName(p int) string { return CRLIssuing + "/" + strconv.Itoa(p) }

// crlScope is one CRL the service keeps published.
type crlScope struct {
	name      string // models.CRL.Issuer
	ca        string // whose key signs it: CRLIssuing or CRLRoot
	partition int    // models.AllPartitions, or the one it lists
	delta     bool
	// idp is the partition's URL, named by its issuing distribution point.
	idp  string
	lock int64
}

// Lock keys of the scopes beyond the two full CRLs: each partition and the
// delta CRL have their own, so that a revocation's partition is never kept
// waiting behind the full CRL of millions of entries.
const (
	crlLockKeyDelta     int64 = 0x63726c2d64656c74 // "crl-delt"
	crlLockKeyPartition int64 = 0x63726c2d70000000 // "crl-p" + partition
)

// buildScopes lists what the service publishes: the issuing CA's full CRL,
// the root's (withRoot: the current CA's service publishes it, a previous
// CA's does not), and, as the issuing CA's certificates name them, its
// partitions and delta CRL. The issuing CA's lock keys are mixed with its
// key id, so that the generators of two issuing CAs never wait for each
// other.
func buildScopes(urls signer.URLs, keyID string, withRoot bool) (map[string]*crlScope, []string) {
	mix := lockMix(keyID)
	scopes := map[string]*crlScope{
		CRLIssuing: {name: CRLIssuing, ca: CRLIssuing, partition: models.AllPartitions, lock: crlLockKeyIssuing ^ mix},
	}
	order := []string{CRLIssuing}
	if withRoot {
		scopes[CRLRoot] = &crlScope{name: CRLRoot, ca: CRLRoot, partition: models.AllPartitions, lock: crlLockKeyRoot}
		order = append(order, CRLRoot)
	}
	if urls.DeltaCRL != "" {
		scopes[CRLDelta] = &crlScope{name: CRLDelta, ca: CRLIssuing, partition: models.AllPartitions, delta: true, lock: crlLockKeyDelta ^ mix}
		order = append(order, CRLDelta)
	}
	if urls.CRL != "" {
		for p := 0; p < urls.CRLPartitions; p++ {
			name := PartitionName(p)
			scopes[name] = &crlScope{name: name, ca: CRLIssuing, partition: p, idp: signer.PartitionURL(urls.CRL, p), lock: (crlLockKeyPartition + int64(p)) ^ mix}
			order = append(order, name)
		}
	}
	return scopes, order
}

// lockMix is 32 bits of the issuing CA's key id (hex), placed above the
// partition numbers of a lock key.
func lockMix(keyID string) int64 {
	if len(keyID) < 8 {
		return 0
	}
	v, err := strconv.ParseUint(keyID[:8], 16, 32)
	if err != nil {
		return 0
	}
	return int64(v) << 16
}

// pendingCRL is what a scope's next CRL must cover: the revocations from
// first to last, the last one numbered seq in Service.revocations.
type pendingCRL struct {
	first, last time.Time
	seq         uint64
}

// scopesOf are the scopes that list the revoked certificate c: the full
// CRL, the delta, and its partition when this CA issued it.
func (h *Service) scopesOf(c *models.Certificate) []string {
	out := []string{CRLIssuing}
	if h.scopes[CRLDelta] != nil {
		out = append(out, CRLDelta)
	}
	if c.IssuerKeyID == "" || c.IssuerKeyID == h.keyIDs[CRLIssuing] {
		if _, ok := h.scopes[PartitionName(c.CRLPartition)]; ok && c.CRLPartition >= 0 {
			out = append(out, PartitionName(c.CRLPartition))
		}
	}
	return out
}

// markPending records a revocation made at now, numbered seq, for scopes.
func (h *Service) markPending(scopes []string, now time.Time, seq uint64) {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	for _, name := range scopes {
		p := h.pending[name]
		if p == nil {
			p = &pendingCRL{first: now}
			h.pending[name] = p
		}
		p.last, p.seq = now, seq
	}
}

// hasPending reports whether any revocation waits for a CRL of a scope
// selected by which.
func (h *Service) hasPending(which func(string) bool) bool {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	for name := range h.pending {
		if which(name) {
			return true
		}
	}
	return false
}

// publishScope generates the CRL of scope name for its pending revocations
// and returns how long after the first of them it was published (false if
// it was not: nothing pending, an error, or another replica holds the lock).
func (h *Service) publishScope(ctx context.Context, name string) (time.Duration, bool) {
	h.pendingMu.Lock()
	p := h.pending[name]
	var want pendingCRL
	if p != nil {
		want = *p
	}
	h.pendingMu.Unlock()
	if p == nil {
		return 0, false
	}
	if err := h.ensureCRL(ctx, name, want.last); err != nil {
		h.log.Error("publishing a CRL after a revocation failed; retrying", "issuer", name, "err", err)
		return 0, false
	}
	pub := h.served(name)
	if pub == nil || !pub.covers(want.last, want.seq) {
		return 0, false // another replica holds the lock: retried on the next tick
	}
	took := h.now().Sub(want.first)
	h.pendingMu.Lock()
	if cur := h.pending[name]; cur != nil {
		if cur.seq == want.seq {
			delete(h.pending, name)
		} else {
			// Revocations arrived while this CRL was made; their kick is queued.
			cur.first = want.last.Add(time.Nanosecond)
		}
	}
	h.pendingMu.Unlock()
	h.log.Info("CRL published after revocation", "issuer", name, "number", pub.row.Number, "entries", pub.row.Entries, "revoke_to_publish_ms", took.Milliseconds())
	return took, true
}

// isFull reports whether name is the issuing CA's full CRL, which may take
// seconds with millions of entries and is therefore made in the background.
func isFull(name string) bool { return name == CRLIssuing }

// publishFullInBackground publishes the full CRL while Run goes on
// publishing partitions and deltas.
func (h *Service) publishFullInBackground(ctx context.Context) {
	h.fullInBackground(func() {
		for ctx.Err() == nil && h.hasPending(isFull) {
			if !h.fullPause(ctx) {
				return
			}
			started := time.Now()
			took, ok := h.publishScope(ctx, CRLIssuing)
			h.fullLast.Store(&fullRun{end: time.Now(), took: time.Since(started)})
			if !ok {
				return // retried on the next tick
			}
			if len(h.partitions) == 0 && h.scopes[CRLDelta] == nil {
				h.recordPublish(took)
			}
		}
	})
}

// renewFullInBackground keeps the full CRL fresh (loaded, or renewed at
// half-life) in the background.
func (h *Service) renewFullInBackground(ctx context.Context) {
	h.fullInBackground(func() {
		if err := h.ensureCRL(ctx, CRLIssuing, time.Time{}); err != nil {
			h.log.Error("keeping the CRL fresh failed", "issuer", CRLIssuing, "err", err)
		}
	})
}

// fullInBackground runs work on the full CRL in a goroutine, unless the
// full CRL is already being made: one such goroutine at a time, waited for
// by Run's end.
func (h *Service) fullInBackground(work func()) {
	if !h.fullBusy.CompareAndSwap(false, true) {
		return
	}
	h.background.Add(1)
	go func() {
		defer h.background.Done()
		defer h.fullBusy.Store(false)
		work()
	}()
}

// fullRun is when the last full CRL made after revocations ended and
// how long it took.
type fullRun struct {
	end  time.Time
	took time.Duration
}

// fullPauseFactor spaces full CRLs made after revocations: after one that
// took T, the next starts no sooner than fullPauseFactor × T after it
// ended, so that with millions revoked a stream of revocations keeps the
// full CRL to a fifth of a core (every revocation is published at once in
// its partition and the delta). A small CRL takes milliseconds, so the
// pause is not noticed.
const fullPauseFactor = 4

// fullPause waits out the pause after the last full CRL; false if ctx
// ended first.
func (h *Service) fullPause(ctx context.Context) bool {
	last := h.fullLast.Load()
	if last == nil {
		return true
	}
	wait := time.Until(last.end.Add(fullPauseFactor * last.took))
	if wait <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// recordPublish records the time from a revocation to its publication.
func (h *Service) recordPublish(took time.Duration) {
	h.lastPublishMS.Store(took.Milliseconds())
	if h.cfg.Observer != nil {
		h.cfg.Observer.RevokeToPublish(took)
	}
}

// served is the CRL of scope name as served, or nil.
func (h *Service) served(name string) *publishedCRL {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.crls[name]
}

// ParseCRLName maps the last part of a CRL URL under /crl/issuing/ ("7.crl",
// "7.pem") to its scope name and form; ok is false for anything else.
func ParseCRLName(file string) (name string, asPEM bool, ok bool) {
	base, ext, found := strings.Cut(file, ".")
	if !found || (ext != "crl" && ext != "pem") || base == "" || len(base) > 4 {
		return "", false, false
	}
	p, err := strconv.Atoi(base)
	if err != nil || p < 0 || strconv.Itoa(p) != base {
		return "", false, false
	}
	return PartitionName(p), ext == "pem", true
}
