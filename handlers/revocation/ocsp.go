package revocation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/serial"
)

// ocspUnknownTTL is how long an "unknown" answer is reused: a serial is
// unknown until its certificate is issued, and nobody knows a serial before.
const ocspUnknownTTL = time.Minute

// ocspUnknownMax bounds the "unknown" answers kept: anyone can ask for
// made-up serials, and each would otherwise stay until the next pre-sign.
const ocspUnknownMax = 10000

// ocspState is a replica's OCSP responder and its pre-signed answers.
type ocspState struct {
	mu        sync.RWMutex
	responder *signer.OCSPResponder
	row       *models.OCSPResponder // nil when the CA key signs
	answers   map[ocspKey]*ocspAnswer
	unknown   map[ocspKey]*ocspAnswer // answers for serials not issued, at most ocspUnknownMax
	presigned time.Time               // when presignAll last ran (service clock)
	// presignedWall is the wall time presignAll read the statuses at, and
	// revokedPolled the wall time of the last look for revocations made
	// through other replicas.
	presignedWall, revokedPolled time.Time
	// raw maps the bytes of a request without a nonce to what it asks, so
	// that a repeated request — what OCSP clients and gateways send — is
	// answered without parsing it again (at most ocspRawMax kept).
	raw map[string]rawRequest
	// headers caches the per-second caching headers of cached answers.
	headers atomic.Pointer[cacheHeaders]
}

// ocspRawMax bounds the requests remembered by their bytes.
const ocspRawMax = 1 << 16

// rawRequest is what a remembered request asks, and of which responder.
type rawRequest struct {
	key       ocspKey
	responder *signer.OCSPResponder
}

// ocspKey is a serial and the CertID hash of the request: the response's
// CertID must repeat the request's (RFC 6960 §4.2.1).
type ocspKey struct {
	serial serial.Number
	hash   crypto.Hash
}

// ocspAnswer is a signed response ready to serve.
type ocspAnswer struct {
	der  []byte
	etag string
	// etagH and lastModH are the ETag and Last-Modified header values,
	// made once, so that serving the answer allocates nothing for them.
	etagH, lastModH []string
	status          int
	thisUpdate      time.Time
	nextUpdate      time.Time
	expires         time.Time // when to stop reusing it (unknown answers: soon)
}

func (s *ocspState) init() {
	s.answers = map[ocspKey]*ocspAnswer{}
	s.unknown = map[ocspKey]*ocspAnswer{}
	s.raw = map[string]rawRequest{}
}

// getRaw is the answer for a remembered request of exactly these bytes, if
// one is cached and fresh at now.
func (s *ocspState) getRaw(der []byte, now time.Time) *ocspAnswer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.raw[string(der)]
	if !ok || e.responder != s.responder {
		return nil
	}
	a := s.answers[e.key]
	if a == nil {
		a = s.unknown[e.key]
	}
	if a == nil || !now.Before(a.expires) || !now.Before(a.nextUpdate) {
		return nil
	}
	return a
}

// rememberRaw keeps that the request der (without a nonce) asks for k of
// responder r. When the table is full it starts again: the requests worth
// keeping come back at once.
func (s *ocspState) rememberRaw(der []byte, k ocspKey, r *signer.OCSPResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.raw) >= ocspRawMax {
		clear(s.raw)
	}
	s.raw[string(der)] = rawRequest{key: k, responder: r}
}

// cacheHeaders are the Cache-Control and Expires values of cached answers
// served in one second with one max-age.
type cacheHeaders struct {
	second        int64
	maxAge        time.Duration
	cache, expire []string
}

func (s *ocspState) current() *signer.OCSPResponder {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.responder
}

func (s *ocspState) get(k ocspKey, now time.Time) *ocspAnswer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.answers[k]
	if a == nil {
		a = s.unknown[k]
	}
	if a == nil || !now.Before(a.expires) || !now.Before(a.nextUpdate) {
		return nil
	}
	return a
}

func (s *ocspState) put(k ocspKey, a *ocspAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unknown, k)
	s.answers[k] = a
}

