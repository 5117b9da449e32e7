package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// UserStore is what the user, membership and invitation handlers need.
type UserStore interface {
	ListUsers(ctx context.Context, f models.UserFilter) ([]models.UserEntry, error)
	RemoveMembership(ctx context.Context, a models.Actor, org, subject string) error
	CreateInvitation(ctx context.Context, a models.Actor, org, email string) (*models.Invitation, error)
	ListInvitations(ctx context.Context, org string) ([]models.Invitation, error)
	RevokeInvitation(ctx context.Context, a models.Actor, org, id string) error
	GetOrg(ctx context.Context, slug string) (*models.Organization, error)
}

// Users serves /api/v1/users, the removal of memberships and the
// invitations of /api/v1/orgs/{slug}/invitations (admins).
type Users struct {
	Store UserStore
}

// List is GET /users[?unassigned=true]: the users who signed in, most
// recently seen first; unassigned keeps those who need an organisation and
// have none.
func (h *Users) List(c echo.Context) error {
	var f models.UserFilter
	if v := c.QueryParam("unassigned"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "unassigned must be true or false")
		}
		f.Unassigned = b
	}
	users, err := h.Store.ListUsers(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(users, ""))
}

// RemoveMember is DELETE /orgs/{slug}/members/{subject}: the user leaves
// the organisation, and their sessions and tokens for it end.
func (h *Users) RemoveMember(c echo.Context) error {
	subject, err := pathSubject(c)
	if err != nil {
		return err
	}
	if err := h.Store.RemoveMembership(c.Request().Context(), actor(c), c.Param("slug"), subject); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// pathSubject reads the {subject} path parameter, which clients send
// percent-encoded (subjects may hold '/'). echo routes on the raw path when
// the request has one, and then leaves the parameter encoded.
func pathSubject(c echo.Context) (string, error) {
	subject := c.Param("subject")
	if c.Request().URL.RawPath != "" {
		s, err := url.PathUnescape(subject)
		if err != nil {
			return "", echo.NewHTTPError(http.StatusBadRequest, "subject: not a valid percent-encoded path segment")
		}
		subject = s
	}
	if err := validSubject(subject); err != nil {
		return "", err
	}
	return subject, nil
}

type invitationBody struct {
	Email string `json:"email"`
}

// Invite is POST /orgs/{slug}/invitations: invites an e-mail address to
// the organisation for models.InvitationLifetime.
func (h *Users) Invite(c echo.Context) error {
	var b invitationBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if _, err := models.NormalizeEmail(b.Email); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "email: "+strconv.Quote(b.Email)+" is not an e-mail address (write it as name@example.org)")
	}
	inv, err := h.Store.CreateInvitation(c.Request().Context(), actor(c), c.Param("slug"), b.Email)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, inv)
}

// Invitations is GET /orgs/{slug}/invitations, newest first, each with its
// state (pending, accepted, expired).
func (h *Users) Invitations(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := h.Store.GetOrg(ctx, c.Param("slug")); err != nil {
		return err
	}
	invs, err := h.Store.ListInvitations(ctx, c.Param("slug"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(invs, ""))
}

// RevokeInvitation is DELETE /orgs/{slug}/invitations/{id}.
func (h *Users) RevokeInvitation(c echo.Context) error {
	if err := h.Store.RevokeInvitation(c.Request().Context(), actor(c), c.Param("slug"), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
