package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// RevocationStore is what the revocation service needs of the store.
type RevocationStore interface {
	RevokedEntries(ctx context.Context, now time.Time) ([]models.RevokedEntry, error)
	SaveCRL(ctx context.Context, c *models.CRL) error
	LatestCRL(ctx context.Context, issuer, keyID string) (*models.CRL, error)
	LatestCRLInfo(ctx context.Context, issuer, keyID string) (*models.CRL, error)
	WithLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
	GetCertificateBySerial(ctx context.Context, serialHex string) (*models.Certificate, error)
	CertificateStatuses(ctx context.Context, now time.Time) ([]models.CertStatus, error)
	RevokedSince(ctx context.Context, since time.Time) ([]models.CertStatus, error)
	SaveOCSPResponder(ctx context.Context, a models.Actor, r *models.OCSPResponder) error
	LatestOCSPResponder(ctx context.Context, issuer, keyID string) (*models.OCSPResponder, error)
}

// RevocationObserver is told about CRL generation and OCSP answers
// (metrics); nil is fine.
type RevocationObserver interface {
	CRLGenerated(issuer string, entries int, took time.Duration)
	RevokeToPublish(took time.Duration)
	OCSPAnswered(status string, presigned bool)
}

// CRL issuers as stored in models.CRL.Issuer.
const (
	CRLIssuing = "issuing"
	CRLRoot    = "root"
)

// Advisory lock keys: one generator of each CRL, one rotator of the OCSP
// responder across all replicas.
const (
	crlLockKeyIssuing int64 = 0x63726c2d69737375 // "crl-issu"
	crlLockKeyRoot    int64 = 0x63726c2d726f6f74 // "crl-root"
	ocspLockKey       int64 = 0x6f6373702d726f74 // "ocsp-rot"
)

// RevocationConfig configures NewRevocation. Store, CA and IssuingKey are
// required; zero durations take the documented defaults.
type RevocationConfig struct {
	Store RevocationStore
	CA    *signer.CA
	// Keys resolves key references (AllowSoftware only in demo mode).
	Keys signer.Keys
	// IssuingKey is the RFC 7512 URI of the issuing CA key. Delegated OCSP
	// responder keys are made in the same token, with the same module and
	// PIN source, under the object label ocsp-<yyyymmddhhmm>.
	IssuingKey string
	// CADir is ca.dir: with an offline root (CA.RootSigner nil) the root's
	// CRL is read from CADir/root.crl (DER or PEM), imported by an operator.
	CADir string
	// PKIURL is the public base URL (for the URLs shown by Status).
	PKIURL string
	Log    *slog.Logger
	Now    func() time.Time

	// CRLValidity is nextUpdate - thisUpdate (default 24h). A CRL is
	// regenerated at half-life, and at once after a revocation.
	CRLValidity time.Duration
	// CRLMaxAge caps the HTTP max-age of a CRL (default 5 min).
	CRLMaxAge time.Duration
	// OCSPValidity is nextUpdate - thisUpdate of an OCSP response (default
	// 24h); pre-signed responses are refreshed at half-life.
	OCSPValidity time.Duration
	// OCSPMaxAge caps the HTTP max-age of an OCSP response (default 60 s),
	// so that caches pick up a revocation quickly.
	OCSPMaxAge time.Duration
	// ResponderValidity is the life of a delegated responder certificate
	// (default 30 days); it is rotated when a third of it is left.
	ResponderValidity time.Duration
	// NonceEnabled signs a fresh response for requests that carry a nonce
	// (RFC 6960 §4.4.1); off, the nonce is ignored and the pre-signed
	// response is returned.
	NonceEnabled bool
	// FallbackToCAKey signs OCSP responses with the issuing CA key when no
	// delegated responder is available.
	FallbackToCAKey bool
	// OCSPSignRate caps the OCSP answers signed on request, per second:
	// those with a nonce and those for serials nobody issued. Pre-signed
	// answers are never limited. Beyond the cap a nonce request gets the
	// pre-signed answer without its nonce, and an unknown serial tryLater,
	// so that a flood of made-up requests cannot keep the HSM from issuing
	// and signing CRLs (default DefaultOCSPSignRate).
	OCSPSignRate float64
	// PollInterval is how often a replica checks the database for CRLs,
	// responders and revocations made by other replicas (default 1 s).
	PollInterval time.Duration
	// Coalesce is how long a burst of revocations is collected before one
	// CRL is generated for all of them (default 50 ms).
	Coalesce time.Duration
	Observer RevocationObserver
}

