// Package notify tells people about certdesk events: new requests (admins),
// decisions (the requester) and certificates about to expire (the
// organisation's contacts and the admins), by e-mail over SMTP and by signed
// JSON webhooks.
//
// Every notification goes through a durable outbox in the store: it is
// written first and delivered afterwards by a worker that retries with
// exponential backoff, so a slow or failing receiver never holds up issuance
// or the other receivers, and nothing is lost across a restart. Delivery is
// at least once; each event carries an id for receivers to deduplicate.
package notify

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certdesk/certdesk/models"
)

// Store is what notify needs of the store.
type Store interface {
	ListOrgs(ctx context.Context) ([]models.Organization, error)
	EnqueueNotifications(ctx context.Context, ns []models.Notification) error
	ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]models.Notification, error)
	NotificationSent(ctx context.Context, id int64, t time.Time) error
	RetryNotification(ctx context.Context, id int64, next time.Time, lastErr string) error
	AbandonNotification(ctx context.Context, id int64, t time.Time, lastErr string) error
	ExpiringCertificates(ctx context.Context, now, until time.Time) ([]models.Certificate, error)
	RecordExpiryNotice(ctx context.Context, a models.Actor, certID string, thresholdDays int, ns []models.Notification) (bool, error)
	WithLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
}

// concurrency bounds the deliveries in flight per replica.
const concurrency = 8

// enqueueTimeout bounds writing to the outbox from the workflow.
const enqueueTimeout = 10 * time.Second

// Service enqueues notifications and, in Run, delivers them and scans for
// expiring certificates. It implements issuance.Notifier.
type Service struct {
	// Now is the clock (expiry thresholds, due times, webhook timestamps);
	// tests inject one. Defaults to time.Now.
	Now func() time.Time

	cfg          Config
	store        Store
	log          *slog.Logger
	smtpPassword string
	smtpRoots    *x509.CertPool // nil: the system's roots
	webhooks     []webhook
	client       *http.Client
	wake         chan struct{}
	sem          chan struct{}
}

// webhook is a configured receiver with its secret loaded.
type webhook struct {
	url    string
	secret []byte
	events []string // empty: all
}

func (w webhook) wants(event string) bool {
	return len(w.events) == 0 || slices.Contains(w.events, event)
}

// New validates cfg, reads its secret files and returns a service. It sends
// nothing until Run; the Notifier methods enqueue at once.
func New(cfg Config, store Store, log *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: a store is required", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		Now: time.Now, cfg: cfg, store: store, log: log.With("component", "notify"),
		wake: make(chan struct{}, 1), sem: make(chan struct{}, concurrency),
		client: &http.Client{
			// A redirect is a misconfigured URL: do not follow it with the
			// signed body to somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if cfg.SMTP.PasswordFile != "" {
		pw, err := readSecret("smtp.password_file", cfg.SMTP.PasswordFile)
		if err != nil {
			return nil, err
		}
		s.smtpPassword = pw
	}
	if cfg.SMTP.CAFile != "" {
		roots, err := readRoots("smtp.ca_file", cfg.SMTP.CAFile)
		if err != nil {
			return nil, err
		}
		s.smtpRoots = roots
	}
	for i, w := range cfg.Webhooks {
		secret, err := readSecret(fmt.Sprintf("webhooks[%d].secret_file", i), w.SecretFile)
		if err != nil {
			return nil, err
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("%w: notifications.webhooks[%d].secret_file: the secret must be at least 16 bytes", ErrConfig, i)
		}
		s.webhooks = append(s.webhooks, webhook{url: w.URL, secret: []byte(secret), events: w.Events})
	}
	return s, nil
}

// now is the service's clock.
func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Run delivers the outbox and scans for expiring certificates (at once, then
// every expiry_scan_interval) until ctx is done, then waits for the
// deliveries in flight to end.
func (s *Service) Run(ctx context.Context) {
	s.log.Info("notifications running", "email", s.cfg.SMTP.Host != "", "webhooks", len(s.webhooks),
		"expiry_scan_interval", s.cfg.ExpiryScanInterval.String())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.scanLoop(ctx)
	}()
	s.deliverLoop(ctx)
	wg.Wait()
}