// putUnknown keeps an answer for a serial that was never issued, dropping
// expired ones when the cache is full; when it is still full the answer is
// not kept.
func (s *ocspState) putUnknown(k ocspKey, a *ocspAnswer, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.unknown) >= ocspUnknownMax {
		for k, old := range s.unknown {
			if !now.Before(old.expires) {
				delete(s.unknown, k)
			}
		}
	}
	if len(s.unknown) < ocspUnknownMax {
		s.unknown[k] = a
	}
}

// forget drops every pre-signed answer for sn.
func (s *ocspState) forget(sn serial.Number) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.answers {
		if k.serial == sn {
			delete(s.answers, k)
		}
	}
	for k := range s.unknown {
		if k.serial == sn {
			delete(s.unknown, k)
		}
	}
}

// stale reports whether the pre-signed answers are older than age.
func (s *ocspState) stale(now time.Time, age time.Duration) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.responder != nil && now.Sub(s.presigned) >= age
}

// ensureResponder loads the newest delegated responder from the database,
// making (under the cluster-wide lock) a new key and certificate when there
// is none or a third of its life is left. Without one it falls back to the
// CA key only if configured.
func (h *Service) ensureResponder(ctx context.Context) error {
	now := h.now()
	row, err := h.store.LatestOCSPResponder(ctx, CRLIssuing, h.keyIDs[CRLIssuing])
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	var rotateErr error
	if h.needsResponder(row, now) && h.cfg.IssuingKey != "" {
		row, rotateErr = h.rotateResponder(ctx, row, now)
	}
	if row != nil && now.Before(row.NotAfter) {
		err := h.useResponder(ctx, row)
		if err == nil {
			return nil
		}
		rotateErr = errors.Join(rotateErr, err)
	}
	if h.cfg.FallbackToCAKey {
		return h.fallBackToCAKey(ctx, rotateErr)
	}
	if rotateErr == nil {
		rotateErr = errors.New("no delegated OCSP responder certificate")
	}
	return rotateErr
}

// needsResponder reports whether r (nil: none) must be replaced at now: a
// third of its life is left.
func (h *Service) needsResponder(r *models.OCSPResponder, now time.Time) bool {
	return r == nil || !now.Before(r.NotAfter.Add(-h.cfg.ResponderValidity/3))
}

// rotateResponder makes a new responder under the cluster-wide lock unless
// another replica made one meanwhile, and returns the newest row (row if
// nothing better is found) and why rotating failed, if it did.
func (h *Service) rotateResponder(ctx context.Context, row *models.OCSPResponder, now time.Time) (*models.OCSPResponder, error) {
	_, err := h.store.WithLock(ctx, ocspLockKey, func(ctx context.Context) error {
		r, err := h.store.LatestOCSPResponder(ctx, CRLIssuing, h.keyIDs[CRLIssuing])
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if !h.needsResponder(r, now) {
			row = r
			return nil
		}
		if row, err = h.newResponder(ctx, now); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		h.log.Error("rotating the OCSP responder certificate failed", "err", err)
	}
	if row == nil || h.needsResponder(row, now) {
		// Another replica may have made one meanwhile.
		if r, err := h.store.LatestOCSPResponder(ctx, CRLIssuing, h.keyIDs[CRLIssuing]); err == nil {
			row = r
		}
	}
	return row, err
}

// useResponder switches to the responder of row unless it is in use.
func (h *Service) useResponder(ctx context.Context, row *models.OCSPResponder) error {
	h.ocsp.mu.RLock()
	same := h.ocsp.row != nil && h.ocsp.row.ID == row.ID
	h.ocsp.mu.RUnlock()
	if same {
		return nil
	}
	r, err := h.loadResponder(row)
	if err != nil {
		return err
	}
	h.setResponder(ctx, r, row)
	return nil
}

// fallBackToCAKey signs with the issuing CA key (unless it already does),
// logging why no delegated responder is used.
func (h *Service) fallBackToCAKey(ctx context.Context, why error) error {
	h.ocsp.mu.RLock()
	usingCAKey := h.ocsp.responder != nil && h.ocsp.row == nil
	h.ocsp.mu.RUnlock()
	if usingCAKey {
		return nil
	}
	r, err := signer.NewOCSPResponder(h.ca.Issuer.Certificate(), h.ca.Issuer.Certificate(), h.ca.Issuer.Signer())
	if err != nil {
		return err
	}
	h.log.Warn("OCSP responses are signed with the issuing CA key (fallback)", "reason", why)
	h.setResponder(ctx, r, nil)
	return nil
}

// newResponder makes a responder key in the token next to the issuing key,
// has the issuing CA certify it and stores it for all replicas.
func (h *Service) newResponder(ctx context.Context, now time.Time) (*models.OCSPResponder, error) {
	label := "ocsp-" + now.UTC().Format("200601021504")
	ref, err := signer.SiblingKeyRef(h.cfg.IssuingKey, label)
	if err != nil {
		return nil, err
	}
	key, err := h.cfg.Keys.Find(ref)
	if signer.IsNotFound(err) {
		key, err = h.cfg.Keys.Create(ref, "EC-P256")
	}
	if err != nil {
		return nil, fmt.Errorf("OCSP responder key %s: %w", label, err)
	}
	der, err := h.ca.Issuer.NewOCSPResponderCert(key.Public(), now, h.cfg.ResponderValidity)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	sn, err := serial.FromBig(cert.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder certificate: %w", err)
	}
	row := &models.OCSPResponder{Issuer: CRLIssuing, KeyID: h.keyIDs[CRLIssuing], KeyLabel: label, Serial: sn.String(), CertDER: der,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}
	if err := h.store.SaveOCSPResponder(ctx, h.sysActor, row); err != nil {
		return nil, err
	}
	h.log.Info("OCSP responder certificate issued", "key_label", label, "serial", row.Serial, "not_after", row.NotAfter)
	return row, nil
}

// loadResponder finds the responder's key in the token and checks it
// against its certificate.
func (h *Service) loadResponder(row *models.OCSPResponder) (*signer.OCSPResponder, error) {
	ref, err := signer.SiblingKeyRef(h.cfg.IssuingKey, row.KeyLabel)
	if err != nil {
		return nil, err
	}
	key, err := h.cfg.Keys.Find(ref)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder key %s: %w", row.KeyLabel, err)
	}
	cert, err := x509.ParseCertificate(row.CertDER)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder certificate %s: %w", row.Serial, err)
	}
	return signer.NewOCSPResponder(h.ca.Issuer.Certificate(), cert, key)
}

