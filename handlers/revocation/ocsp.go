package revocation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
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
}

// ocspKey is a serial (stored form) and the CertID hash of the request:
// the response's CertID must repeat the request's (RFC 6960 §4.2.1).
type ocspKey struct {
	serial string
	hash   crypto.Hash
}

// ocspAnswer is a signed response ready to serve.
type ocspAnswer struct {
	der        []byte
	etag       string
	status     int
	thisUpdate time.Time
	nextUpdate time.Time
	expires    time.Time // when to stop reusing it (unknown answers: soon)
}

func (s *ocspState) init() {
	s.answers = map[ocspKey]*ocspAnswer{}
	s.unknown = map[ocspKey]*ocspAnswer{}
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

// forget drops every pre-signed answer for serial.
func (s *ocspState) forget(serial string) {
	serial = models.NormalizeSerial(serial)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.answers {
		if k.serial == serial {
			delete(s.answers, k)
		}
	}
	for k := range s.unknown {
		if k.serial == serial {
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
	needs := func(r *models.OCSPResponder) bool {
		return r == nil || !now.Before(r.NotAfter.Add(-h.cfg.ResponderValidity/3))
	}
	var rotateErr error
	if needs(row) && h.cfg.IssuingKey != "" {
		_, rotateErr = h.store.WithLock(ctx, ocspLockKey, func(ctx context.Context) error {
			r, err := h.store.LatestOCSPResponder(ctx, CRLIssuing, h.keyIDs[CRLIssuing])
			if err != nil && !errors.Is(err, models.ErrNotFound) {
				return err
			}
			if !needs(r) {
				row = r
				return nil
			}
			if row, err = h.newResponder(ctx, now); err != nil {
				return err
			}
			return nil
		})
		if rotateErr != nil {
			h.log.Error("rotating the OCSP responder certificate failed", "err", rotateErr)
		}
		if row == nil || needs(row) {
			// Another replica may have made one meanwhile.
			if r, err := h.store.LatestOCSPResponder(ctx, CRLIssuing, h.keyIDs[CRLIssuing]); err == nil {
				row = r
			}
		}
	}
	if row != nil && now.Before(row.NotAfter) {
		h.ocsp.mu.RLock()
		same := h.ocsp.row != nil && h.ocsp.row.ID == row.ID
		h.ocsp.mu.RUnlock()
		if same {
			return nil
		}
		r, err := h.loadResponder(row)
		if err == nil {
			h.setResponder(ctx, r, row)
			return nil
		}
		rotateErr = errors.Join(rotateErr, err)
	}
	if h.cfg.FallbackToCAKey {
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
		h.log.Warn("OCSP responses are signed with the issuing CA key (fallback)", "reason", rotateErr)
		h.setResponder(ctx, r, nil)
		return nil
	}
	if rotateErr == nil {
		rotateErr = errors.New("no delegated OCSP responder certificate")
	}
	return rotateErr
}

// newResponder makes a responder key in the token next to the issuing key,
// has the issuing CA certify it and stores it for all replicas.
func (h *Service) newResponder(ctx context.Context, now time.Time) (*models.OCSPResponder, error) {
	label := "ocsp-" + now.UTC().Format("200601021504")
	ref, err := responderKeyRef(h.cfg.IssuingKey, label)
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
	row := &models.OCSPResponder{Issuer: CRLIssuing, KeyID: h.keyIDs[CRLIssuing], KeyLabel: label, Serial: signer.SerialHex(cert.SerialNumber), CertDER: der,
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
	ref, err := responderKeyRef(h.cfg.IssuingKey, row.KeyLabel)
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

// responderKeyRef derives the responder key's reference from the issuing
// key's: the same token, module and PIN source, another object label. The
// URI text is edited rather than re-rendered so that its PIN attribute
// survives exactly (pkcs11.URI.String redacts pin-value).
func responderKeyRef(issuingRef, label string) (string, error) {
	if signer.IsSoftware(issuingRef) {
		path := strings.TrimPrefix(issuingRef, signer.SoftwareKeyPrefix)
		return signer.SoftwareKeyPrefix + filepath.Join(filepath.Dir(path), label+".pem"), nil
	}
	rest, ok := strings.CutPrefix(issuingRef, "pkcs11:")
	if !ok {
		return "", errors.New("the issuing key reference is not a pkcs11: URI")
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	var attrs []string
	for _, a := range strings.Split(path, ";") {
		if a == "" || strings.HasPrefix(a, "object=") || strings.HasPrefix(a, "id=") {
			continue
		}
		attrs = append(attrs, a)
	}
	attrs = append(attrs, "object="+url.PathEscape(label))
	out := "pkcs11:" + strings.Join(attrs, ";")
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}

// statusOf is a certificate's OCSP status.
func statusOf(c *models.Certificate) models.CertStatus {
	return models.CertStatus{Serial: c.Serial, State: c.State, NotAfter: c.NotAfter, RevokedAt: c.RevokedAt, RevocationReason: c.RevocationReason}
}

// presignAll signs a fresh answer for every unexpired certificate, so that
// a request costs no HSM operation.
func (h *Service) presignAll(ctx context.Context) {
	r := h.ocsp.current()
	if r == nil {
		return
	}
	now, wall := h.now(), time.Now()
	sts, err := h.store.CertificateStatuses(ctx, now)
	if err != nil {
		h.log.Error("listing certificates to pre-sign OCSP answers", "err", err)
		return
	}
	fresh := make(map[ocspKey]*ocspAnswer, len(sts))
	for _, st := range sts {
		k, a, err := h.signStatus(r, st, crypto.SHA1, nil, now)
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
	if r == nil {
		return
	}
	k, a, err := h.signStatus(r, st, crypto.SHA1, nil, h.now())
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
	// revoked_at is stamped by the store's clock (wall time), hence
	// time.Now here; 5 s of overlap absorbs commit delays.
	polled := time.Now()
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
		if a := h.ocsp.get(ocspKey{models.NormalizeSerial(st.Serial), crypto.SHA1}, now); a != nil && a.status == ocsp.Revoked {
			continue
		}
		h.ocsp.forget(st.Serial)
		h.presignStatus(ctx, st)
	}
}

// signStatus signs the answer for st with r.
func (h *Service) signStatus(r *signer.OCSPResponder, st models.CertStatus, hash crypto.Hash, nonce []byte, now time.Time) (ocspKey, *ocspAnswer, error) {
	serial := models.NormalizeSerial(st.Serial)
	n, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		return ocspKey{}, nil, fmt.Errorf("serial %q is not hex", st.Serial)
	}
	out := signer.OCSPStatus{Serial: n, Status: ocsp.Unknown, IssuerHash: hash, Nonce: nonce,
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
	if out.Status == ocsp.Unknown {
		a.expires = now.Add(ocspUnknownTTL)
	}
	return ocspKey{serial, hash}, a, nil
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
}

// Answer answers one DER request: malformedRequest when it does not parse,
// unauthorized for another CA's certificate, tryLater without a responder,
// else the pre-signed answer (or one signed now for a nonce, or for a serial
// seen for the first time).
func (h *Service) Answer(ctx context.Context, der []byte) Response {
	req, err := signer.ParseOCSPRequest(der)
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
		h.observe("unauthorized", false)
		return errorResponse(ocsp.Unauthorized)
	}
	hash := req.HashAlgorithm
	if hash != crypto.SHA256 {
		hash = crypto.SHA1
	}
	now := h.now()
	key := ocspKey{models.NormalizeSerial(req.SerialNumber.Text(16)), hash}
	// A nonce costs a signature; past the sign rate the nonce is ignored
	// (RFC 8954 §2.1 lets a responder leave it out) and the cached answer
	// is served below.
	if req.Nonce != nil && !h.cfg.DisableOCSPNonce && h.signLimit.Allow() {
		st, err := h.lookup(ctx, key.serial)
		if err != nil {
			return errorResponse(ocsp.InternalError)
		}
		_, a, err := h.signStatus(r, st, hash, req.Nonce, now)
		if err != nil {
			h.log.Error("signing an OCSP answer with a nonce", "serial", key.serial, "err", err)
			return errorResponse(ocsp.InternalError)
		}
		h.observe(statusName(a.status), false)
		return Response{DER: a.der, NoStore: true}
	}
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
		if _, a, err = h.signStatus(r, st, hash, nil, now); err != nil {
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

// lookup reads a certificate's status; an unknown serial is "unknown".
func (h *Service) lookup(ctx context.Context, serial string) (models.CertStatus, error) {
	cert, err := h.store.GetCertificateBySerial(ctx, serial)
	if errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrInvalid) {
		return models.CertStatus{Serial: serial, State: "unknown"}, nil
	}
	if err != nil {
		h.log.Error("reading a certificate for OCSP", "serial", serial, "err", err)
		return models.CertStatus{}, err
	}
	return statusOf(cert), nil
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
	return Response{DER: a.der, ETag: a.etag, LastModified: a.thisUpdate, Expires: now.Add(maxAge), MaxAge: maxAge}
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
