package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/acme"
	"github.com/certdesk/certdesk/handlers/est"
	"github.com/certdesk/certdesk/models"
)

// ACMEBindings serves /api/v1/acme/bindings: external account bindings
// for ACME, asked for by a partner, approved by a different admin, whose
// credentials the requester takes once.
type ACMEBindings struct {
	Bindings *acme.Bindings
	// DirectoryURL is the ACME directory, shown with the credentials.
	DirectoryURL string
	// Codes makes one-time EST enrolment codes; EnrollURL is EST's
	// simpleenroll, shown with a code.
	Codes     *est.Codes
	EnrollURL string
}

type bindingBody struct {
	Name         string   `json:"name"`
	DNSNames     []string `json:"dns_names"`
	ExpiresDays  int      `json:"expires_days"`
	ValidityDays int      `json:"validity_days"`
	Org          string   `json:"org"` // admins may ask for an organisation
}

// Create is POST /acme/bindings.
func (h *ACMEBindings) Create(c echo.Context) error {
	var b bindingBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	a := actor(c)
	org := a.Org
	if a.Role == models.RoleAdmin && b.Org != "" {
		org = b.Org
	}
	if org == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "org is required")
	}
	out, err := h.Bindings.Request(c.Request().Context(), a, acme.BindingRequest{
		Org: org, Name: b.Name, DNSNames: b.DNSNames, ExpiresDays: b.ExpiresDays, ValidityDays: b.ValidityDays,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// List is GET /acme/bindings.
func (h *ACMEBindings) List(c echo.Context) error {
	bs, err := h.Bindings.List(c.Request().Context(), actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(bs, ""))
}

// Get is GET /acme/bindings/{id}.
func (h *ACMEBindings) Get(c echo.Context) error {
	b, err := h.Bindings.Get(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

// Approve is POST /acme/bindings/{id}/approve (an admin who did not ask).
func (h *ACMEBindings) Approve(c echo.Context) error {
	b, err := h.Bindings.Approve(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

type bindingCredentials struct {
	*models.ACMEBinding
	*acme.Credentials
	Directory string `json:"directory"`
}

// Credentials is POST /acme/bindings/{id}/credentials: the requester takes
// the EAB key id and HMAC key, once.
func (h *ACMEBindings) Credentials(c echo.Context) error {
	b, cred, err := h.Bindings.TakeKey(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, bindingCredentials{ACMEBinding: b, Credentials: cred, Directory: h.DirectoryURL})
}

// Revoke is DELETE /acme/bindings/{id} and POST /acme/bindings/{id}/revoke.
func (h *ACMEBindings) Revoke(c echo.Context) error {
	b, err := h.Bindings.Revoke(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

type codeBody struct {
	ExpiresHours int `json:"expires_hours"`
}

type enrolmentCode struct {
	*models.ESTCode
	Code     string `json:"code"`
	Username string `json:"username"`
	Enroll   string `json:"simpleenroll"`
}

// ESTCode is POST /acme/bindings/{id}/est-codes: an admin or a partner of
// the binding's organisation makes a one-time EST enrolment code for the
// approved binding, shown once. The body (expires_hours) may be left
// out.
func (h *ACMEBindings) ESTCode(c echo.Context) error {
	var b codeBody
	if c.Request().ContentLength != 0 {
		if err := bindJSON(c, &b); err != nil {
			return err
		}
	}
	code, secret, err := h.Codes.Make(c.Request().Context(), actor(c), c.Param("id"), b.ExpiresHours)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, enrolmentCode{ESTCode: code, Code: secret, Username: est.CodeUser, Enroll: h.EnrollURL})
}
