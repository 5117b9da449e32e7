package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certdesk/certdesk/models"
)

// Webhook headers.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// webhook's secret, of the timestamp header's value, a ".", and the body.
	HeaderSignature = "X-Certdesk-Signature"
	// HeaderTimestamp is the Unix time (seconds) of the attempt; it is inside
	// the MAC, so a receiver refusing old timestamps refuses replays.
	HeaderTimestamp = "X-Certdesk-Timestamp"
	// HeaderEvent is the event type, e.g. "certificate.expiring".
	HeaderEvent = "X-Certdesk-Event"
)

// Sign returns the X-Certdesk-Signature value for body sent at timestamp
// (the X-Certdesk-Timestamp value).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook delivery as a receiver should: the signature
// matches (in constant time) and the timestamp is within tolerance of now.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook timestamp is not a Unix time")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook timestamp is too far from now (a replay?)")
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New("webhook signature does not match")
	}
	return nil
}

// permanent marks a failure that trying again cannot fix (a 4xx answer, a
// 5xx SMTP reply, a receiver no longer configured).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// deliverLoop claims due notifications and delivers each in its own
// goroutine, at most concurrency at once, until ctx is done; then it waits
// for those in flight.
func (s *Service) deliverLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.dispatch(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// dispatch claims as many due notifications as there are free delivery
// slots and starts them.
func (s *Service) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	for ctx.Err() == nil {
		free := cap(s.sem) - len(s.sem) // only this goroutine fills sem
		if free == 0 {
			return
		}
		ns, err := s.store.ClaimNotifications(ctx, s.now(), s.lease(), free)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("reading the outbox failed", "err", err)
			}
			return
		}
		for _, n := range ns {
			s.sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-s.sem; s.Wake() }()
				s.deliver(ctx, n)
			}()
		}
		if len(ns) < free {
			return
		}
	}
}

// lease is how long a claimed notification is left to its worker: longer
// than an attempt can take.
func (s *Service) lease() time.Duration { return s.cfg.Timeout + time.Minute }

// deliver makes one attempt and records its outcome.
func (s *Service) deliver(ctx context.Context, n models.Notification) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	var err error
	switch n.Channel {
	case models.ChannelEmail:
		err = s.sendEmail(actx, n)
	case models.ChannelWebhook:
		err = s.sendWebhook(actx, n)
	default:
		err = permanent{fmt.Errorf("unknown channel %q", n.Channel)}
	}
	cancel()
	// Record the outcome even when shutting down.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer rcancel()
	log := s.log.With("notification", n.ID, "channel", n.Channel, "event", n.Event, "attempt", n.Attempts)
	now := s.now()
	if err == nil {
		if rerr := s.store.NotificationSent(rctx, n.ID, now); rerr != nil {
			log.Error("notification sent but not marked sent; it may be sent again", "err", rerr)
		}
		log.Debug("notification sent")
		return
	}
	var p permanent
	if errors.As(err, &p) || n.Attempts >= s.cfg.MaxAttempts {
		log.Warn("notification given up", "err", err, "permanent", errors.As(err, &p))
		if rerr := s.store.AbandonNotification(rctx, n.ID, now, err.Error()); rerr != nil {
			log.Error("recording a given-up notification failed", "err", rerr)
		}
		return
	}
	next := now.Add(s.backoff(n.Attempts))
	log.Info("notification failed; will retry", "err", err, "next_attempt_at", next)
	if rerr := s.store.RetryNotification(rctx, n.ID, next, err.Error()); rerr != nil {
		log.Error("scheduling a retry failed; the lease will expire and it is retried then", "err", rerr)
	}
}

// backoff is the wait after the attempts-th failure: RetryBackoff doubled
// for each earlier failure, at most MaxBackoff, plus up to 10% jitter so
// receivers coming back are not hit by every replica at once.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.RetryBackoff
	for i := 1; i < attempts && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	if j := int64(d / 10); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}

// sendWebhook POSTs the event with its signature.
func (s *Service) sendWebhook(ctx context.Context, n models.Notification) error {
	var w *webhook
	for i := range s.webhooks {
		if s.webhooks[i].url == n.Recipient {
			w = &s.webhooks[i]
		}
	}
	if w == nil {
		return permanent{fmt.Errorf("webhook %s is no longer configured", n.Recipient)}
	}
	body := []byte(n.Body)
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certdesk-webhook/1")
	req.Header.Set(HeaderEvent, n.Event)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.url, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook %s answered %s: %s", w.url, resp.Status, strings.TrimSpace(string(snippet)))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return err
	case resp.StatusCode >= 400:
		return permanent{err}
	}
	return err // 1xx, 3xx: a misconfigured URL that may be fixed
}