// scanLoop runs ScanExpiries at once and then periodically.
func (s *Service) scanLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ExpiryScanInterval)
	defer t.Stop()
	for {
		if n, err := s.ScanExpiries(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("expiry scan failed", "err", err)
		} else if n > 0 {
			s.log.Info("expiry notices enqueued", "certificates", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Event is the JSON document a webhook receives (and the e-mail's source).
type Event struct {
	// ID identifies the event; a receiver seeing it twice (delivery is at
	// least once) ignores the second.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data any       `json:"data"`
}

// RequestData is an event's view of a request.
type RequestData struct {
	ID             string     `json:"id"`
	Org            string     `json:"org"`
	State          string     `json:"state"`
	Identities     []string   `json:"identities"`
	KeyType        string     `json:"key_type"`
	ValidityDays   int        `json:"validity_days"`
	RequestedBy    string     `json:"requested_by"`
	RenewalOf      string     `json:"renewal_of,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	DecidedBy      string     `json:"decided_by,omitempty"`
	DecisionReason string     `json:"decision_reason,omitempty"`
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
	CertificateID  string     `json:"certificate_id,omitempty"`
	URL            string     `json:"url,omitempty"`
}

// ExpiryData is a certificate.expiring event's data.
type ExpiryData struct {
	CertificateID string    `json:"certificate_id"`
	Serial        string    `json:"serial"`
	Org           string    `json:"org"`
	Identities    []string  `json:"identities"`
	NotAfter      time.Time `json:"not_after"`
	DaysLeft      int       `json:"days_left"`
	ThresholdDays int       `json:"threshold_days"`
	URL           string    `json:"url,omitempty"`
}

// emailBody is what the outbox holds for an e-mail.
type emailBody struct {
	EventID string `json:"event_id"`
	Text    string `json:"text"`
}

// RequestSubmitted enqueues the news of a new request for the admins (by
// e-mail) and the webhooks. It never fails the caller: a problem is logged.
func (s *Service) RequestSubmitted(ctx context.Context, r *models.Request) {
	if r == nil {
		return
	}
	d := s.requestData(r)
	subject := fmt.Sprintf("[certdesk] New certificate request from %s", r.Org)
	text := requestText("A certificate request is waiting for a decision.", d)
	s.enqueueOutside(ctx, EventRequestSubmitted, d, s.cfg.AdminEmails, subject, text, "request", r.ID)
}

// RequestDecided enqueues the decision on a request for its requester (by
// e-mail, when the request carries requester_email) and the webhooks. A
// cancellation is the requester's own doing and is not sent. It never
// fails the caller: a problem is logged.
func (s *Service) RequestDecided(ctx context.Context, r *models.Request) {
	if r == nil || r.State == models.StateCancelled || r.State == models.StateSubmitted {
		return
	}
	d := s.requestData(r)
	var outcome string
	switch r.State {
	case models.StateIssued:
		outcome = "was approved and the certificate issued"
	case models.StateApproved:
		outcome = "was approved; the certificate will be issued shortly"
	case models.StateRejected:
		outcome = "was rejected"
	default:
		outcome = "is now " + r.State
	}
	subject := fmt.Sprintf("[certdesk] Your certificate request %s", outcome)
	var to []string
	if r.RequesterEmail != "" {
		to = []string{r.RequesterEmail}
	}
	text := requestText("Your certificate request "+outcome+".", d)
	s.enqueueOutside(ctx, EventRequestDecided, d, to, subject, text, "request", r.ID)
}

// enqueueOutside enqueues an event from a caller that must not fail or wait
// long because of it: the caller's cancellation does not stop the write,
// a timeout bounds it, and errors are logged.
func (s *Service) enqueueOutside(ctx context.Context, event string, data any, to []string, subject, text, objType, objID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	ns, err := s.build(event, data, to, subject, text)
	if err == nil {
		err = s.store.EnqueueNotifications(ctx, ns)
	}
	if err != nil {
		s.log.Error("notification not enqueued", "event", event, objType, objID, "err", err)
		return
	}
	if len(ns) > 0 {
		s.Wake()
	}
}

// build makes the outbox rows of one event: an e-mail per address (when
// SMTP is configured) and a POST per subscribed webhook.
func (s *Service) build(event string, data any, to []string, subject, text string) ([]models.Notification, error) {
	ev := Event{ID: newID(), Type: event, Time: s.now().UTC().Truncate(time.Second), Data: data}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", event, err)
	}
	var ns []models.Notification
	if s.cfg.SMTP.Host != "" {
		body, err := json.Marshal(emailBody{EventID: ev.ID, Text: text})
		if err != nil {
			return nil, err
		}
		for _, addr := range recipients(to, s.log) {
			ns = append(ns, models.Notification{Channel: models.ChannelEmail, Event: event, Recipient: addr,
				Subject: subject, Body: string(body), NextAttemptAt: s.now()})
		}
	} else if len(to) > 0 {
		s.log.Debug("e-mail not sent: no smtp.host configured", "event", event, "recipients", len(to))
	}
	for _, w := range s.webhooks {
		if w.wants(event) {
			ns = append(ns, models.Notification{Channel: models.ChannelWebhook, Event: event, Recipient: w.url,
				Subject: subject, Body: string(payload), NextAttemptAt: s.now()})
		}
	}
	return ns, nil
}

// recipients parses and deduplicates addresses (case-insensitively),
// dropping and logging malformed ones.
func recipients(to []string, log *slog.Logger) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range to {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			log.Warn("e-mail address skipped: malformed", "address", a)
			continue
		}
		key := strings.ToLower(addr.Address)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, addr.Address)
	}
	return out
}

// Wake makes the delivery worker look at the outbox now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) requestData(r *models.Request) RequestData {
	d := RequestData{
		ID: r.ID, Org: r.Org, State: r.State, Identities: r.Identities, KeyType: r.KeyType, ValidityDays: r.ValidityDays,
		RequestedBy: r.RequestedBy, CreatedAt: r.CreatedAt, DecidedBy: r.DecidedBy, DecisionReason: r.DecisionReason,
		DecidedAt: r.DecidedAt,
	}
	if r.RenewalOf != nil {
		d.RenewalOf = *r.RenewalOf
	}
	if r.CertificateID != nil {
		d.CertificateID = *r.CertificateID
	}
	if s.cfg.PortalURL != "" {
		d.URL = s.cfg.PortalURL + "/requests/" + r.ID
	}
	return d
}

// requestText is the e-mail text about a request.
func requestText(lead string, d RequestData) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", lead)
	fmt.Fprintf(&b, "Request:       %s\n", d.ID)
	fmt.Fprintf(&b, "Organisation:  %s\n", d.Org)
	fmt.Fprintf(&b, "Requested by:  %s\n", d.RequestedBy)
	fmt.Fprintf(&b, "Key:           %s\n", d.KeyType)
	fmt.Fprintf(&b, "Validity:      %d days\n", d.ValidityDays)
	b.WriteString("Identities:\n")
	for _, id := range d.Identities {
		fmt.Fprintf(&b, "  - %s\n", id)
	}
	if d.DecidedBy != "" {
		fmt.Fprintf(&b, "Decided by:    %s\n", d.DecidedBy)
	}
	if d.DecisionReason != "" {
		fmt.Fprintf(&b, "Reason:        %s\n", d.DecisionReason)
	}
	if d.CertificateID != "" {
		fmt.Fprintf(&b, "Certificate:   %s\n", d.CertificateID)
	}
	if d.URL != "" {
		fmt.Fprintf(&b, "\n%s\n", d.URL)
	}
	return b.String()
}

// newID returns a random event id (128 bits, hex).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
