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
// field (as in the configuration file, under "notifications.").
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: notifications.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	if c.SMTP.Host != "" {
		s := c.SMTP
		if s.Port < 0 || s.Port > 65535 {
			return bad("smtp.port", "must be 1-65535, got %d", s.Port)
		}
		if _, err := mail.ParseAddress(s.From); err != nil {
			return bad("smtp.from", "must be an e-mail address: %v", err)
		}
		if (s.Username == "") != (s.PasswordFile == "") {
			return bad("smtp.password_file", "smtp.username and smtp.password_file go together")
		}
		if s.StartTLS && s.ImplicitTLS {
			return bad("smtp.implicit_tls", "choose one of smtp.starttls and smtp.implicit_tls")
		}
		if s.Username != "" && !s.tls() && !isLoopback(s.Host) {
			return bad("smtp.starttls", "must be true (or smtp.implicit_tls) when a password is sent to %s", s.Host)
		}
		if s.CAFile != "" && !s.tls() {
			return bad("smtp.ca_file", "is used only with smtp.starttls or smtp.implicit_tls")
		}
	} else if c.SMTP != (SMTPConfig{}) {
		return bad("smtp.host", "required when any other smtp key is set")
	}
	if len(c.AdminEmails) > 0 && c.SMTP.Host == "" {
		return bad("admin_emails", "need smtp.host")
	}
	for i, a := range c.AdminEmails {
		if _, err := mail.ParseAddress(a); err != nil {
			return bad(fmt.Sprintf("admin_emails[%d]", i), "%q is not an e-mail address", a)
		}
	}
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		field := fmt.Sprintf("webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return bad(field+".url", "must be an absolute https URL")
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return bad(field+".url", "must be https (http only on a loopback address)")
		}
		if u.User != nil {
			return bad(field+".url", "must not carry credentials; the HMAC secret authenticates")
		}
		if seen[w.URL] {
			return bad(field+".url", "%s is configured twice", w.URL)
		}
		seen[w.URL] = true
		if w.SecretFile == "" {
			return bad(field+".secret_file", "required")
		}
		for j, e := range w.Events {
			if !slices.Contains(Events, e) {
				return bad(fmt.Sprintf("%s.events[%d]", field, j), "unknown event %q (known: %s)", e, strings.Join(Events, ", "))
			}
		}
	}
	if c.PortalURL != "" {
		if u, err := url.Parse(c.PortalURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return bad("portal_url", "must be an absolute http(s) URL")
		}
	}
	if err := ValidateExpiryDays(c.DefaultExpiryDays); err != nil {
		return bad("default_expiry_days", "%v", err)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"expiry_scan_interval", c.ExpiryScanInterval}, {"retry_backoff", c.RetryBackoff},
		{"max_backoff", c.MaxBackoff}, {"poll_interval", c.PollInterval}, {"timeout", c.Timeout},
	} {
		if d.v < 0 {
			return bad(d.field, "must not be negative")
		}
	}
	if c.MaxAttempts < 0 {
		return bad("max_attempts", "must not be negative")
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