// DefaultOCSPSignRate is the default RevocationConfig.OCSPSignRate: a few
// percent of what one SoftHSM2 token signs per second, far above what
// honest clients of a partner CA ask for.
const DefaultOCSPSignRate = 100

func (c RevocationConfig) withDefaults() RevocationConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CRLValidity, 24*time.Hour)
	def(&c.CRLMaxAge, 5*time.Minute)
	def(&c.OCSPValidity, 24*time.Hour)
	def(&c.OCSPMaxAge, time.Minute)
	def(&c.ResponderValidity, 30*24*time.Hour)
	def(&c.PollInterval, time.Second)
	def(&c.Coalesce, 50*time.Millisecond)
	if c.OCSPSignRate <= 0 {
		c.OCSPSignRate = DefaultOCSPSignRate
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Revocation serves CRLs and OCSP and keeps them fresh. Every replica
// serves the newest CRL stored in the database; exactly one at a time
// generates (an advisory lock). OCSP answers are pre-signed per replica.
type Revocation struct {
	cfg     RevocationConfig
	store   RevocationStore
	ca      *signer.CA
	log     *slog.Logger
	now     func() time.Time
	signers map[string]*signer.CRLSigner // nil entry: offline root
	// keyIDs names each CA's key (signer.KeyID of its certificate). CRLs
	// and responders are stored with it, so that after the issuing CA is
	// replaced, and while old and new replicas share the database, each
	// serves only what its own CA signed.
	keyIDs   map[string]string
	kick     chan struct{}
	sysActor models.Actor

	mu   sync.RWMutex
	crls map[string]*publishedCRL

	pendingMu    sync.Mutex
	pendingFirst time.Time // earliest revocation not yet in a published CRL
	pendingLast  time.Time // latest one

	ocsp ocspState
	// signLimit paces the OCSP answers signed on request (OCSPSignRate).
	signLimit *rate.Limiter

	lastPublishMS atomic.Int64 // -1 until the first revocation was published
	generated     atomic.Int64 // CRLs this instance generated (tests, metrics)
	presigning    atomic.Bool  // a presignAll is running in the background
	rootFileMod   time.Time
}

// publishedCRL is a CRL as served.
type publishedCRL struct {
	row  models.CRL
	pem  []byte
	etag string
	// readAt is when this replica started reading the revoked
	// certificates for a CRL it generated; zero for a loaded one.
	readAt time.Time
}

// NewRevocation checks the configuration and returns the service. It does
// no I/O: Run loads or generates the CRLs and the OCSP responder, and until
// then the endpoints answer 503 / tryLater.
func NewRevocation(cfg RevocationConfig) (*Revocation, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Store == nil:
		return nil, errors.New("revocation: a store is required")
	case cfg.CA == nil || cfg.CA.Issuer == nil || cfg.CA.Root == nil:
		return nil, errors.New("revocation: the loaded CA is required")
	case cfg.IssuingKey == "" && !cfg.FallbackToCAKey:
		return nil, errors.New("revocation: the issuing key URI is required to make delegated OCSP responder keys (or set FallbackToCAKey)")
	}
	iss, err := cfg.CA.Issuer.CRLSigner()
	if err != nil {
		return nil, err
	}
	signers := map[string]*signer.CRLSigner{CRLIssuing: iss, CRLRoot: nil}
	if cfg.CA.RootSigner != nil {
		if signers[CRLRoot], err = signer.NewCRLSigner(cfg.CA.Root, cfg.CA.RootSigner, cfg.CA.Issuer.Linter()); err != nil {
			return nil, err
		}
	} else if cfg.CADir == "" {
		return nil, errors.New("revocation: the root is offline and no CA dir is given for its imported root.crl")
	}
	keyIDs := map[string]string{}
	for name, cert := range map[string]*x509.Certificate{CRLIssuing: cfg.CA.Issuer.Certificate(), CRLRoot: cfg.CA.Root} {
		if keyIDs[name], err = signer.KeyID(cert.PublicKey); err != nil {
			return nil, fmt.Errorf("revocation: %s CA: %w", name, err)
		}
	}
	h := &Revocation{
		cfg: cfg, store: cfg.Store, ca: cfg.CA, log: cfg.Log, now: cfg.Now, signers: signers, keyIDs: keyIDs,
		kick:      make(chan struct{}, 1),
		sysActor:  models.Actor{Subject: "system:revocation", Role: models.RoleSystem, Source: "revocation"},
		crls:      map[string]*publishedCRL{},
		signLimit: rate.NewLimiter(rate.Limit(cfg.OCSPSignRate), int(math.Ceil(cfg.OCSPSignRate))),
	}
	h.ocsp.init()
	h.lastPublishMS.Store(-1)
	return h, nil
}

