package issuance

import (
	"crypto/sha256"
	"sync"

	"github.com/certdesk/certdesk/signer"
)

// csrCacheSize bounds the accepted CSRs a workflow remembers; when it is
// full it starts afresh (a forgotten CSR is only checked again).
const csrCacheSize = 4096

// csrKey names a CSR under one CSR policy: the SHA-256 of its upload.
type csrKey struct {
	sum    [sha256.Size]byte
	policy signer.CSRPolicy
}

// csrCache maps CSR uploads to what CSR policy made of them. The policy's
// verdict on an upload depends only on its bytes and the policy, so a hit
// is the verdict that checking it again would give.
type csrCache struct {
	mu       sync.Mutex
	accepted map[csrKey]*signer.AcceptedCSR
}

// checkCSR applies the issuer's CSR policy to csrPEM (parse, self-signature,
// key rules) once per upload; refusals are not remembered.
func (w *Workflow) checkCSR(csrPEM string) (*signer.AcceptedCSR, error) {
	policy := w.Issuer.Profile().CSRPolicy()
	k := csrKey{sum: sha256.Sum256([]byte(csrPEM)), policy: policy}
	w.csrs.mu.Lock()
	acc, ok := w.csrs.accepted[k]
	w.csrs.mu.Unlock()
	if ok {
		return acc, nil
	}
	acc, err := policy.Check([]byte(csrPEM))
	if err != nil {
		return nil, err
	}
	w.csrs.mu.Lock()
	if w.csrs.accepted == nil || len(w.csrs.accepted) >= csrCacheSize {
		w.csrs.accepted = make(map[csrKey]*signer.AcceptedCSR)
	}
	w.csrs.accepted[k] = acc
	w.csrs.mu.Unlock()
	return acc, nil
}