// setResponder switches to r and re-signs every pre-signed answer with it.
func (h *Service) setResponder(ctx context.Context, r *signer.OCSPResponder, row *models.OCSPResponder) {
	h.ocsp.mu.Lock()
	had := h.ocsp.responder != nil
	h.ocsp.responder, h.ocsp.row = r, row
	h.ocsp.mu.Unlock()
	h.log.Info("OCSP responder in use", "subject", r.Certificate().Subject.String(), "delegated", r.Delegated())
	if had {
		h.presignInBackground(ctx)
	}
}

// presignInBackground runs presignAll off the publishing loop, one at a
// time: signing every answer takes about 25 s per 100k certificates on
// SoftHSM2, and a revocation must not wait that long for its CRL. Answers
// for certificates revoked meanwhile are signed at once by Revoked and kept
// by presignAll's merge. Until the first run ends, requests for certificates
// not yet pre-signed are signed on demand.
func (h *Service) presignInBackground(ctx context.Context) {
	if !h.presigning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.presigning.Store(false)
		h.presignAll(ctx)
	}()
}

// statusOf is a certificate's OCSP status.
func statusOf(c *models.Certificate) models.CertStatus {
	return models.CertStatus{Serial: c.Serial, State: c.State, NotAfter: c.NotAfter, RevokedAt: c.RevokedAt, RevocationReason: c.RevocationReason, IssuerKeyID: c.IssuerKeyID}
}