// Register adds the public CRL and OCSP routes.
func (h *Revocation) Register(e *echo.Echo) {
	e.GET("/crl/issuing.crl", h.crlHandler(CRLIssuing, false))
	e.GET("/crl/root.crl", h.crlHandler(CRLRoot, false))
	e.GET("/crl/issuing.pem", h.crlHandler(CRLIssuing, true))
	e.GET("/crl/root.pem", h.crlHandler(CRLRoot, true))
	e.GET("/crl/bundle.pem", h.bundle)
	e.POST("/ocsp", h.ocspPOST)
	e.POST("/ocsp/", h.ocspPOST)
	e.GET("/ocsp/*", h.ocspGET)
}

// Run keeps the CRLs and OCSP answers fresh until ctx ends: it loads or
// generates the CRLs, makes or loads the OCSP responder, pre-signs the
// answers, then regenerates CRLs at half-life and after revocations,
// rotates the responder before it expires and picks up what other replicas
// did.
func (h *Revocation) Run(ctx context.Context) {
	h.refresh(ctx)
	h.presignInBackground(ctx)
	tick := time.NewTicker(h.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
			// Coalesce a burst of revocations into one CRL.
			select {
			case <-ctx.Done():
				return
			case <-time.After(h.cfg.Coalesce):
			}
			h.publishRevocations(ctx)
		case <-tick.C:
			h.refresh(ctx)
		}
	}
}

