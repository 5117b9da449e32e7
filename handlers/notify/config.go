package notify

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Events a webhook can subscribe to (and that e-mails are sent for).
const (
	// EventRequestSubmitted: a new request waits for an admin's decision.
	EventRequestSubmitted = "request.submitted"
	// EventRequestDecided: a request was approved (and issued) or rejected.
	EventRequestDecided = "request.decided"
	// EventCertificateExpiring: a certificate crossed an expiry threshold.
	EventCertificateExpiring = "certificate.expiring"
)

// Events lists every event, in documentation order.
var Events = []string{EventRequestSubmitted, EventRequestDecided, EventCertificateExpiring}

// Defaults of the zero Config values.
const (
	DefaultExpiryScanInterval = time.Hour
	DefaultMaxAttempts        = 10
	DefaultRetryBackoff       = 30 * time.Second
	DefaultMaxBackoff         = time.Hour
	DefaultPollInterval       = 5 * time.Second
	DefaultTimeout            = 15 * time.Second
	DefaultSMTPPort           = 587 // submission with STARTTLS (RFC 6409)
	DefaultSMTPSPort          = 465 // submission over implicit TLS (RFC 8314)
)

// DefaultExpiryDays are the thresholds, in days before expiry, at which a
// certificate's expiry is noticed when neither the organisation nor the
// configuration says otherwise.
var DefaultExpiryDays = []int{30, 14, 7, 1}

// ErrConfig is wrapped by every configuration problem.
var ErrConfig = errors.New("invalid notifications configuration")

// Config is the "notifications" section of the configuration file. The zero
// value is valid: nothing is sent by e-mail or webhook, and expiry notices
// are still recorded.
type Config struct {
	// SMTP is the mail relay; e-mail is off while SMTP.Host is empty.
	SMTP SMTPConfig `yaml:"smtp"`
	// Webhooks receive every event they subscribe to as a signed JSON POST.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// AdminEmails hear of new requests and of every expiry.
	AdminEmails []string `yaml:"admin_emails"`
	// PortalURL, when set, is used for links in messages
	// (https://certdesk.example.com).
	PortalURL string `yaml:"portal_url"`
	// ExpiryScanInterval is how often expiring certificates are looked for
	// (default 1h).
	ExpiryScanInterval time.Duration `yaml:"expiry_scan_interval"`
	// DefaultExpiryDays are the thresholds of organisations that set none
	// (default 30, 14, 7, 1).
	DefaultExpiryDays []int `yaml:"default_expiry_days"`
	// MaxAttempts is how many times a notification is tried before it is
	// given up (default 10).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the wait after the first failure; it doubles with each
	// further failure up to MaxBackoff (defaults 30s and 1h).
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	MaxBackoff   time.Duration `yaml:"max_backoff"`
	// PollInterval is how often the outbox is looked at for due
	// notifications besides the wake-up at each enqueue (default 5s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout bounds one delivery attempt (default 15s).
	Timeout time.Duration `yaml:"timeout"`
}

// SMTPConfig is the mail relay.
type SMTPConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"` // default 587
	// From is the sender address ("certdesk <pki@example.com>").
	From string `yaml:"from"`
	// Username and PasswordFile authenticate (AUTH PLAIN); both or neither.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// StartTLS upgrades the connection before anything is sent and fails
	// when the relay cannot (the relay's certificate is verified).
	StartTLS bool `yaml:"starttls"`
	// ImplicitTLS speaks TLS from the first byte (RFC 8314 submissions
	// port, default 465). Exclusive with StartTLS.
	ImplicitTLS bool `yaml:"implicit_tls"`
	// CAFile is a PEM bundle of the certificates that the relay's chain must
	// end in, instead of the system's roots (a relay with a private CA).
	CAFile string `yaml:"ca_file"`
}

// tls tells whether the connection to the relay is encrypted.
func (s SMTPConfig) tls() bool { return s.StartTLS || s.ImplicitTLS }

// WebhookConfig is one webhook receiver.
type WebhookConfig struct {
	// URL receives the POSTs; https, or http on a loopback address.
	URL string `yaml:"url"`
	// SecretFile holds the HMAC key (at least 16 bytes) that signs each
	// delivery in the X-Certdesk-Signature header.
	SecretFile string `yaml:"secret_file"`
	// Events the receiver wants; empty means all.
	Events []string `yaml:"events"`
}

// WithDefaults returns c with the zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.ExpiryScanInterval == 0 {
		c.ExpiryScanInterval = DefaultExpiryScanInterval
	}
	if len(c.DefaultExpiryDays) == 0 {
		c.DefaultExpiryDays = slices.Clone(DefaultExpiryDays)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.SMTP.Host != "" && c.SMTP.Port == 0 {
		c.SMTP.Port = DefaultSMTPPort
		if c.SMTP.ImplicitTLS {
			c.SMTP.Port = DefaultSMTPSPort
		}
	}
	c.PortalURL = strings.TrimRight(c.PortalURL, "/")
	return c
}

