package handlers

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
)

// RequestStore is what the request handlers read.
type RequestStore interface {
	GetOrg(ctx context.Context, slug string) (*models.Organization, error)
	GetRequest(ctx context.Context, id string) (*models.Request, error)
	ListRequests(ctx context.Context, f models.RequestFilter) ([]models.Request, string, error)
	CancelRequest(ctx context.Context, a models.Actor, id string) (*models.Request, error)
	ListAudit(ctx context.Context, f models.AuditFilter) ([]models.AuditEvent, string, error)
	RequestIssuance(ctx context.Context, r *models.Request) (string, error)
}

// requestAnswer is a request with where its issuance stands: "pending"
// (approved, the certificate waits for the HSM) or "failed" (an admin may
// retry), omitted otherwise; and, on GET of one submitted request, policy's
// current verdict on it.
type requestAnswer struct {
	*models.Request
	Issuance string            `json:"issuance,omitempty"`
	Policy   *issuance.Verdict `json:"policy,omitempty"`
}

// withIssuance adds the issuance state to an approved request.
func (h *Requests) withIssuance(c echo.Context, r *models.Request) (requestAnswer, error) {
	st, err := h.Store.RequestIssuance(c.Request().Context(), r)
	return requestAnswer{Request: r, Issuance: st}, err
}

// RequestWorkflow is what the request handlers need of the issuance
// workflow.
type RequestWorkflow interface {
	Submit(ctx context.Context, a models.Actor, s issuance.Submission) (*models.Request, error)
	Preview(org *models.Organization, csrPEM string, requested []string, validityDays int) (*issuance.Preview, error)
	Approve(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error)
	Reject(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error)
	Verdict(ctx context.Context, r *models.Request) (*issuance.Verdict, error)
	Retry(ctx context.Context, a models.Actor, id string) (*models.Request, error)
}

// Requests serves /api/v1/requests.
type Requests struct {
	Store    RequestStore
	Workflow RequestWorkflow
}

type submitBody struct {
	CSR          string   `json:"csr"`
	Identities   []string `json:"identities"`
	ValidityDays int      `json:"validity_days"`
	Note         string   `json:"note"`
	RenewalOf    string   `json:"renewal_of"`
	Org          string   `json:"org"` // admins may submit for an organisation
}

// submitOrg is the organisation a request is for: a partner's own; for an
// admin, who belongs to none, the one named in the body.
func submitOrg(a models.Actor, requested string) (string, error) {
	org := a.Org
	if a.Role == models.RoleAdmin && requested != "" {
		org = requested
	}
	if org != "" {
		return org, nil
	}
	if a.Role == models.RoleAdmin {
		return "", echo.NewHTTPError(http.StatusBadRequest, `org is required: an admin belongs to no organisation, so choose the organisation the certificate is for (the field "org", an organisation's slug; GET /api/v1/orgs lists them)`)
	}
	return "", echo.NewHTTPError(http.StatusBadRequest, "org is required: you belong to no organisation; ask a certdesk administrator to assign you to yours")
}

