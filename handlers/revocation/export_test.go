package revocation

import (
	"context"

	"github.com/certdesk/certdesk/models"
)

// GenerateCRL makes the next CRL of the scope name now, as the service
// does, serves it and returns its row (for the scale benchmark).
func (h *Service) GenerateCRL(ctx context.Context, name string) (*models.CRL, error) {
	latest, err := h.loadLatest(ctx, name)
	if err != nil {
		return nil, err
	}
	row, readSeq, err := h.generateCRL(ctx, h.scopes[name], latest)
	if err != nil {
		return nil, err
	}
	h.installRead(name, row, readSeq)
	return row, nil
}