// Revoked is called right after every revocation. It makes the OCSP answer
// for the serial revoked at once (the pre-signed good answer is dropped now
// and a revoked one signed in the background) and asks Run for a new CRL,
// which is published within the coalescing delay plus one signature.
func (h *Revocation) Revoked(c *models.Certificate) {
	if c == nil {
		return
	}
	now := time.Now()
	h.pendingMu.Lock()
	if h.pendingFirst.IsZero() {
		h.pendingFirst = now
	}
	h.pendingLast = now
	h.pendingMu.Unlock()
	h.ocsp.forget(c.Serial)
	go h.presignStatus(context.Background(), statusOf(c))
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// publishRevocations generates the issuing CRL for the pending
// revocations and records how long publication took.
func (h *Revocation) publishRevocations(ctx context.Context) {
	h.pendingMu.Lock()
	first, last := h.pendingFirst, h.pendingLast
	h.pendingMu.Unlock()
	if last.IsZero() {
		return
	}
	if err := h.ensureCRL(ctx, CRLIssuing, last); err != nil {
		h.log.Error("publishing the CRL after a revocation failed; retrying", "err", err)
		return
	}
	h.mu.RLock()
	p := h.crls[CRLIssuing]
	h.mu.RUnlock()
	if p == nil || !p.covers(last) {
		return // another replica holds the lock: retried on the next tick
	}
	took := time.Since(first)
	h.lastPublishMS.Store(took.Milliseconds())
	if h.cfg.Observer != nil {
		h.cfg.Observer.RevokeToPublish(took)
	}
	h.pendingMu.Lock()
	if h.pendingLast.Equal(last) {
		h.pendingFirst, h.pendingLast = time.Time{}, time.Time{}
	} else {
		// Revocations arrived while this CRL was made; their kick is queued.
		h.pendingFirst = last.Add(time.Nanosecond)
	}
	h.pendingMu.Unlock()
	h.log.Info("CRL published after revocation", "number", p.row.Number, "entries", p.row.Entries, "revoke_to_publish_ms", took.Milliseconds())
}

// covers reports whether the CRL was built from a read made after t:
// this replica generated it from a read that started later, or its
// thisUpdate (whole seconds, rounded down) is later.
func (p *publishedCRL) covers(t time.Time) bool {
	return p.row.ThisUpdate.After(t) || p.readAt.After(t)
}

// refresh is one tick of Run.
func (h *Revocation) refresh(ctx context.Context) {
	for _, issuer := range []string{CRLIssuing, CRLRoot} {
		if h.signers[issuer] == nil {
			h.loadOfflineRootCRL()
			continue
		}
		if err := h.ensureCRL(ctx, issuer, time.Time{}); err != nil {
			h.log.Error("keeping the CRL fresh failed", "issuer", issuer, "err", err)
		}
	}
	h.pendingMu.Lock()
	pending := !h.pendingLast.IsZero()
	h.pendingMu.Unlock()
	if pending {
		h.publishRevocations(ctx)
	}
	if err := h.ensureResponder(ctx); err != nil {
		h.log.Error("OCSP responder unavailable", "err", err)
	}
	h.pickUpRevocations(ctx)
	if h.ocsp.stale(h.now(), h.cfg.OCSPValidity/2) {
		h.presignInBackground(ctx)
	}
}

// needsCRL reports whether a new CRL must be generated: none yet, past
// half-life, or one revocation (at since) it does not cover.
func (h *Revocation) needsCRL(latest *models.CRL, now, since time.Time) bool {
	if latest == nil {
		return true
	}
	half := latest.ThisUpdate.Add(latest.NextUpdate.Sub(latest.ThisUpdate) / 2)
	if !now.Before(half) {
		return true
	}
	return !since.IsZero() && !latest.ThisUpdate.After(since)
}

// ensureCRL loads the newest stored CRL of issuer and, if it is missing,
// old or does not cover a revocation made at since, generates the next one
// under the cluster-wide lock. A replica that does not get the lock serves
// the stored CRL and tries again on its next tick.
func (h *Revocation) ensureCRL(ctx context.Context, issuer string, since time.Time) error {
	latest, err := h.loadLatest(ctx, issuer)
	if err != nil {
		return err
	}
	if !h.needsCRL(latest, h.now(), since) {
		return nil
	}
	key := crlLockKeyIssuing
	if issuer == CRLRoot {
		key = crlLockKeyRoot
	}
	_, err = h.store.WithLock(ctx, key, func(ctx context.Context) error {
		// Another replica may have generated it while we waited.
		latest, err := h.loadLatest(ctx, issuer)
		if err != nil {
			return err
		}
		if !h.needsCRL(latest, h.now(), since) {
			return nil
		}
		row, readAt, err := h.generateCRL(ctx, issuer, latest)
		if err != nil {
			return err
		}
		h.installRead(issuer, row, readAt)
		return nil
	})
	return err
}

// loadLatest serves the newest stored CRL of issuer, reading its DER only
// when it is newer than the one served, and returns it (nil if none).
func (h *Revocation) loadLatest(ctx context.Context, issuer string) (*models.CRL, error) {
	info, err := h.store.LatestCRLInfo(ctx, issuer, h.keyIDs[issuer])
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h.mu.RLock()
	cur := h.crls[issuer]
	h.mu.RUnlock()
	if cur != nil && cur.row.Number >= info.Number {
		row := cur.row
		return &row, nil
	}
	full, err := h.store.LatestCRL(ctx, issuer, h.keyIDs[issuer])
	if err != nil {
		return nil, err
	}
	h.install(issuer, full)
	return full, nil
}

// generateCRL builds, lints, signs and stores the next CRL of issuer.
// It returns the row and when the read of revoked certificates started.
func (h *Revocation) generateCRL(ctx context.Context, issuer string, latest *models.CRL) (*models.CRL, time.Time, error) {
	start := time.Now()
	now := h.now()
	thisUpdate := now.UTC().Truncate(time.Second)
	var entries []signer.RevokedCert
	if issuer == CRLIssuing {
		revoked, err := h.store.RevokedEntries(ctx, now)
		if err != nil {
			return nil, time.Time{}, err
		}
		entries = make([]signer.RevokedCert, 0, len(revoked))
		for _, r := range revoked {
			serial, ok := new(big.Int).SetString(r.Serial, 16)
			if !ok {
				return nil, time.Time{}, fmt.Errorf("revoked certificate has a non-hex serial %q", r.Serial)
			}
			at := r.RevokedAt
			// A revocation stamped by a replica whose clock is ahead must
			// not postdate thisUpdate (RFC 5280 §5.3.2 and zlint's
			// e_crl_revocation_time_after_this_update).
			if at.After(thisUpdate) {
				at = thisUpdate
			}
			entries = append(entries, signer.RevokedCert{Serial: serial, RevokedAt: at, Reason: r.RevocationReason})
		}
	}
	// Numbers go on above every stored CRL of this issuer, also those of a
	// CA key it replaced: monotonic for each key, unique in the table.
	number := int64(1)
	if latest != nil {
		number = latest.Number + 1
	}
	if top, err := h.store.LatestCRLInfo(ctx, issuer, models.AnyKey); err == nil && top.Number >= number {
		number = top.Number + 1
	} else if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, time.Time{}, err
	}
	der, err := h.signers[issuer].Sign(signer.CRLTemplate{
		Number: number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(h.cfg.CRLValidity), Entries: entries,
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	row := &models.CRL{Issuer: issuer, KeyID: h.keyIDs[issuer], Number: number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(h.cfg.CRLValidity), Entries: len(entries), DER: der}
	if err := h.store.SaveCRL(ctx, row); err != nil {
		return nil, time.Time{}, err
	}
	h.generated.Add(1)
	took := time.Since(start)
	if h.cfg.Observer != nil {
		h.cfg.Observer.CRLGenerated(issuer, len(entries), took)
	}
	h.log.Info("CRL generated", "issuer", issuer, "number", number, "entries", len(entries), "ms", took.Milliseconds())
	return row, start, nil
}

// install serves row if it is newer than what is served.
func (h *Revocation) install(issuer string, row *models.CRL) { h.installRead(issuer, row, time.Time{}) }

// installRead is install for a CRL generated here from a read at readAt.
func (h *Revocation) installRead(issuer string, row *models.CRL, readAt time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur := h.crls[issuer]; cur != nil && cur.row.Number >= row.Number {
		return
	}
	sum := sha256.Sum256(row.DER)
	h.crls[issuer] = &publishedCRL{
		row:    *row,
		pem:    pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: row.DER}),
		etag:   `"` + hex.EncodeToString(sum[:16]) + `"`,
		readAt: readAt,
	}
}

