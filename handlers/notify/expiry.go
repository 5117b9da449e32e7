package notify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/certdesk/certdesk/models"
)

// ExpiryLockKey is the cluster-wide lock (a PostgreSQL advisory lock) under
// which one replica at a time scans for expiring certificates ("cd-expiry"
// in ASCII, distinct from the migration and CRL keys).
const ExpiryLockKey int64 = 0x63642d6578706972

// scanActor is who records expiry notices in the audit chain.
var scanActor = models.Actor{Subject: "system:notify", Role: models.RoleSystem, Source: "expiry-scan"}

const day = 24 * time.Hour

// ScanExpiries looks, under ExpiryLockKey, for issued and unrevoked
// certificates that crossed an expiry threshold of their organisation
// (expiry_notice_days, or default_expiry_days), records each (certificate,
// threshold) once and enqueues its notices: an e-mail to each of the
// organisation's contact_emails and admin_emails, and a certificate.expiring
// webhook event. Only the smallest threshold crossed is noticed, so a
// certificate found late (or issued short) gets one notice, not a burst. It
// returns how many notices it recorded; 0 when another replica holds the
// lock.
func (s *Service) ScanExpiries(ctx context.Context) (int, error) {
	var noticed int
	_, err := s.store.WithLock(ctx, ExpiryLockKey, func(ctx context.Context) error {
		var err error
		noticed, err = s.scan(ctx)
		return err
	})
	if err != nil {
		return noticed, fmt.Errorf("expiry scan: %w", err)
	}
	if noticed > 0 {
		s.Wake()
	}
	return noticed, nil
}

func (s *Service) scan(ctx context.Context) (int, error) {
	now := s.now()
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return 0, err
	}
	bySlug := make(map[string]*models.Organization, len(orgs))
	horizon := slices.Max(s.cfg.DefaultExpiryDays)
	for i := range orgs {
		bySlug[orgs[i].Slug] = &orgs[i]
		if len(orgs[i].ExpiryNoticeDays) > 0 {
			horizon = max(horizon, slices.Max(orgs[i].ExpiryNoticeDays))
		}
	}
	certs, err := s.store.ExpiringCertificates(ctx, now, now.Add(time.Duration(horizon)*day))
	if err != nil {
		return 0, err
	}
	noticed := 0
	for i := range certs {
		c := &certs[i]
		org := bySlug[c.Org]
		days := s.cfg.DefaultExpiryDays
		if org != nil && len(org.ExpiryNoticeDays) > 0 {
			days = org.ExpiryNoticeDays
		}
		left := c.NotAfter.Sub(now)
		threshold, ok := crossed(days, left)
		if !ok {
			continue
		}
		ns, err := s.expiryNotifications(c, org, threshold, left)
		if err != nil {
			return noticed, err
		}
		recorded, err := s.store.RecordExpiryNotice(ctx, scanActor, c.ID, threshold, ns)
		if err != nil {
			return noticed, err
		}
		if recorded {
			noticed++
			s.log.Info("certificate expiry noticed", "certificate", c.ID, "serial", c.Serial, "org", c.Org,
				"threshold_days", threshold, "notifications", len(ns))
		}
	}
	return noticed, nil
}

// crossed returns the smallest threshold (in days) that a certificate with
// left to live has crossed.
func crossed(days []int, left time.Duration) (int, bool) {
	best, ok := 0, false
	for _, d := range days {
		if left <= time.Duration(d)*day && (!ok || d < best) {
			best, ok = d, true
		}
	}
	return best, ok
}

// expiryNotifications builds the outbox rows of one expiry notice.
func (s *Service) expiryNotifications(c *models.Certificate, org *models.Organization, threshold int, left time.Duration) ([]models.Notification, error) {
	d := ExpiryData{
		CertificateID: c.ID, Serial: c.Serial, Org: c.Org, Identities: c.Identities, NotAfter: c.NotAfter.UTC(),
		DaysLeft: int(math.Ceil(left.Hours() / 24)), ThresholdDays: threshold,
	}
	if s.cfg.PortalURL != "" {
		d.URL = s.cfg.PortalURL + "/certificates/" + c.ID
	}
	var to []string
	orgName := c.Org
	if org != nil {
		to = append(to, org.ContactEmails...)
		orgName = org.Name
	}
	to = append(to, s.cfg.AdminEmails...)
	subject := fmt.Sprintf("[certdesk] Certificate %s of %s expires in %s", shortSerial(c.Serial), orgName, plural(d.DaysLeft, "day"))
	var b strings.Builder
	fmt.Fprintf(&b, "A client certificate of %s expires in %s, on %s.\n", orgName, plural(d.DaysLeft, "day"), d.NotAfter.Format("Monday 2 January 2006 at 15:04 MST"))
	b.WriteString("Renew it (submit a renewal request) and deploy the new certificate before then, or clients using it will be refused.\n\n")
	fmt.Fprintf(&b, "Certificate:  %s\n", c.ID)
	fmt.Fprintf(&b, "Serial:       %s\n", c.Serial)
	fmt.Fprintf(&b, "Organisation: %s\n", c.Org)
	b.WriteString("Identities:\n")
	for _, id := range c.Identities {
		fmt.Fprintf(&b, "  - %s\n", id)
	}
	if d.URL != "" {
		fmt.Fprintf(&b, "\n%s\n", d.URL)
	}
	return s.build(EventCertificateExpiring, d, to, subject, b.String())
}

// shortSerial shortens a serial for a subject line.
func shortSerial(serial string) string {
	if len(serial) > 16 {
		return serial[:16] + "…"
	}
	return serial
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
