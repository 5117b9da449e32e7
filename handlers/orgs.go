package handlers

import (
	"context"
	"net/http"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/notify"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// OrgStore is what the organisation handlers need.
type OrgStore interface {
	CreateOrg(ctx context.Context, a models.Actor, o *models.Organization) error
	UpdateOrg(ctx context.Context, a models.Actor, o *models.Organization) error
	GetOrg(ctx context.Context, slug string) (*models.Organization, error)
	ListOrgs(ctx context.Context) ([]models.Organization, error)
	SetMembership(ctx context.Context, a models.Actor, subject, org string) error
	ListMemberships(ctx context.Context, org string) ([]models.Membership, error)
}

// Orgs serves /api/v1/orgs.
type Orgs struct {
	Store OrgStore
}

type orgBody struct {
	Slug                string   `json:"slug"`
	Name                string   `json:"name"`
	URIPrefixes         []string `json:"uri_prefixes"`
	DNSSuffixes         []string `json:"dns_suffixes"`
	EmailDomains        []string `json:"email_domains"`
	MaxValidityDays     int      `json:"max_validity_days"`
	AutoApproveRenewals bool     `json:"auto_approve_renewals"`
	ContactEmails       []string `json:"contact_emails"`     // receive expiry notices
	ExpiryNoticeDays    []int    `json:"expiry_notice_days"` // empty: the default 30, 14, 7, 1
}

// validNamespace checks that every namespace entry is itself a well-formed
// identity (a prefix of URIs, a DNS name, a domain).
func (b orgBody) validNamespace() error {
	for _, p := range b.URIPrefixes {
		if _, err := signer.ParseIdentities([]string{trimSlash(p) + "/x"}); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "uri_prefixes: "+p+" is not a URI prefix like spiffe://example.org/partners/acme/")
		}
	}
	for _, d := range append(append([]string{}, b.DNSSuffixes...), b.EmailDomains...) {
		if _, err := signer.ParseIdentities([]string{d}); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "dns_suffixes/email_domains: "+d+" is not a domain name")
		}
	}
	for _, e := range b.ContactEmails {
		if _, err := mail.ParseAddress(e); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "contact_emails: "+e+" is not an e-mail address")
		}
	}
	if err := notify.ValidateExpiryDays(b.ExpiryNoticeDays); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "expiry_notice_days: "+err.Error())
	}
	return nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

func (b orgBody) model() *models.Organization {
	return &models.Organization{
		Slug: b.Slug, Name: b.Name, URIPrefixes: b.URIPrefixes, DNSSuffixes: b.DNSSuffixes,
		EmailDomains: b.EmailDomains, MaxValidityDays: b.MaxValidityDays, AutoApproveRenewals: b.AutoApproveRenewals,
		ContactEmails: b.ContactEmails, ExpiryNoticeDays: b.ExpiryNoticeDays,
	}
}

// List is GET /orgs: admins and auditors see all, a partner their own.
func (h *Orgs) List(c echo.Context) error {
	orgs, err := h.Store.ListOrgs(c.Request().Context())
	if err != nil {
		return err
	}
	a := actor(c)
	visible := make([]models.Organization, 0, len(orgs))
	for _, o := range orgs {
		if canSee(a, o.Slug) {
			visible = append(visible, o)
		}
	}
	return c.JSON(http.StatusOK, listOf(visible, ""))
}

// Get is GET /orgs/{slug}.
func (h *Orgs) Get(c echo.Context) error {
	if !canSee(actor(c), c.Param("slug")) {
		return models.ErrNotFound
	}
	o, err := h.Store.GetOrg(c.Request().Context(), c.Param("slug"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

// Create is POST /orgs (admins).
func (h *Orgs) Create(c echo.Context) error {
	var b orgBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if err := b.validNamespace(); err != nil {
		return err
	}
	o := b.model()
	if err := h.Store.CreateOrg(c.Request().Context(), actor(c), o); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, o)
}

// Update is PUT /orgs/{slug} (admins).
func (h *Orgs) Update(c echo.Context) error {
	var b orgBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Slug != "" && b.Slug != c.Param("slug") {
		return echo.NewHTTPError(http.StatusBadRequest, "the slug of an organisation cannot be changed")
	}
	b.Slug = c.Param("slug")
	if err := b.validNamespace(); err != nil {
		return err
	}
	o := b.model()
	if err := h.Store.UpdateOrg(c.Request().Context(), actor(c), o); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

// validSubject checks an OIDC subject given by an admin: 1 to 255 bytes of
// printable UTF-8, no control characters (OpenID Connect Core §2: sub is at
// most 255 ASCII characters), so that it is safe in the audit log and its
// exports.
func validSubject(s string) error {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return echo.NewHTTPError(http.StatusBadRequest, "subject is required: 1 to 255 characters, without leading or trailing spaces")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return echo.NewHTTPError(http.StatusBadRequest, "subject must not contain control characters")
		}
	}
	return nil
}

type memberBody struct {
	Subject string `json:"subject"`
}

// AddMember is POST /orgs/{slug}/members (admins): assigns a user to the
// organisation, for identity providers without an organisation claim.
func (h *Orgs) AddMember(c echo.Context) error {
	var b memberBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if err := validSubject(b.Subject); err != nil {
		return err
	}
	if err := h.Store.SetMembership(c.Request().Context(), actor(c), b.Subject, c.Param("slug")); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"subject": b.Subject, "org": c.Param("slug")})
}

// Members is GET /orgs/{slug}/members (admins).
func (h *Orgs) Members(c echo.Context) error {
	m, err := h.Store.ListMemberships(c.Request().Context(), c.Param("slug"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(m, ""))
}
