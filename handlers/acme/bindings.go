package acme

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// hmacKeyLen is the length of a binding's HMAC key (HS256 wants 32 bytes).
const hmacKeyLen = 32

// Sealer seals bindings' HMAC keys for the database with AES-256-GCM under a
// key derived (HKDF-SHA256) from the portal's session key, the binding id as
// additional data. The server must be able to verify the EAB MAC, so the
// key cannot be stored as a hash; sealed, a database reader alone cannot
// forge a binding. Replacing the session key makes every binding's key
// unreadable: such bindings must be asked for again.
type Sealer struct{ aead cipher.AEAD }

// NewSealer derives the sealing key from the session key (at least 32
// bytes).
func NewSealer(sessionKey []byte) (*Sealer, error) {
	if len(sessionKey) < 32 {
		return nil, errors.New("the session key must have at least 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, sessionKey, nil, "certdesk acme eab hmac key v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts key for binding id.
func (s *Sealer) Seal(id string, key []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, key, []byte(id)), nil
}

// Open decrypts binding id's sealed key.
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed key too short")
	}
	key, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("opening the HMAC key of binding %s (was the session key replaced?): %w", id, err)
	}
	return key, nil
}

// BindingStore is what the binding service needs of the store.
type BindingStore interface {
	GetOrg(ctx context.Context, slug string) (*models.Organization, error)
	RequestACMEBinding(ctx context.Context, a models.Actor, b *models.ACMEBinding) error
	GetACMEBinding(ctx context.Context, id string) (*models.ACMEBinding, error)
	ListACMEBindings(ctx context.Context, org string) ([]models.ACMEBinding, error)
	ApproveACMEBinding(ctx context.Context, a models.Actor, id string, sealedKey []byte) (*models.ACMEBinding, error)
	TakeACMEBindingKey(ctx context.Context, a models.Actor, id string) (*models.ACMEBinding, error)
	RevokeACMEBinding(ctx context.Context, a models.Actor, id string) (*models.ACMEBinding, error)
}

// Bindings asks for, approves, hands out and revokes external account
// bindings.
type Bindings struct {
	Store BindingStore
	Keys  *Sealer
	Now   func() time.Time
}

// Limits of a binding.
const (
	MaxBindingDays     = 365
	DefaultBindingDays = 90
	maxBindingNames    = 100
)

// BindingRequest is what a partner asks for.
type BindingRequest struct {
	Org          string
	Name         string
	DNSNames     []string // exact names, or "*.suffix" for every name below suffix
	ExpiresDays  int      // 0: DefaultBindingDays
	ValidityDays int      // 0: the organisation's maximum
}

// Request checks a binding request against the organisation's namespace and
// records it; another admin must approve it.
func (b *Bindings) Request(ctx context.Context, a models.Actor, r BindingRequest) (*models.ACMEBinding, error) {
	org, err := b.Store.GetOrg(ctx, r.Org)
	if err != nil {
		return nil, fmt.Errorf("organisation %q: %w", r.Org, err)
	}
	if len(r.DNSNames) == 0 || len(r.DNSNames) > maxBindingNames {
		return nil, &signer.PolicyError{Rule: "binding-scope", Reason: fmt.Sprintf("a binding lists between 1 and %d DNS names or patterns", maxBindingNames)}
	}
	ns := signer.Namespace{DNSSuffixes: org.DNSSuffixes}
	names := make([]string, 0, len(r.DNSNames))
	for _, insecureName := range r.DNSNames {
		base := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(insecureName)), "*.")
		ids, err := signer.ParseIdentities([]string{base})
		if err != nil {
			return nil, err
		}
		if len(ids.DNSNames) != 1 {
			return nil, &signer.PolicyError{Rule: "binding-scope", Reason: fmt.Sprintf("%q is not a DNS name: ACME identifiers are DNS names", insecureName)}
		}
		if err := ns.Check(ids); err != nil {
			return nil, err
		}
		names = append(names, strings.ToLower(strings.TrimSpace(insecureName)))
	}
	days := r.ExpiresDays
	if days == 0 {
		days = DefaultBindingDays
	}
	if days < 1 || days > MaxBindingDays {
		return nil, &signer.PolicyError{Rule: "binding-expiry", Reason: fmt.Sprintf("expires_days must be between 1 and %d", MaxBindingDays)}
	}
	if r.ValidityDays < 0 || r.ValidityDays > org.MaxValidityDays {
		return nil, &signer.PolicyError{Rule: "validity", Reason: fmt.Sprintf("validity_days must be between 0 (the maximum) and %d for organisation %s", org.MaxValidityDays, org.Slug)}
	}
	if len(r.Name) > 200 {
		return nil, &signer.PolicyError{Rule: "binding-name", Reason: "name is at most 200 characters"}
	}
	out := &models.ACMEBinding{Org: org.Slug, Name: r.Name, DNSNames: names, ValidityDays: r.ValidityDays,
		ExpiresAt: b.now().Add(time.Duration(days) * 24 * time.Hour)}
	if err := b.Store.RequestACMEBinding(ctx, a, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (b *Bindings) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

// Approve approves a binding (not one's own) and makes its HMAC key, which
// only the requester can take, once.
func (b *Bindings) Approve(ctx context.Context, a models.Actor, id string) (*models.ACMEBinding, error) {
	key := make([]byte, hmacKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	sealed, err := b.Keys.Seal(id, key)
	if err != nil {
		return nil, err
	}
	return b.Store.ApproveACMEBinding(ctx, a, id, sealed)
}

// Credentials are a binding's EAB key id and HMAC key (base64url, as
// clients take it).
type Credentials struct {
	KeyID   string `json:"eab_kid"`
	HMACKey string `json:"eab_hmac_key"`
}

// TakeKey hands the approved binding's credentials to its requester, once.
func (b *Bindings) TakeKey(ctx context.Context, a models.Actor, id string) (*models.ACMEBinding, *Credentials, error) {
	bind, err := b.Store.TakeACMEBindingKey(ctx, a, id)
	if err != nil {
		return nil, nil, err
	}
	key, err := b.Keys.Open(bind.ID, bind.HMACKeySealed)
	if err != nil {
		return nil, nil, err
	}
	bind.HMACKeySealed = nil
	return bind, &Credentials{KeyID: bind.ID, HMACKey: base64.RawURLEncoding.EncodeToString(key)}, nil
}

// Revoke revokes a binding: its accounts are refused from now on.
func (b *Bindings) Revoke(ctx context.Context, a models.Actor, id string) (*models.ACMEBinding, error) {
	return b.Store.RevokeACMEBinding(ctx, a, id)
}

// List returns the bindings the actor may see: a partner's organisation's,
// everything for admins and auditors.
func (b *Bindings) List(ctx context.Context, a models.Actor) ([]models.ACMEBinding, error) {
	org := ""
	if a.Role == models.RolePartner {
		if a.Org == "" {
			return []models.ACMEBinding{}, nil
		}
		org = a.Org
	}
	return b.Store.ListACMEBindings(ctx, org)
}

// Get returns one binding the actor may see (ErrNotFound otherwise).
func (b *Bindings) Get(ctx context.Context, a models.Actor, id string) (*models.ACMEBinding, error) {
	bind, err := b.Store.GetACMEBinding(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Role == models.RolePartner && bind.Org != a.Org {
		return nil, fmt.Errorf("ACME binding %s: %w", id, models.ErrNotFound)
	}
	return bind, nil
}
