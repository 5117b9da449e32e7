package issuance

import (
	"context"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer/crlreason"
)

// Publisher is told of every revocation, after it is recorded, so that the
// CRL and the OCSP answers follow it (handlers/revocation). nil is fine.
type Publisher interface {
	Revoked(c *models.Certificate)
}

// RevocationObserver counts revocations (metrics); nil is fine.
type RevocationObserver interface {
	Revoked(org, reason string)
}

// Revoke records the revocation of certificate id with an RFC 5280 reason
// code (one transaction with its audit event), then tells the observer and
// the publisher. Revoking twice is models.ErrConflict and changes nothing.
// Who may use which reason is the caller's check.
func (w *Workflow) Revoke(ctx context.Context, a models.Actor, id string, reason int) (*models.Certificate, error) {
	c, err := w.Store.RevokeCertificate(ctx, a, id, reason)
	if err != nil {
		return nil, err
	}
	if w.RevocationObserver != nil && c.RevocationReason != nil {
		w.RevocationObserver.Revoked(c.Org, crlreason.Name(*c.RevocationReason))
	}
	if w.Publisher != nil {
		w.Publisher.Revoked(c)
	}
	return c, nil
}