// presignAll signs a fresh answer for every unexpired certificate, so that
// a request costs no HSM operation.
func (h *Service) presignAll(ctx context.Context) {
	r := h.ocsp.current()
	if r == nil {
		return
	}
	now, wall := h.now(), wallNow()
	sts, err := h.store.CertificateStatuses(ctx, now)
	if err != nil {
		h.log.Error("listing certificates to pre-sign OCSP answers", "err", err)
		return
	}
	fresh := make(map[ocspKey]*ocspAnswer, len(sts))
	for _, st := range sts {
		if !h.ownCertificate(st) {
			continue
		}
		k, a, err := h.signStored(r, st, now)
		if err != nil {
			h.log.Error("pre-signing an OCSP answer", "serial", st.Serial, "err", err)
			return
		}
		fresh[k] = a
	}
	h.ocsp.mu.Lock()
	// Keep answers signed meanwhile for revocations (they are newer).
	for k, a := range h.ocsp.answers {
		if a.thisUpdate.After(now) || (a.status == ocsp.Revoked && fresh[k] != nil && fresh[k].status != ocsp.Revoked) {
			fresh[k] = a
		}
	}
	h.ocsp.answers, h.ocsp.presigned = fresh, now
	if h.ocsp.revokedPolled.IsZero() || wall.Before(h.ocsp.revokedPolled) {
		h.ocsp.revokedPolled = wall
	}
	h.ocsp.presignedWall = wall
	h.ocsp.mu.Unlock()
	h.log.Info("OCSP answers pre-signed", "count", len(sts))
}

// presignStatus signs and stores the answer for one certificate.
func (h *Service) presignStatus(_ context.Context, st models.CertStatus) {
	r := h.ocsp.current()
	if r == nil || !h.ownCertificate(st) {
		return
	}
	k, a, err := h.signStored(r, st, h.now())
	if err != nil {
		h.log.Error("signing an OCSP answer", "serial", st.Serial, "err", err)
		return
	}
	h.ocsp.put(k, a)
}

// pickUpRevocations re-signs the answers of certificates that another
// replica revoked since the last look.
func (h *Service) pickUpRevocations(ctx context.Context) {
	now := h.now()
	// revoked_at is stamped by the store's clock, hence wall time here; 5 s
	// of overlap absorbs commit delays.
	polled := wallNow()
	h.ocsp.mu.Lock()
	since := h.ocsp.revokedPolled
	if since.IsZero() {
		since = h.ocsp.presignedWall
	}
	ready := h.ocsp.responder != nil && !since.IsZero()
	h.ocsp.mu.Unlock()
	if !ready {
		return
	}
	revoked, err := h.store.RevokedSince(ctx, since.Add(-5*time.Second))
	if err != nil {
		h.log.Error("looking for revocations by other replicas", "err", err)
		return
	}
	h.ocsp.mu.Lock()
	h.ocsp.revokedPolled = polled
	h.ocsp.mu.Unlock()
	for _, st := range revoked {
		sn, err := serial.Parse(st.Serial)
		if err != nil {
			h.log.Error("a revoked certificate has a bad serial", "serial", st.Serial, "err", err)
			continue
		}
		if a := h.ocsp.get(ocspKey{sn, crypto.SHA1}, now); a != nil && a.status == ocsp.Revoked {
			continue
		}
		h.ocsp.forget(sn)
		h.presignStatus(ctx, st)
	}
}

// signStored signs the pre-signed (SHA-1 CertID, no nonce) answer for a
// stored certificate's status.
func (h *Service) signStored(r *signer.OCSPResponder, st models.CertStatus, now time.Time) (ocspKey, *ocspAnswer, error) {
	sn, err := serial.Parse(st.Serial)
	if err != nil {
		return ocspKey{}, nil, fmt.Errorf("stored certificate: %w", err)
	}
	return h.signStatus(r, sn, st, crypto.SHA1, nil, now)
}

// signStatus signs the answer for the certificate sn, whose status is st,
// with r.
func (h *Service) signStatus(r *signer.OCSPResponder, sn serial.Number, st models.CertStatus, hash crypto.Hash, nonce []byte, now time.Time) (ocspKey, *ocspAnswer, error) {
	out := signer.OCSPStatus{Serial: sn, Status: ocsp.Unknown, IssuerHash: hash, Nonce: nonce,
		ThisUpdate: now, NextUpdate: now.Add(h.cfg.OCSPValidity)}
	switch st.State {
	case models.CertIssued:
		out.Status = ocsp.Good
	case models.CertRevoked:
		out.Status = ocsp.Revoked
		if st.RevokedAt != nil {
			out.RevokedAt = *st.RevokedAt
		}
		if st.RevocationReason != nil {
			out.Reason = *st.RevocationReason
		}
	}
	der, err := r.Sign(out)
	if err != nil {
		return ocspKey{}, nil, err
	}
	sum := sha256.Sum256(der)
	a := &ocspAnswer{der: der, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, status: out.Status,
		thisUpdate: out.ThisUpdate.Truncate(time.Second), nextUpdate: out.NextUpdate.Truncate(time.Second), expires: out.NextUpdate}
	a.etagH, a.lastModH = []string{a.etag}, []string{a.thisUpdate.UTC().Format(http.TimeFormat)}
	if out.Status == ocsp.Unknown {
		a.expires = now.Add(ocspUnknownTTL)
	}
	return ocspKey{sn, hash}, a, nil
}

