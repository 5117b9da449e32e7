package est

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// CodeUser is the HTTP basic user name with which a device gives a
// one-time enrolment code (the code is the password).
const CodeUser = "code"

// codeBytes is the entropy of an enrolment code: 24 random bytes, 32
// base64url characters.
const codeBytes = 24

// NewCode returns a fresh one-time enrolment code and the hex SHA-256 that
// the store keeps of it.
func NewCode() (code, hash string, err error) {
	b := make([]byte, codeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	code = base64.RawURLEncoding.EncodeToString(b)
	return code, HashCode(code), nil
}

// HashCode is the hex SHA-256 of a code, as the store keeps it.
func HashCode(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// enrollWithCode spends a one-time enrolment code and issues the CSR under
// its binding. The CSR is checked against the binding's scope first, so a
// CSR outside it leaves the code unspent; an unknown, used or expired code
// is 401.
func (s *Server) enrollWithCode(c echo.Context, code string) error {
	insecureCSR, csrPEM, err := readCSR(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	peeked, b, err := s.Store.PeekESTCode(ctx, HashCode(code))
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return unauthorized(c, "unknown, used or expired enrolment code")
		}
		return err
	}
	names, err := inScope(b, insecureCSR)
	if err != nil {
		return err
	}
	a := models.Actor{Subject: "est-code:" + peeked.ID, Role: models.RolePartner, Org: b.Org, Source: c.RealIP()}
	used, b, err := s.Store.UseESTCode(ctx, a, HashCode(code))
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return unauthorized(c, "unknown, used or expired enrolment code")
		}
		return err
	}
	return s.issueForBinding(c, a, b, csrPEM, names, "with the one-time enrolment code "+used.ID+" made by "+used.CreatedBy)
}

// CodeStore is what making enrolment codes needs of the store.
type CodeStore interface {
	CreateESTCode(ctx context.Context, a models.Actor, c *models.ESTCode) error
}

// Codes makes one-time enrolment codes for approved bindings.
type Codes struct {
	Store CodeStore
	Now   func() time.Time
}

// Lifetimes of an enrolment code, in hours.
const (
	DefaultCodeHours = 24
	MaxCodeHours     = int(models.MaxESTCodeLifetime / time.Hour)
)

// Make makes a code for the binding, usable once for hours (0: a day);
// the code is returned once, only its hash is stored.
func (k *Codes) Make(ctx context.Context, a models.Actor, bindingID string, hours int) (*models.ESTCode, string, error) {
	if hours == 0 {
		hours = DefaultCodeHours
	}
	if hours < 1 || hours > MaxCodeHours {
		return nil, "", &signer.PolicyError{Rule: "code-expiry", Reason: fmt.Sprintf("expires_hours must be between 1 and %d", MaxCodeHours)}
	}
	code, hash, err := NewCode()
	if err != nil {
		return nil, "", err
	}
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	c := &models.ESTCode{BindingID: bindingID, CodeHash: hash, ExpiresAt: now().Add(time.Duration(hours) * time.Hour)}
	if err := k.Store.CreateESTCode(ctx, a, c); err != nil {
		return nil, "", err
	}
	return c, code, nil
}
