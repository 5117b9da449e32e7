package handlers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// TokenStore is what the token handlers need.
type TokenStore interface {
	CreateToken(ctx context.Context, a models.Actor, t *models.APIToken) error
	ListTokens(ctx context.Context, subject string) ([]models.APIToken, error)
	ListAllTokens(ctx context.Context) ([]models.APIToken, error)
	RevokeToken(ctx context.Context, a models.Actor, id string) error
}

// Tokens serves /api/v1/tokens: a signed-in user's own API tokens, and for
// admins everyone's. A token made while authenticated with a token records
// it as its parent: the store caps its expiry at the parent's and it stops
// working when the parent is revoked or expires.
type Tokens struct {
	Store TokenStore
	// NewToken returns a fresh token and the hash that is stored.
	NewToken func() (token, hash string)
	Now      func() time.Time
}

type tokenBody struct {
	Name    string `json:"name"`
	TTLDays int    `json:"ttl_days"`
}

type createdToken struct {
	models.APIToken
	Token string `json:"token"`
}

// Create is POST /tokens: the token is in this answer and nowhere else.
func (h *Tokens) Create(c echo.Context) error {
	var b tokenBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Name == "" || len(b.Name) > 200 {
		return echo.NewHTTPError(http.StatusBadRequest, "name is required (at most 200 characters)")
	}
	if b.TTLDays == 0 {
		b.TTLDays = 90
	}
	if b.TTLDays < 1 || b.TTLDays > models.MaxTokenLifetimeDays {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("ttl_days must be between 1 and %d", models.MaxTokenLifetimeDays))
	}
	a := actor(c)
	if a.Role == "" || a.Subject == "" {
		return echo.NewHTTPError(http.StatusForbidden, "no role")
	}
	token, hash := h.NewToken()
	t := &models.APIToken{
		Name: b.Name, Subject: a.Subject, Role: a.Role, Org: a.Org, Hash: hash,
		ExpiresAt: h.Now().Add(time.Duration(b.TTLDays) * 24 * time.Hour),
	}
	if a.TokenID != "" {
		parent := a.TokenID
		t.ParentID = &parent
	}
	if err := h.Store.CreateToken(c.Request().Context(), a, t); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, createdToken{APIToken: *t, Token: token})
}

// List is GET /tokens: the caller's tokens, never their values; with
// ?all=true an admin gets every subject's tokens.
func (h *Tokens) List(c echo.Context) error {
	a := actor(c)
	var ts []models.APIToken
	var err error
	switch all := c.QueryParam("all"); {
	case all == "true" && a.Role == models.RoleAdmin:
		ts, err = h.Store.ListAllTokens(c.Request().Context())
	case all == "true":
		return echo.NewHTTPError(http.StatusForbidden, "only admins may list every token")
	case all != "" && all != "false":
		return echo.NewHTTPError(http.StatusBadRequest, "all must be true or false")
	default:
		ts, err = h.Store.ListTokens(c.Request().Context(), a.Subject)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(ts, ""))
}

// Delete is DELETE /tokens/{id}: revokes one of the caller's tokens, or for
// an admin anyone's; tokens made with it stop working too.
func (h *Tokens) Delete(c echo.Context) error {
	if err := h.Store.RevokeToken(c.Request().Context(), actor(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
