// Package certauth authenticates a partner's host by its current
// certificate: the one presented over mTLS (or forwarded by a trusted
// gateway), chained to the issuing CA for clientAuth, recorded in the store
// with the same bytes, issued, unexpired and unrevoked.
package certauth

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/certdesk/certdesk/models"
)

// ErrNoCertificate means the request carried no client certificate.
var ErrNoCertificate = errors.New("no client certificate: present your current certificate over mTLS")

// ErrNotCurrent means the certificate is not a current certificate of this
// CA (unknown, revoked, expired, or not chaining for client authentication).
var ErrNotCurrent = errors.New("the client certificate is not a current certificate of this CA")

type peerKey struct{}

// WithPeer returns ctx carrying the client certificate of the request
// (not yet verified).
func WithPeer(ctx context.Context, cert *x509.Certificate) context.Context {
	return context.WithValue(ctx, peerKey{}, cert)
}

// Peer is the client certificate the web layer put into ctx, or nil.
func Peer(ctx context.Context) *x509.Certificate {
	c, _ := ctx.Value(peerKey{}).(*x509.Certificate)
	return c
}

// Store is what the verifier needs of the store.
type Store interface {
	GetCertificateBySerial(ctx context.Context, serialHex string) (*models.Certificate, error)
}

// Verifier checks that a client certificate is current.
type Verifier struct {
	Store         Store
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	Now           func() time.Time
}

// NewVerifier trusts the CA's root and issuing certificate.
func NewVerifier(store Store, root, issuing *x509.Certificate) *Verifier {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(issuing)
	return &Verifier{Store: store, Roots: roots, Intermediates: inter, Now: time.Now}
}

// Current returns the stored certificate of the request's client
// certificate if it is current; ErrNoCertificate or ErrNotCurrent (with the
// reason) otherwise.
func (v *Verifier) Current(ctx context.Context) (*models.Certificate, error) {
	insecureCert := Peer(ctx)
	if insecureCert == nil {
		return nil, ErrNoCertificate
	}
	now := v.Now()
	if _, err := insecureCert.Verify(x509.VerifyOptions{Roots: v.Roots, Intermediates: v.Intermediates, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCurrent, err)
	}
	c, err := v.Store.GetCertificateBySerial(ctx, insecureCert.SerialNumber.Text(16))
	switch {
	case err != nil || !bytes.Equal(c.DER, insecureCert.Raw):
		return nil, fmt.Errorf("%w: this CA has no record of it", ErrNotCurrent)
	case c.State == models.CertRevoked:
		return nil, fmt.Errorf("%w: it is revoked", ErrNotCurrent)
	case c.State != models.CertIssued || !now.Before(c.NotAfter):
		return nil, fmt.Errorf("%w: it is %s", ErrNotCurrent, models.CertState(c, now))
	}
	return c, nil
}

// InRenewalWindow reports whether c is in the last third of its life at
// now, when a host may renew it with itself, and when the window opens.
func InRenewalWindow(c *models.Certificate, now time.Time) (bool, time.Time) {
	opens := c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
	return !now.Before(opens), opens
}