// Validate reports the first problem with the configuration, naming the
// field (as in the configuration file, under "notifications."). It checks,
// in this order, the mail relay and the admin addresses, the webhooks, the
// portal URL, the expiry thresholds, and the timings.
func (c Config) Validate() error {
	if err := c.SMTP.validate(); err != nil {
		return err
	}
	if len(c.AdminEmails) > 0 && c.SMTP.Host == "" {
		return configErr("admin_emails", "need smtp.host")
	}
	for i, a := range c.AdminEmails {
		if _, err := mail.ParseAddress(a); err != nil {
			return configErr(fmt.Sprintf("admin_emails[%d]", i), "%q is not an e-mail address", a)
		}
	}
	if err := validateWebhooks(c.Webhooks); err != nil {
		return err
	}
	if c.PortalURL != "" {
		if u, err := url.Parse(c.PortalURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return configErr("portal_url", "must be an absolute http(s) URL")
		}
	}
	if err := ValidateExpiryDays(c.DefaultExpiryDays); err != nil {
		return configErr("default_expiry_days", "%v", err)
	}
	return c.validateTimings()
}

// configErr is the error of a configuration field, named as in the file
// under "notifications.".
func configErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: notifications.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

// validate checks the mail relay: no key without smtp.host, a valid sender,
// a password only with a user name and over TLS (or to a loopback relay).
func (s SMTPConfig) validate() error {
	if s.Host == "" {
		if s != (SMTPConfig{}) {
			return configErr("smtp.host", "required when any other smtp key is set")
		}
		return nil
	}
	if s.Port < 0 || s.Port > 65535 {
		return configErr("smtp.port", "must be 1-65535, got %d", s.Port)
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return configErr("smtp.from", "must be an e-mail address: %v", err)
	}
	if (s.Username == "") != (s.PasswordFile == "") {
		return configErr("smtp.password_file", "smtp.username and smtp.password_file go together")
	}
	if s.StartTLS && s.ImplicitTLS {
		return configErr("smtp.implicit_tls", "choose one of smtp.starttls and smtp.implicit_tls")
	}
	if s.Username != "" && !s.tls() && !isLoopback(s.Host) {
		return configErr("smtp.starttls", "must be true (or smtp.implicit_tls) when a password is sent to %s", s.Host)
	}
	if s.CAFile != "" && !s.tls() {
		return configErr("smtp.ca_file", "is used only with smtp.starttls or smtp.implicit_tls")
	}
	return nil
}

// validateWebhooks checks each receiver and that no URL is listed twice.
func validateWebhooks(ws []WebhookConfig) error {
	seen := map[string]bool{}
	for i, w := range ws {
		if err := w.validate(fmt.Sprintf("webhooks[%d]", i), seen); err != nil {
			return err
		}
	}
	return nil
}

// validate checks one receiver, named field in errors: an absolute https
// URL (http on a loopback address) without credentials and not in seen (to
// which it is added), a secret file, and only known events.
func (w WebhookConfig) validate(field string, seen map[string]bool) error {
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return configErr(field+".url", "must be an absolute https URL")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return configErr(field+".url", "must be https (http only on a loopback address)")
	}
	if u.User != nil {
		return configErr(field+".url", "must not carry credentials; the HMAC secret authenticates")
	}
	if seen[w.URL] {
		return configErr(field+".url", "%s is configured twice", w.URL)
	}
	seen[w.URL] = true
	if w.SecretFile == "" {
		return configErr(field+".secret_file", "required")
	}
	for j, e := range w.Events {
		if !slices.Contains(Events, e) {
			return configErr(fmt.Sprintf("%s.events[%d]", field, j), "unknown event %q (known: %s)", e, strings.Join(Events, ", "))
		}
	}
	return nil
}

// validateTimings checks that no interval, backoff, timeout or attempt
// count is negative (zero means the default).
func (c Config) validateTimings() error {
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"expiry_scan_interval", c.ExpiryScanInterval}, {"retry_backoff", c.RetryBackoff},
		{"max_backoff", c.MaxBackoff}, {"poll_interval", c.PollInterval}, {"timeout", c.Timeout},
	} {
		if d.v < 0 {
			return configErr(d.field, "must not be negative")
		}
	}
	if c.MaxAttempts < 0 {
		return configErr("max_attempts", "must not be negative")
	}
	return nil
}

// ValidateExpiryDays checks a list of expiry thresholds: each from 1 to 3650
// days, no repeats. The handlers check organisations' lists with it.
func ValidateExpiryDays(days []int) error {
	seen := map[int]bool{}
	for _, d := range days {
		if d < 1 || d > 3650 {
			return fmt.Errorf("%d is not a number of days from 1 to 3650", d)
		}
		if seen[d] {
			return fmt.Errorf("%d is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readSecret reads a secret file, trimming one trailing newline. Errors name
// the field and the file, never the content.
func readSecret(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: notifications.%s: %v", ErrConfig, field, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%w: notifications.%s: %s is empty", ErrConfig, field, path)
	}
	return s, nil
}

// readRoots reads a PEM bundle of CA certificates for verifying a peer.
func readRoots(field, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: notifications.%s: %v", ErrConfig, field, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: notifications.%s: %s holds no PEM certificate", ErrConfig, field, path)
	}
	return pool, nil
}
