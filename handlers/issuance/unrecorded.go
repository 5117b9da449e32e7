package issuance

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/certdesk/certdesk/models"
)

// unrecorded keeps the certificates the HSM signed whose recording failed
// (the database went away between the signature and the commit), by
// certificate id. They are recorded from here, by a retry in the background
// and, failing that, by recovery once the lease has passed: the HSM never
// signs one serial twice because a database blinked.
type unrecorded struct {
	mu  sync.Mutex
	der map[string][]byte
}

func (u *unrecorded) put(id string, der []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.der == nil {
		u.der = map[string][]byte{}
	}
	u.der[id] = der
}

func (u *unrecorded) get(id string) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	der, ok := u.der[id]
	return der, ok
}

func (u *unrecorded) drop(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.der, id)
}

// recordLater retries recording a signed certificate in the background,
// backing off from 200 ms to 2 s, for at most half the issuance lease that
// sign renewed just before the HSM signed: within it no other replica's
// recovery may claim the certificate. Past it, this replica's recovery
// records the kept certificate when it claims it.
func (w *Workflow) recordLater(a models.Actor, c *models.Certificate, der []byte) {
	ctx := context.Background()
	deadline := time.Now().Add(models.IssuanceLease / 2)
	wait := 200 * time.Millisecond
	for time.Now().Add(wait).Before(deadline) {
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
		r, err := w.Store.CompleteIssuance(ctx, a, c.ID, der)
		if errors.Is(err, models.ErrUnavailable) {
			continue
		}
		if err != nil {
			// Recorded meanwhile (by recovery), or no longer pending.
			w.unrecorded.drop(c.ID)
			return
		}
		w.unrecorded.drop(c.ID)
		w.Log.InfoContext(ctx, "certificate recorded after the database came back", "serial", c.Serial, "request", c.RequestID)
		w.notifyDecided(ctx, r)
		return
	}
	w.Log.WarnContext(ctx, "signed certificate still not recorded; recovery records it once its lease has passed", "serial", c.Serial, "request", c.RequestID)
}