// Create is POST /requests: a partner submits a CSR; policy problems are
// answered now, with the rule and the reason.
func (h *Requests) Create(c echo.Context) error {
	var b submitBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	a := actor(c)
	org, err := submitOrg(a, b.Org)
	if err != nil {
		return err
	}
	if len(b.Note) > 2000 {
		return echo.NewHTTPError(http.StatusBadRequest, "note is limited to 2000 characters")
	}
	r, err := h.Workflow.Submit(c.Request().Context(), a, issuance.Submission{
		Org: org, CSRPEM: b.CSR, Identities: b.Identities, ValidityDays: b.ValidityDays, Note: b.Note, RenewalOf: b.RenewalOf,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

// Preview is POST /requests/preview: the server's policy verdict on a CSR
// and identities without submitting anything.
func (h *Requests) Preview(c echo.Context) error {
	var b submitBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	slug, err := submitOrg(actor(c), b.Org)
	if err != nil {
		return err
	}
	org, err := h.Store.GetOrg(c.Request().Context(), slug)
	if err != nil {
		return err
	}
	p, err := h.Workflow.Preview(org, b.CSR, b.Identities, b.ValidityDays)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// List is GET /requests with filters state, org, requested_by.
func (h *Requests) List(c echo.Context) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	a := actor(c)
	items, next, err := h.Store.ListRequests(c.Request().Context(), models.RequestFilter{
		Org: scopeOrg(a, c.QueryParam("org")), State: c.QueryParam("state"), RequestedBy: c.QueryParam("requested_by"),
		Cursor: cursor, Limit: limit,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next))
}

// load fetches a request the caller may see, else 404.
func (h *Requests) load(c echo.Context) (*models.Request, error) {
	r, err := h.Store.GetRequest(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, err
	}
	if !canSee(actor(c), r.Org) {
		return nil, models.ErrNotFound
	}
	return r, nil
}

// Get is GET /requests/{id}.
func (h *Requests) Get(c echo.Context) error {
	r, err := h.load(c)
	if err != nil {
		return err
	}
	ans, err := h.withIssuance(c, r)
	if err != nil {
		return err
	}
	if r.State == models.StateSubmitted {
		if ans.Policy, err = h.Workflow.Verdict(c.Request().Context(), r); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, ans)
}

// Events is GET /requests/{id}/events: the request's history.
func (h *Requests) Events(c echo.Context) error {
	r, err := h.load(c)
	if err != nil {
		return err
	}
	events, _, err := h.Store.ListAudit(c.Request().Context(), models.AuditFilter{ObjectID: r.ID, Limit: 500})
	if err != nil {
		return err
	}
	if r.CertificateID != nil {
		more, _, err := h.Store.ListAudit(c.Request().Context(), models.AuditFilter{ObjectID: *r.CertificateID, Limit: 500})
		if err != nil {
			return err
		}
		events = append(events, more...)
	}
	// Oldest first, in chain order: the request's history reads top down.
	slices.SortFunc(events, func(a, b models.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	return c.JSON(http.StatusOK, listOf(events, ""))
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// Approve is POST /requests/{id}/approve (admins): approves and issues.
func (h *Requests) Approve(c echo.Context) error {
	var b reasonBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	r, err := h.Workflow.Approve(c.Request().Context(), actor(c), c.Param("id"), b.Reason)
	return h.issued(c, r, err)
}

// Retry is POST /requests/{id}/retry (admins): issues again an approved
// request whose issuance failed.
func (h *Requests) Retry(c echo.Context) error {
	r, err := h.Workflow.Retry(c.Request().Context(), actor(c), c.Param("id"))
	return h.issued(c, r, err)
}

// issued answers an approval or retry: 200 with the issued request, or, when
// the HSM did not sign, 202 with the approved request, whose recorded
// certificate recovery issues once the HSM is back; approving again would
// only answer 409.
func (h *Requests) issued(c echo.Context, r *models.Request, err error) error {
	if errors.Is(err, issuance.ErrHSMPending) {
		pending, gerr := h.Store.GetRequest(c.Request().Context(), c.Param("id"))
		if gerr != nil {
			return err
		}
		ans, ierr := h.withIssuance(c, pending)
		if ierr != nil {
			return err
		}
		c.Response().Header().Set("Retry-After", "10")
		return c.JSON(http.StatusAccepted, ans)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// Reject is POST /requests/{id}/reject (admins); a reason is required.
func (h *Requests) Reject(c echo.Context) error {
	var b reasonBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Reason == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "a reason is required to reject a request")
	}
	r, err := h.Workflow.Reject(c.Request().Context(), actor(c), c.Param("id"), b.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// Cancel is POST /requests/{id}/cancel: the organisation withdraws its
// submitted request.
func (h *Requests) Cancel(c echo.Context) error {
	r, err := h.load(c)
	if err != nil {
		return err
	}
	if !canActFor(actor(c), r.Org) {
		return models.ErrNotFound
	}
	r, err = h.Store.CancelRequest(c.Request().Context(), actor(c), r.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
