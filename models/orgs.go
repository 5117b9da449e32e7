package models

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
)

// DefaultMaxValidityDays is an organisation's maximum certificate validity
// when none is given (90 days by default).
const DefaultMaxValidityDays = 90

// slugRE is what an organisation slug may look like: it appears in URLs and
// SPIFFE paths.
var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

// validateOrg normalises and checks an organisation before it is written.
func validateOrg(o *Organization) error {
	o.Slug = strings.TrimSpace(o.Slug)
	o.Name = strings.TrimSpace(o.Name)
	switch {
	case !slugRE.MatchString(o.Slug):
		return fmt.Errorf("%w: slug must be 1-64 lower-case letters, digits and inner hyphens", ErrInvalid)
	case o.Name == "":
		return fmt.Errorf("%w: name required", ErrInvalid)
	case len(o.Name) > 200:
		return fmt.Errorf("%w: name longer than 200 bytes", ErrInvalid)
	case o.MaxValidityDays < 0:
		return fmt.Errorf("%w: max_validity_days must be positive", ErrInvalid)
	}
	if o.MaxValidityDays == 0 {
		o.MaxValidityDays = DefaultMaxValidityDays
	}
	if o.URIPrefixes == nil {
		o.URIPrefixes = StringList{}
	}
	if o.DNSSuffixes == nil {
		o.DNSSuffixes = StringList{}
	}
	if o.EmailDomains == nil {
		o.EmailDomains = StringList{}
	}
	if o.ContactEmails == nil {
		o.ContactEmails = StringList{}
	}
	return nil
}

// CreateOrg adds an organisation. A taken slug is ErrConflict; a malformed
// one ErrInvalid. MaxValidityDays 0 means the default. Audit "org.create".
func (s *Store) CreateOrg(ctx context.Context, a Actor, o *Organization) error {
	if err := validateOrg(o); err != nil {
		return fmt.Errorf("creating organisation: %w", err)
	}
	now := s.now()
	o.ID, o.CreatedAt, o.UpdatedAt = 0, now, now
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Organization{}).Where("slug = ?", o.Slug).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: slug %q is taken", ErrConflict, o.Slug)
		}
		if err := checkNoOverlap(tx, o); err != nil {
			return err
		}
		if err := tx.Create(o).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, o.Slug, "org", o.Slug, OrgCreateEvent(snapshotOrg(o)))
	})
	if err != nil {
		return fmt.Errorf("creating organisation %s: %w", o.Slug, err)
	}
	return nil
}

// UpdateOrg replaces the editable fields (name, namespace, maximum validity,
// auto-approval of renewals) of the organisation with o.Slug. ErrNotFound if
// there is none. Audit "org.update" with "before" and "after".
func (s *Store) UpdateOrg(ctx context.Context, a Actor, o *Organization) error {
	if err := validateOrg(o); err != nil {
		return fmt.Errorf("updating organisation: %w", err)
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var before Organization
		if err := s.forUpdate(tx).Where("slug = ?", o.Slug).Take(&before).Error; err != nil {
			return dbErr(err)
		}
		after := before
		after.Name = o.Name
		after.URIPrefixes = o.URIPrefixes
		after.DNSSuffixes = o.DNSSuffixes
		after.EmailDomains = o.EmailDomains
		after.MaxValidityDays = o.MaxValidityDays
		after.AutoApproveRenewals = o.AutoApproveRenewals
		after.ContactEmails = o.ContactEmails
		after.ExpiryNoticeDays = o.ExpiryNoticeDays
		after.UpdatedAt = s.now()
		if err := checkNoOverlap(tx, &after); err != nil {
			return err
		}
		err := tx.Model(&Organization{}).Where("id = ?", before.ID).Updates(map[string]any{
			"name":                  after.Name,
			"uri_prefixes":          jsonList(after.URIPrefixes),
			"dns_suffixes":          jsonList(after.DNSSuffixes),
			"email_domains":         jsonList(after.EmailDomains),
			"max_validity_days":     after.MaxValidityDays,
			"auto_approve_renewals": after.AutoApproveRenewals,
			"contact_emails":        jsonList(after.ContactEmails),
			"expiry_notice_days":    jsonInts(after.ExpiryNoticeDays),
			"updated_at":            after.UpdatedAt,
		}).Error
		if err != nil {
			return err
		}
		*o = after
		if err := s.appendAudit(tx, a, o.Slug, "org", o.Slug, OrgUpdateEvent{
			After: snapshotOrg(&after), Before: snapshotOrg(&before),
		}); err != nil {
			return err
		}
		if before.AutoApproveRenewals == after.AutoApproveRenewals {
			return nil
		}
		// Auto-approval lets renewals be signed without a second person at
		// the time: switching it is an event of its own.
		return s.appendAudit(tx, a, o.Slug, "org", o.Slug, OrgAutoApproveRenewalsEvent{
			Enabled: after.AutoApproveRenewals,
		})
	})
	if err != nil {
		return fmt.Errorf("updating organisation %s: %w", o.Slug, err)
	}
	return nil
}

