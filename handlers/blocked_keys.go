package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// BlockedKeyStore is what the blocked-key handlers need.
type BlockedKeyStore interface {
	BlockKey(ctx context.Context, a models.Actor, k *models.BlockedKey) error
	ListBlockedKeys(ctx context.Context) ([]models.BlockedKey, error)
}

// BlockedKeys serves /api/v1/blocked-keys (admins): the public keys that are
// never certified again, in any organisation. Keys revoked for keyCompromise
// are added by the revocation itself; here an admin adds keys reported
// compromised elsewhere.
type BlockedKeys struct {
	Store BlockedKeyStore
}

type blockKeyBody struct {
	// PEM is a CSR, a certificate or a PUBLIC KEY block.
	PEM    string `json:"pem"`
	Reason string `json:"reason"`
}

// Create is POST /blocked-keys: blocks the key of a CSR, certificate or
// public key PEM.
func (h *BlockedKeys) Create(c echo.Context) error {
	var b blockKeyBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.PEM) == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "pem is required: a CSR, a certificate or a public key in PEM")
	}
	if len(b.Reason) > 1000 {
		return echo.NewHTTPError(http.StatusBadRequest, "reason may be at most 1000 characters")
	}
	pub, err := signer.PublicKeyFromPEM([]byte(b.PEM))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "pem: "+err.Error())
	}
	fp, err := signer.KeySHA256(pub)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "pem: "+err.Error())
	}
	k := &models.BlockedKey{KeySHA256: fp, KeyType: signer.KeyTypeName(pub), Reason: strings.TrimSpace(b.Reason)}
	if err := h.Store.BlockKey(c.Request().Context(), actor(c), k); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, k)
}

// List is GET /blocked-keys: every blocked key, newest first.
func (h *BlockedKeys) List(c echo.Context) error {
	ks, err := h.Store.ListBlockedKeys(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(ks, ""))
}
