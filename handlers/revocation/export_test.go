package revocation

import (
	"context"
	"time"

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

// EnsureCRL makes the next CRL of the scope name if the stored one will not
// do, as a tick of Run does.
func (h *Service) EnsureCRL(ctx context.Context, name string) error {
	return h.ensureCRL(ctx, name, time.Time{})
}

// DeltaOnFull is what the maker of the full CRL does right after it.
func (h *Service) DeltaOnFull(ctx context.Context, full *models.CRL) { h.deltaOnFull(ctx, full) }