// checkNoOverlap refuses an organisation whose namespace overlaps another's:
// a URI prefix that equals or covers (on a path-segment boundary) another's,
// or is covered by it; a DNS suffix equal to, or a parent or child of,
// another's; an email domain equal to another's. Namespaces never overlap,
// so that no identity can be certified for two organisations. The error
// names the other organisation; only administrators manage organisations.
func checkNoOverlap(tx *gorm.DB, o *Organization) error {
	var others []Organization
	if err := tx.Where("slug <> ?", o.Slug).Order("slug ASC").Find(&others).Error; err != nil {
		return err
	}
	for _, other := range others {
		if why := namespaceOverlap(o, &other); why != "" {
			return fmt.Errorf("%w: the namespace overlaps organisation %s (%s): %s", ErrConflict, other.Slug, other.Name, why)
		}
	}
	return nil
}

// namespaceOverlap says how the namespaces of a and b overlap, or "".
func namespaceOverlap(a, b *Organization) string {
	for _, p := range a.URIPrefixes {
		for _, q := range b.URIPrefixes {
			if uriPrefixesOverlap(p, q) {
				return fmt.Sprintf("URI prefix %q overlaps %q", p, q)
			}
		}
	}
	for _, p := range a.DNSSuffixes {
		for _, q := range b.DNSSuffixes {
			if dnsSuffixesOverlap(p, q) {
				return fmt.Sprintf("DNS suffix %q overlaps %q", p, q)
			}
		}
	}
	for _, p := range a.EmailDomains {
		for _, q := range b.EmailDomains {
			if strings.EqualFold(strings.TrimPrefix(p, "@"), strings.TrimPrefix(q, "@")) {
				return fmt.Sprintf("email domain %q is also %q", p, q)
			}
		}
	}
	return ""
}

// uriPrefixesOverlap reports whether one prefix is the other or a prefix of
// it on a path-segment boundary ("spiffe://td/a" covers "spiffe://td/a/b",
// not "spiffe://td/ab").
func uriPrefixesOverlap(p, q string) bool {
	p, q = strings.TrimRight(p, "/"), strings.TrimRight(q, "/")
	if p == "" || q == "" {
		return false
	}
	return p == q || strings.HasPrefix(q, p+"/") || strings.HasPrefix(p, q+"/")
}

// dnsSuffixesOverlap reports whether one suffix equals the other or is a
// parent domain of it.
func dnsSuffixesOverlap(p, q string) bool {
	p = strings.ToLower(strings.TrimPrefix(p, "."))
	q = strings.ToLower(strings.TrimPrefix(q, "."))
	if p == "" || q == "" {
		return false
	}
	return p == q || strings.HasSuffix(q, "."+p) || strings.HasSuffix(p, "."+q)
}

// GetOrg returns the organisation with this slug, or ErrNotFound.
func (s *Store) GetOrg(ctx context.Context, slug string) (*Organization, error) {
	var o Organization
	if err := s.db.WithContext(ctx).Where("slug = ?", slug).Take(&o).Error; err != nil {
		return nil, fmt.Errorf("reading organisation %s: %w", slug, dbErr(err))
	}
	return &o, nil
}

// Renewed is what a renewal is checked against of the certificate it
// renews.
type Renewed struct {
	ID         string
	Org        string
	State      string
	NotAfter   time.Time
	Identities StringList
}

// GetOrgForRenewal returns the organisation slug and the certificate certID
// that a renewal submitted for it names, in one statement: the certificate
// is nil when there is no such certificate (in any organisation).
func (s *Store) GetOrgForRenewal(ctx context.Context, slug, certID string) (*Organization, *Renewed, error) {
	var (
		o Organization
		c Renewed
	)
	dest := append(o.scanDest(), strCol{&c.ID}, strCol{&c.Org}, strCol{&c.State}, timeCol{&c.NotAfter}, jsonCol[StringList]{&c.Identities})
	if err := s.queryRow(s.onReaders(ctx), orgForRenewal, dest, certID, slug); err != nil {
		return nil, nil, fmt.Errorf("reading organisation %s: %w", slug, dbErr(err))
	}
	if c.ID == "" {
		return &o, nil, nil
	}
	return &o, &c, nil
}

// orgForRenewal reads an organisation and the certificate a renewal names
// (its columns NULL when there is none).
var orgForRenewal = newStmt(`SELECT ` + columnList("o", organizationCols) + `, ` +
	`c.id, c.org, c.state, c.not_after, c.identities ` +
	`FROM organizations o LEFT JOIN certificates c ON c.id = ? WHERE o.slug = ?`)

// ListOrgs returns every organisation, ordered by slug.
func (s *Store) ListOrgs(ctx context.Context) ([]Organization, error) {
	var os []Organization
	if err := s.db.WithContext(ctx).Order("slug ASC").Find(&os).Error; err != nil {
		return nil, fmt.Errorf("listing organisations: %w", err)
	}
	return os, nil
}

// jsonInts is the stored form of an int list ("[]" for none).
func jsonInts(l []int) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}