// Response is an OCSP answer ready to write: a signed response with the
// caching headers of RFC 5019 §6, or one not to be cached (an unsigned
// error status, RFC 6960 §2.3, or an answer with a nonce).
type Response struct {
	DER []byte
	// NoStore marks an answer no cache may keep; the fields below are
	// then unset.
	NoStore      bool
	ETag         string
	LastModified time.Time // thisUpdate
	Expires      time.Time
	MaxAge       time.Duration
	// The same caching headers as values ready to put into an
	// http.Header (set for cached answers): formatted once and shared, so
	// the writer must not change them.
	CacheControlH, ETagH, LastModifiedH, ExpiresH []string
}

// Answer answers one DER request: malformedRequest when it does not parse,
// unauthorized for another CA's certificate, tryLater without a responder,
// else the pre-signed answer (or one signed now for a nonce, or for a serial
// seen for the first time).
func (h *Service) Answer(ctx context.Context, der []byte) Response {
	// The fast path: the same bytes were answered before, without a nonce.
	now := h.now()
	if a := h.ocsp.getRaw(der, now); a != nil {
		h.observe(statusName(a.status), true)
		return h.cached(a, now)
	}
	req, err := signer.ParseOCSPRequest(der)
	if err != nil {
		h.observe("malformed", false)
		return errorResponse(ocsp.Malformed)
	}
	sn, err := serial.FromBig(req.SerialNumber)
	if err != nil {
		h.observe("malformed", false)
		return errorResponse(ocsp.Malformed)
	}
	r := h.ocsp.current()
	if r == nil {
		h.observe("try_later", false)
		return errorResponse(ocsp.TryLater)
	}
	if !r.Authorized(req.Request) {
		// Another issuing CA's certificate: a previous CA's own responder
		// answers for it.
		for _, p := range h.previous {
			if pr := p.ocsp.current(); pr != nil && pr.Authorized(req.Request) {
				return p.Answer(ctx, der)
			}
		}
		h.observe("unauthorized", false)
		return errorResponse(ocsp.Unauthorized)
	}
	hash := req.HashAlgorithm
	if hash != crypto.SHA256 {
		hash = crypto.SHA1
	}
	key := ocspKey{sn, hash}
	// A nonce costs a signature; past the sign rate the nonce is ignored
	// (RFC 8954 §2.1 lets a responder leave it out) and the cached answer
	// is served below.
	if req.Nonce != nil && !h.cfg.DisableOCSPNonce && h.signLimit.Allow() {
		return h.answerWithNonce(ctx, r, key, req.Nonce)
	}
	resp := h.answerCached(ctx, r, key)
	if !resp.NoStore && (req.Nonce == nil || h.cfg.DisableOCSPNonce) {
		// A request with a nonce is remembered only when nonces are off: else
		// the next one like it must get its nonce when the rate allows.
		h.ocsp.rememberRaw(der, key, r)
	}
	return resp
}

// answerWithNonce signs a fresh answer that echoes nonce (RFC 6960
// §4.4.1); no cache may keep it.
func (h *Service) answerWithNonce(ctx context.Context, r *signer.OCSPResponder, key ocspKey, nonce []byte) Response {
	st, err := h.lookup(ctx, key.serial)
	if err != nil {
		return errorResponse(ocsp.InternalError)
	}
	_, a, err := h.signStatus(r, key.serial, st, key.hash, nonce, h.now())
	if err != nil {
		h.log.Error("signing an OCSP answer with a nonce", "serial", key.serial, "err", err)
		return errorResponse(ocsp.InternalError)
	}
	h.observe(statusName(a.status), false)
	return Response{DER: a.der, NoStore: true}
}