// loadOfflineRootCRL serves CADir/root.crl, signed by the offline root,
// when it changed on disk.
func (h *Revocation) loadOfflineRootCRL() {
	path := filepath.Join(h.cfg.CADir, "root.crl")
	st, err := os.Stat(path)
	if err != nil {
		if h.rootFileMod.IsZero() {
			h.log.Warn("the root is offline and no root CRL is imported: gateways that check the whole chain will refuse clients", "path", path)
			h.rootFileMod = time.Unix(1, 0)
		}
		return
	}
	if st.ModTime().Equal(h.rootFileMod) {
		return
	}
	h.rootFileMod = st.ModTime()
	b, err := os.ReadFile(path)
	if err != nil {
		h.log.Error("reading the imported root CRL", "path", path, "err", err)
		return
	}
	if block, _ := pem.Decode(b); block != nil {
		b = block.Bytes
	}
	crl, err := parseCRLFrom(b, h.ca.Root)
	if err != nil {
		h.log.Error("the imported root CRL is not usable", "path", path, "err", err)
		return
	}
	h.install(CRLRoot, &models.CRL{Issuer: CRLRoot, Number: crl.Number.Int64(), ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate,
		Entries: len(crl.RevokedCertificateEntries), DER: b})
}

// crlHandler serves one CRL as DER (application/pkix-crl, RFC 5280 §4.2.1.13)
// or PEM.
func (h *Revocation) crlHandler(issuer string, asPEM bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		h.mu.RLock()
		p := h.crls[issuer]
		h.mu.RUnlock()
		if p == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the "+issuer+" CRL is not available yet")
		}
		if asPEM {
			return h.serveCRLBytes(c, "application/x-pem-file", p.pem, p.etag+"p", p.row)
		}
		return h.serveCRLBytes(c, "application/pkix-crl", p.row.DER, p.etag, p.row)
	}
}