// sendEmail sends one message over SMTP (RFC 5321), upgrading with
// STARTTLS (RFC 3207) or over implicit TLS (RFC 8314) when configured. A
// notification that can never be sent (no relay any more, a bad body or
// sender) fails permanently; SMTP failures are classified by smtpErr.
func (s *Service) sendEmail(ctx context.Context, n models.Notification) error {
	cfg := s.cfg.SMTP
	if cfg.Host == "" {
		return permanent{errors.New("e-mail is no longer configured (smtp.host)")}
	}
	var body emailBody
	if err := json.Unmarshal([]byte(n.Body), &body); err != nil {
		return permanent{fmt.Errorf("e-mail body: %w", err)}
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return permanent{err}
	}
	msg, err := s.message(n, body)
	if err != nil {
		return permanent{err}
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	c, err := s.openSMTP(ctx, addr, from)
	if err != nil {
		return err
	}
	defer c.Close()
	return transmit(c, addr, from, n.Recipient, msg)
}

// openSMTP connects to the relay at addr and makes the session ready for
// a message: greeting as the sender's domain, TLS as configured (the
// relay's certificate verified against s.smtpRoots, or the system's), and
// authentication when a user name is set. The connection ends at ctx's
// deadline.
func (s *Service) openSMTP(ctx context.Context, addr, from string) (*smtp.Client, error) {
	cfg := s.cfg.SMTP
	tlsConfig := &tls.Config{ServerName: cfg.Host, RootCAs: s.smtpRoots, MinVersion: tls.VersionTLS12}
	var (
		conn net.Conn
		err  error
	)
	if cfg.ImplicitTLS {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		_ = conn.Close()
		return nil, smtpErr(addr, err)
	}
	if err := s.startSession(c, addr, from, tlsConfig); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// startSession greets the relay, upgrades with STARTTLS when configured
// (refusing a relay that does not offer it) and authenticates.
func (s *Service) startSession(c *smtp.Client, addr, from string, tlsConfig *tls.Config) error {
	cfg := s.cfg.SMTP
	if err := c.Hello(helloName(from)); err != nil {
		return smtpErr(addr, err)
	}
	if cfg.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s: STARTTLS is required (smtp.starttls) but not offered", addr)
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	}
	if cfg.Username != "" {
		// net/smtp sends PLAIN only over TLS or to a loopback host.
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, s.smtpPassword, cfg.Host)); err != nil {
			return smtpErr(addr, fmt.Errorf("authentication as %s failed: %w", cfg.Username, err))
		}
	}
	return nil
}

// transmit sends msg from from to rcpt over an open session and ends it.
func transmit(c *smtp.Client, addr, from, rcpt string, msg []byte) error {
	if err := c.Mail(from); err != nil {
		return smtpErr(addr, err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return smtpErr(addr, err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr(addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpErr(addr, err)
	}
	if err := w.Close(); err != nil {
		return smtpErr(addr, err)
	}
	_ = c.Quit()
	return nil
}

// smtpErr classifies an SMTP failure: a 5xx reply is permanent (RFC 5321
// §4.2.1), anything else is retried.
func smtpErr(addr string, err error) error {
	err = fmt.Errorf("smtp %s: %w", addr, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return permanent{err}
	}
	return err
}

// parseFrom returns the bare sender address.
func parseFrom(from string) (string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("smtp.from: %w", err)
	}
	return a.Address, nil
}

// helloName is the EHLO name: the sender's domain.
func helloName(from string) string {
	if _, dom, ok := strings.Cut(from, "@"); ok && dom != "" {
		return dom
	}
	return "localhost"
}

// message renders an RFC 5322 message: plain UTF-8 text, quoted-printable,
// marked as automatic (RFC 3834) so that auto-responders stay quiet.
func (s *Service) message(n models.Notification, body emailBody) ([]byte, error) {
	from, err := mail.ParseAddress(s.cfg.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("smtp.from: %w", err)
	}
	var b bytes.Buffer
	h := func(k, v string) {
		// No header injection: CR and LF never reach a header line.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	h("From", from.String())
	h("To", "<"+n.Recipient+">")
	h("Subject", mime.QEncoding.Encode("utf-8", strings.NewReplacer("\r", " ", "\n", " ").Replace(n.Subject)))
	h("Date", s.now().Format(time.RFC1123Z))
	h("Message-ID", fmt.Sprintf("<%s.%d@%s>", body.EventID, n.ID, helloName(from.Address)))
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	h("X-Certdesk-Event", n.Event)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(strings.ReplaceAll(body.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