// answerCached serves the pre-signed answer for key, or signs and keeps
// one: at once for an issued certificate, within the sign rate for a serial
// nobody issued.
func (h *Service) answerCached(ctx context.Context, r *signer.OCSPResponder, key ocspKey) Response {
	now := h.now()
	a := h.ocsp.get(key, now)
	presigned := a != nil
	if a == nil {
		st, err := h.lookup(ctx, key.serial)
		if err != nil {
			return errorResponse(ocsp.InternalError)
		}
		// Issued certificates are few and each is signed once per hash and
		// validity; made-up serials are endless, so they wait for the rate.
		unknown := st.State == "unknown"
		if unknown && !h.signLimit.Allow() {
			h.observe("try_later", false)
			return errorResponse(ocsp.TryLater)
		}
		if _, a, err = h.signStatus(r, key.serial, st, key.hash, nil, now); err != nil {
			h.log.Error("signing an OCSP answer", "serial", key.serial, "err", err)
			return errorResponse(ocsp.InternalError)
		}
		if unknown {
			h.ocsp.putUnknown(key, a, now)
		} else {
			h.ocsp.put(key, a)
		}
	}
	h.observe(statusName(a.status), presigned)
	return h.cached(a, now)
}

// lookup reads a certificate's status; a serial nobody issued (or one no
// CA issues, such as zero) is "unknown".
func (h *Service) lookup(ctx context.Context, sn serial.Number) (models.CertStatus, error) {
	cert, err := h.store.GetCertificateBySerial(ctx, sn.String())
	if errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrInvalid) {
		return models.CertStatus{Serial: sn.String(), State: "unknown"}, nil
	}
	if err != nil {
		h.log.Error("reading a certificate for OCSP", "serial", sn, "err", err)
		return models.CertStatus{}, err
	}
	if st := statusOf(cert); h.ownCertificate(st) {
		return st, nil
	}
	// Another issuing CA's certificate: its own CA's responder answers.
	return models.CertStatus{Serial: sn.String(), State: "unknown"}, nil
}

// ownCertificate reports whether this service's issuing CA issued the
// certificate of st (or the certificate predates recording its issuer).
func (h *Service) ownCertificate(st models.CertStatus) bool {
	return st.IssuerKeyID == "" || st.IssuerKeyID == h.keyIDs[CRLIssuing]
}

// cached is a signed answer with the caching headers of RFC 5019 §6:
// max-age no later than nextUpdate (and at most OCSPMaxAge so that caches
// see a revocation soon), ETag, Last-Modified (thisUpdate) and Expires.
func (h *Service) cached(a *ocspAnswer, now time.Time) Response {
	maxAge := a.nextUpdate.Sub(now)
	if maxAge > h.cfg.OCSPMaxAge {
		maxAge = h.cfg.OCSPMaxAge
	}
	if a.status == ocsp.Unknown && maxAge > ocspUnknownTTL {
		maxAge = ocspUnknownTTL
	}
	if maxAge < 0 {
		maxAge = 0
	}
	maxAge = maxAge.Truncate(time.Second)
	sec := now.Unix()
	ch := h.ocsp.headers.Load()
	if ch == nil || ch.second != sec || ch.maxAge != maxAge {
		ch = &cacheHeaders{second: sec, maxAge: maxAge,
			cache:  []string{"max-age=" + strconv.Itoa(int(maxAge.Seconds())) + ", public, no-transform, must-revalidate"},
			expire: []string{time.Unix(sec, 0).Add(maxAge).UTC().Format(http.TimeFormat)}}
		h.ocsp.headers.Store(ch)
	}
	return Response{DER: a.der, ETag: a.etag, LastModified: a.thisUpdate, Expires: now.Add(maxAge), MaxAge: maxAge,
		CacheControlH: ch.cache, ETagH: a.etagH, LastModifiedH: a.lastModH, ExpiresH: ch.expire}
}

// errorResponse is an unsigned error status (RFC 6960 §2.3), which OCSP
// clients expect with HTTP 200.
func errorResponse(st ocsp.ResponseStatus) Response {
	return Response{DER: signer.OCSPErrorResponse(st), NoStore: true}
}

func (h *Service) observe(status string, presigned bool) {
	if h.cfg.Observer != nil {
		h.cfg.Observer.OCSPAnswered(status, presigned)
	}
}

func statusName(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}