// bundle serves both CRLs in PEM, the issuing CA's first, for nginx
// ssl_crl (which checks the whole chain and needs both).
func (h *Revocation) bundle(c echo.Context) error {
	h.mu.RLock()
	iss, root := h.crls[CRLIssuing], h.crls[CRLRoot]
	h.mu.RUnlock()
	if iss == nil || root == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the issuing and root CRLs are not both available yet")
	}
	row := iss.row
	if root.row.NextUpdate.Before(row.NextUpdate) {
		row.NextUpdate = root.row.NextUpdate
	}
	if root.row.ThisUpdate.After(row.ThisUpdate) {
		row.ThisUpdate = root.row.ThisUpdate
	}
	return h.serveCRLBytes(c, "application/x-pem-file", bytes.Join([][]byte{iss.pem, root.pem}, nil),
		strings.TrimSuffix(iss.etag, `"`)+strings.TrimPrefix(root.etag, `"`), row)
}

// serveCRLBytes writes a CRL with Last-Modified (thisUpdate), ETag and a
// Cache-Control that ends no later than nextUpdate.
func (h *Revocation) serveCRLBytes(c echo.Context, contentType string, b []byte, etag string, row models.CRL) error {
	hd := c.Response().Header()
	maxAge := row.NextUpdate.Sub(h.now())
	if maxAge > h.cfg.CRLMaxAge {
		maxAge = h.cfg.CRLMaxAge
	}
	if maxAge < 0 {
		maxAge = 0
	}
	hd.Set("ETag", etag)
	hd.Set("Last-Modified", row.ThisUpdate.UTC().Format(http.TimeFormat))
	hd.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform", int(maxAge.Seconds())))
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, contentType, b)
}

// RevocationStatus is the body of GET /api/v1/revocation.
type RevocationStatus struct {
	CRLs                  []CRLStatus `json:"crls"`
	OCSP                  *OCSPInfo   `json:"ocsp"`
	LastRevokeToPublishMS *int64      `json:"last_revoke_to_publish_ms"`
}

// CRLStatus describes one published CRL.
type CRLStatus struct {
	Issuer     string    `json:"issuer"`
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	URL        string    `json:"url"`
}

// OCSPInfo describes the OCSP responder.
type OCSPInfo struct {
	ResponderSubject string    `json:"responder_subject"`
	Serial           string    `json:"serial"`
	NotAfter         time.Time `json:"not_after"`
	Delegated        bool      `json:"delegated"`
	URL              string    `json:"url"`
}

// Status is GET /api/v1/revocation: the published CRLs, the OCSP responder
// and the last measured time from a revoke call to a published CRL.
func (h *Revocation) Status(c echo.Context) error {
	return c.JSON(http.StatusOK, h.StatusNow())
}

// StatusNow is what Status answers.
func (h *Revocation) StatusNow() RevocationStatus {
	base := strings.TrimRight(h.cfg.PKIURL, "/")
	out := RevocationStatus{CRLs: []CRLStatus{}}
	h.mu.RLock()
	for _, issuer := range []string{CRLIssuing, CRLRoot} {
		if p := h.crls[issuer]; p != nil {
			out.CRLs = append(out.CRLs, CRLStatus{Issuer: issuer, Number: p.row.Number, ThisUpdate: p.row.ThisUpdate, NextUpdate: p.row.NextUpdate,
				Entries: p.row.Entries, URL: base + "/crl/" + issuer + ".crl"})
		}
	}
	h.mu.RUnlock()
	if r := h.ocsp.current(); r != nil {
		cert := r.Certificate()
		out.OCSP = &OCSPInfo{ResponderSubject: cert.Subject.String(), Serial: signer.SerialHex(cert.SerialNumber), NotAfter: cert.NotAfter,
			Delegated: r.Delegated(), URL: base + "/ocsp"}
	}
	if ms := h.lastPublishMS.Load(); ms >= 0 {
		out.LastRevokeToPublishMS = &ms
	}
	return out
}

// Generated is the number of CRLs this instance generated (for tests and
// metrics).
func (h *Revocation) Generated() int64 { return h.generated.Load() }

// parseCRLFrom parses a DER CRL and checks that issuer signed it.
func parseCRLFrom(der []byte, issuer *x509.Certificate) (*x509.RevocationList, error) {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("not signed by %q: %w", issuer.Subject, err)
	}
	if crl.Number == nil {
		return nil, errors.New("the CRL has no CRL number")
	}
	return crl, nil
}
