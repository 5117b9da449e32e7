package models

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Channels a request can come through besides the portal (Request.Via).
const (
	ViaACME  = "acme"
	ViaEST   = "est"
	ViaRenew = "renew"
)

// ACME binding states.
const (
	BindingRequested = "requested"
	BindingApproved  = "approved"
	BindingRevoked   = "revoked"
)

// ACME account, order statuses (RFC 8555 §7.1.6).
const (
	ACMEValid       = "valid"
	ACMEDeactivated = "deactivated"
	ACMEReady       = "ready"
	ACMEProcessing  = "processing"
	ACMEInvalid     = "invalid"
)

// ACMEBinding is an external account binding (RFC 8555 §7.3.4): a partner
// asked for it, another admin approved it, and orders of the accounts bound
// to it are pre-authorised for the DNS names it lists. A name "*.x.example"
// covers every name below x.example; any other entry is one exact name.
type ACMEBinding struct {
	ID            string     `gorm:"primaryKey;size:36" json:"id"` // also the EAB key id
	Org           string     `gorm:"index;size:64;not null" json:"org"`
	Name          string     `gorm:"size:200" json:"name"`
	DNSNames      StringList `gorm:"type:text;serializer:json" json:"dns_names"`
	ValidityDays  int        `gorm:"not null" json:"validity_days"` // 0: the organisation's maximum
	State         string     `gorm:"size:16;not null" json:"state"`
	RequestedBy   string     `gorm:"size:255;not null" json:"requested_by"`
	ApprovedBy    string     `gorm:"size:255" json:"approved_by,omitempty"`
	ApprovedAt    *time.Time `json:"approved_at,omitempty"`
	RevokedBy     string     `gorm:"size:255" json:"revoked_by,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	HMACKeySealed []byte     `json:"-"`
	KeyShownAt    *time.Time `json:"key_shown_at,omitempty"`
	ExpiresAt     time.Time  `json:"expires_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Usable reports whether accounts of the binding may act at now: approved,
// not revoked, not expired.
func (b *ACMEBinding) Usable(now time.Time) bool {
	return b.State == BindingApproved && now.Before(b.ExpiresAt)
}

// Covers reports whether the binding's scope includes the DNS name.
func (b *ACMEBinding) Covers(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, p := range b.DNSNames {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(name, "."+suffix) {
				return true
			}
			continue
		}
		if name == p {
			return true
		}
	}
	return false
}

// ACMEAccount is an ACME account, bound to one binding. Thumbprint is the
// base64url RFC 7638 SHA-256 thumbprint of its current key.
type ACMEAccount struct {
	ID         string     `gorm:"primaryKey;size:36" json:"id"`
	BindingID  string     `gorm:"index;size:36;not null" json:"binding_id"`
	Org        string     `gorm:"size:64;not null" json:"org"`
	Thumbprint string     `gorm:"uniqueIndex;size:64;not null" json:"thumbprint"`
	JWK        string     `gorm:"type:text;not null" json:"-"`
	Status     string     `gorm:"size:16;not null" json:"status"`
	Contact    StringList `gorm:"type:text;serializer:json" json:"contact"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// ACMEOrder is an ACME order. Its authorizations are derived from
// Identifiers (one per name, valid from the start: the binding
// pre-authorised them).
type ACMEOrder struct {
	ID            string     `gorm:"primaryKey;size:36"`
	AccountID     string     `gorm:"index;size:36;not null"`
	BindingID     string     `gorm:"size:36;not null"`
	Org           string     `gorm:"size:64;not null"`
	Status        string     `gorm:"size:16;not null"`
	Identifiers   StringList `gorm:"type:text;serializer:json"`
	Replaces      string     `gorm:"size:255"`
	RequestID     *string    `gorm:"size:36"`
	CertificateID *string    `gorm:"size:36"`
	Error         string     `gorm:"type:text"`
	Expires       time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName is the table of ACMEBinding.
func (ACMEBinding) TableName() string { return "acme_bindings" }

// TableName is the table of ACMEAccount.
func (ACMEAccount) TableName() string { return "acme_accounts" }

// TableName is the table of ACMEOrder.
func (ACMEOrder) TableName() string { return "acme_orders" }

// TableName is the table of ACMENonce.
func (ACMENonce) TableName() string { return "acme_nonces" }

// ACMENonce is an unused replay nonce (RFC 8555 §6.5).
type ACMENonce struct {
	Value     string `gorm:"primaryKey;size:64"`
	ExpiresAt time.Time
}

// Audit actions of the automation channels.
const (
	ActionACMEBindingRequest    = "acme_binding.request"
	ActionACMEBindingApprove    = "acme_binding.approve"
	ActionACMEBindingKeyShown   = "acme_binding.key_shown"
	ActionACMEBindingRevoke     = "acme_binding.revoke"
	ActionACMEAccountCreate     = "acme_account.create"
	ActionACMEAccountKeyChange  = "acme_account.key_change"
	ActionACMEAccountDeactivate = "acme_account.deactivate"
	ActionACMEOrderCreate       = "acme_order.create"
	ActionRequestPreauthorized  = "request.preauthorized"
)

// ACMEBindingRequestEvent records a binding asked for.
type ACMEBindingRequestEvent struct {
	DNSNames     StringList `json:"dns_names"`
	ExpiresAt    string     `json:"expires_at"`
	Name         string     `json:"name"`
	ValidityDays int        `json:"validity_days"`
}

// Action is ActionACMEBindingRequest.
func (ACMEBindingRequestEvent) Action() string { return ActionACMEBindingRequest }

// ACMEBindingChange is the detail of a binding's approval, key hand-out
// and revocation.
type ACMEBindingChange struct {
	DNSNames    StringList `json:"dns_names"`
	From        string     `json:"from"`
	Name        string     `json:"name"`
	RequestedBy string     `json:"requested_by"`
	To          string     `json:"to"`
}

// ACMEBindingApproveEvent records a binding approved by a second person.
type ACMEBindingApproveEvent struct{ ACMEBindingChange }

// Action is ActionACMEBindingApprove.
func (ACMEBindingApproveEvent) Action() string { return ActionACMEBindingApprove }

// ACMEBindingKeyShownEvent records the binding's key handed to its
// requester (never the key itself).
type ACMEBindingKeyShownEvent struct{ ACMEBindingChange }

// Action is ActionACMEBindingKeyShown.
func (ACMEBindingKeyShownEvent) Action() string { return ActionACMEBindingKeyShown }

// ACMEBindingRevokeEvent records a binding revoked.
type ACMEBindingRevokeEvent struct{ ACMEBindingChange }

// Action is ActionACMEBindingRevoke.
func (ACMEBindingRevokeEvent) Action() string { return ActionACMEBindingRevoke }

// ACMEAccountCreateEvent records an account bound to a binding.
type ACMEAccountCreateEvent struct {
	Binding    string `json:"binding"`
	Thumbprint string `json:"thumbprint"`
}

// Action is ActionACMEAccountCreate.
func (ACMEAccountCreateEvent) Action() string { return ActionACMEAccountCreate }

// ACMEAccountKeyChangeEvent records a key rollover.
type ACMEAccountKeyChangeEvent struct {
	Binding       string `json:"binding"`
	OldThumbprint string `json:"old_thumbprint"`
	Thumbprint    string `json:"thumbprint"`
}

// Action is ActionACMEAccountKeyChange.
func (ACMEAccountKeyChangeEvent) Action() string { return ActionACMEAccountKeyChange }

// ACMEAccountDeactivateEvent records an account deactivated.
type ACMEAccountDeactivateEvent struct {
	Binding string `json:"binding"`
}

// Action is ActionACMEAccountDeactivate.
func (ACMEAccountDeactivateEvent) Action() string { return ActionACMEAccountDeactivate }

// ACMEOrderCreateEvent records an order, pre-authorised by its binding.
type ACMEOrderCreateEvent struct {
	Account     string     `json:"account"`
	Binding     string     `json:"binding"`
	Identifiers StringList `json:"identifiers"`
	Replaces    string     `json:"replaces,omitempty"`
}

// Action is ActionACMEOrderCreate.
func (ACMEOrderCreateEvent) Action() string { return ActionACMEOrderCreate }

// ACMEOrderMoveEvent records an order's move to another status; its action
// is "acme_order.<to>" (processing, valid, invalid).
type ACMEOrderMoveEvent struct {
	Account     string `json:"account"`
	Binding     string `json:"binding"`
	Certificate string `json:"certificate,omitempty"`
	Error       string `json:"error,omitempty"`
	From        string `json:"from"`
	Request     string `json:"request,omitempty"`
	To          string `json:"to"`
}

// Action is "acme_order." and the status moved to.
func (e ACMEOrderMoveEvent) Action() string { return "acme_order." + e.To }

// RequestPreauthorizedEvent records a request approved by an authorisation
// given beforehand (an ACME binding's approver).
type RequestPreauthorizedEvent struct {
	From   string `json:"from"`
	Reason string `json:"reason"`
	To     string `json:"to"`
	Via    string `json:"via"`
	ViaRef string `json:"via_ref"`
}

// Action is ActionRequestPreauthorized.
func (RequestPreauthorizedEvent) Action() string { return ActionRequestPreauthorized }

// RequestACMEBinding stores a binding in state requested. Org, at least one
// DNS name and an expiry in the future are required; RequestedBy is the
// actor. Audit "acme_binding.request".
func (s *Store) RequestACMEBinding(ctx context.Context, a Actor, b *ACMEBinding) error {
	now := s.now()
	switch {
	case strings.TrimSpace(b.Org) == "":
		return fmt.Errorf("requesting ACME binding: %w: organisation required", ErrInvalid)
	case len(b.DNSNames) == 0:
		return fmt.Errorf("requesting ACME binding: %w: at least one DNS name or pattern required", ErrInvalid)
	case !b.ExpiresAt.After(now):
		return fmt.Errorf("requesting ACME binding: %w: expiry must be in the future", ErrInvalid)
	case b.ValidityDays < 0:
		return fmt.Errorf("requesting ACME binding: %w: validity_days must not be negative", ErrInvalid)
	}
	b.ID = uuid.NewString()
	b.State = BindingRequested
	b.RequestedBy = a.Subject
	b.ApprovedBy, b.ApprovedAt, b.RevokedBy, b.RevokedAt, b.HMACKeySealed, b.KeyShownAt = "", nil, "", nil, nil, nil
	b.ExpiresAt = normTime(b.ExpiresAt)
	b.CreatedAt, b.UpdatedAt = now, now
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var org Organization
		if err := tx.Where("slug = ?", b.Org).Take(&org).Error; err != nil {
			if errIsNotFound(err) {
				return fmt.Errorf("%w: unknown organisation %q", ErrInvalid, b.Org)
			}
			return err
		}
		if err := tx.Create(b).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, b.Org, "acme_binding", b.ID, ACMEBindingRequestEvent{
			Name: b.Name, DNSNames: b.DNSNames, ValidityDays: b.ValidityDays, ExpiresAt: b.ExpiresAt.Format(time.RFC3339),
		})
	})
	if err != nil {
		return fmt.Errorf("requesting ACME binding: %w", err)
	}
	return nil
}

// GetACMEBinding returns the binding with this id, or ErrNotFound.
func (s *Store) GetACMEBinding(ctx context.Context, id string) (*ACMEBinding, error) {
	var b ACMEBinding
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&b).Error; err != nil {
		return nil, fmt.Errorf("reading ACME binding %s: %w", id, dbErr(err))
	}
	return &b, nil
}

// ListACMEBindings returns the bindings of an organisation ("" for all),
// newest first.
func (s *Store) ListACMEBindings(ctx context.Context, org string) ([]ACMEBinding, error) {
	q := s.db.WithContext(ctx).Model(&ACMEBinding{})
	if org != "" {
		q = q.Where("org = ?", org)
	}
	var bs []ACMEBinding
	if err := q.Order("created_at DESC, id DESC").Find(&bs).Error; err != nil {
		return nil, fmt.Errorf("listing ACME bindings: %w", err)
	}
	return bs, nil
}

// bindingTransition changes a binding in one transaction with its audit
// event; check sees the row first and may refuse.
func (s *Store) bindingTransition(ctx context.Context, a Actor, id, verb string, event func(ACMEBindingChange) Event, check func(b *ACMEBinding) error, set map[string]any) (*ACMEBinding, error) {
	var out ACMEBinding
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var b ACMEBinding
		if err := s.forUpdate(tx).Where("id = ?", id).Take(&b).Error; err != nil {
			return dbErr(err)
		}
		if err := check(&b); err != nil {
			return err
		}
		set["updated_at"] = s.now()
		res := tx.Model(&ACMEBinding{}).Where("id = ? AND state = ?", id, b.State).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: binding changed meanwhile", ErrConflict)
		}
		if err := tx.Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		return s.appendAudit(tx, a, b.Org, "acme_binding", id, event(ACMEBindingChange{
			Name: b.Name, DNSNames: b.DNSNames, RequestedBy: b.RequestedBy, From: b.State, To: out.State,
		}))
	})
	if err != nil {
		return nil, fmt.Errorf("%s ACME binding %s: %w", verb, id, err)
	}
	return &out, nil
}

// ApproveACMEBinding approves a requested binding and stores its sealed
// HMAC key. Nobody approves a binding they asked for (ErrForbidden).
// Audit "acme_binding.approve".
func (s *Store) ApproveACMEBinding(ctx context.Context, a Actor, id string, sealedKey []byte) (*ACMEBinding, error) {
	now := s.now()
	return s.bindingTransition(ctx, a, id, "approving", func(c ACMEBindingChange) Event { return ACMEBindingApproveEvent{c} }, func(b *ACMEBinding) error {
		switch {
		case b.RequestedBy == a.Subject:
			return fmt.Errorf("%w: nobody approves the binding they asked for", ErrForbidden)
		case b.State != BindingRequested:
			return fmt.Errorf("%w: binding is %s, not %s", ErrConflict, b.State, BindingRequested)
		case !now.Before(b.ExpiresAt):
			return fmt.Errorf("%w: binding expired before approval", ErrConflict)
		}
		return nil
	}, map[string]any{"state": BindingApproved, "approved_by": a.Subject, "approved_at": now, "hmac_key_sealed": sealedKey})
}

// TakeACMEBindingKey returns the approved binding with its sealed key,
// once, to the person who asked for it; later calls are ErrConflict and
// anyone else gets ErrNotFound. Audit "acme_binding.key_shown".
func (s *Store) TakeACMEBindingKey(ctx context.Context, a Actor, id string) (*ACMEBinding, error) {
	var sealed []byte
	b, err := s.bindingTransition(ctx, a, id, "handing out the key of", func(c ACMEBindingChange) Event { return ACMEBindingKeyShownEvent{c} }, func(b *ACMEBinding) error {
		switch {
		case b.RequestedBy != a.Subject:
			return ErrNotFound
		case b.State != BindingApproved:
			return fmt.Errorf("%w: binding is %s; its key is handed out once it is approved", ErrConflict, b.State)
		case b.KeyShownAt != nil:
			return fmt.Errorf("%w: the key of this binding was already shown; ask for a new binding", ErrConflict)
		}
		sealed = b.HMACKeySealed
		return nil
	}, map[string]any{"key_shown_at": s.now()})
	if err != nil {
		return nil, err
	}
	b.HMACKeySealed = sealed
	return b, nil
}

// RevokeACMEBinding revokes a binding: its accounts can do nothing more.
// A partner may revoke their organisation's bindings, an admin any.
// Audit "acme_binding.revoke".
func (s *Store) RevokeACMEBinding(ctx context.Context, a Actor, id string) (*ACMEBinding, error) {
	now := s.now()
	return s.bindingTransition(ctx, a, id, "revoking", func(c ACMEBindingChange) Event { return ACMEBindingRevokeEvent{c} }, func(b *ACMEBinding) error {
		if a.Role != RoleAdmin && b.Org != a.Org {
			return ErrNotFound
		}
		if b.State == BindingRevoked {
			return fmt.Errorf("%w: binding already revoked", ErrConflict)
		}
		return nil
	}, map[string]any{"state": BindingRevoked, "revoked_by": a.Subject, "revoked_at": now})
}

// CreateACMEAccount stores a new valid account for a usable binding.
// A key already registered is ErrConflict. Audit "acme_account.create".
func (s *Store) CreateACMEAccount(ctx context.Context, a Actor, acct *ACMEAccount) error {
	if len(acct.Contact) > 10 {
		return fmt.Errorf("creating ACME account: %w: at most 10 contacts", ErrInvalid)
	}
	for _, c := range acct.Contact {
		if len(c) > 255 {
			return fmt.Errorf("creating ACME account: %w: a contact is at most 255 characters", ErrInvalid)
		}
	}
	if acct.Contact == nil {
		acct.Contact = StringList{}
	}
	now := s.now()
	acct.ID = uuid.NewString()
	acct.Status = ACMEValid
	acct.CreatedAt, acct.UpdatedAt = now, now
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var b ACMEBinding
		if err := tx.Where("id = ?", acct.BindingID).Take(&b).Error; err != nil {
			return dbErr(err)
		}
		if !b.Usable(now) {
			return fmt.Errorf("%w: binding %s is %s or expired", ErrForbidden, b.ID, b.State)
		}
		acct.Org = b.Org
		if err := tx.Create(acct).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, acct.Org, "acme_account", acct.ID,
			ACMEAccountCreateEvent{Binding: b.ID, Thumbprint: acct.Thumbprint})
	})
	if err != nil {
		return fmt.Errorf("creating ACME account: %w", err)
	}
	return nil
}

// GetACMEAccount returns the account with this id, or ErrNotFound.
func (s *Store) GetACMEAccount(ctx context.Context, id string) (*ACMEAccount, error) {
	var acct ACMEAccount
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&acct).Error; err != nil {
		return nil, fmt.Errorf("reading ACME account %s: %w", id, dbErr(err))
	}
	return &acct, nil
}

// GetACMEAccountByThumbprint returns the account whose key has this
// thumbprint, or ErrNotFound.
func (s *Store) GetACMEAccountByThumbprint(ctx context.Context, thumbprint string) (*ACMEAccount, error) {
	var acct ACMEAccount
	if err := s.db.WithContext(ctx).Where("thumbprint = ?", thumbprint).Take(&acct).Error; err != nil {
		return nil, fmt.Errorf("reading ACME account by key: %w", dbErr(err))
	}
	return &acct, nil
}

// ChangeACMEAccountKey replaces a valid account's key (RFC 8555 §7.3.5)
// if it is still oldThumbprint; a new key already in use is ErrConflict.
// Audit "acme_account.key_change".
func (s *Store) ChangeACMEAccountKey(ctx context.Context, a Actor, id, oldThumbprint, newThumbprint, jwk string) (*ACMEAccount, error) {
	return s.accountUpdate(ctx, a, id, "changing the key of",
		"thumbprint = ? AND status = ?", []any{oldThumbprint, ACMEValid},
		map[string]any{"thumbprint": newThumbprint, "jwk": jwk},
		func(binding string) Event {
			return ACMEAccountKeyChangeEvent{Binding: binding, Thumbprint: newThumbprint, OldThumbprint: oldThumbprint}
		})
}

// DeactivateACMEAccount deactivates a valid account (RFC 8555 §7.3.6).
// Audit "acme_account.deactivate".
func (s *Store) DeactivateACMEAccount(ctx context.Context, a Actor, id string) (*ACMEAccount, error) {
	return s.accountUpdate(ctx, a, id, "deactivating",
		"status = ?", []any{ACMEValid}, map[string]any{"status": ACMEDeactivated},
		func(binding string) Event { return ACMEAccountDeactivateEvent{Binding: binding} })
}

func (s *Store) accountUpdate(ctx context.Context, a Actor, id, verb, cond string, args []any, set map[string]any, event func(binding string) Event) (*ACMEAccount, error) {
	var out ACMEAccount
	err := s.tx(ctx, func(tx *gorm.DB) error {
		set["updated_at"] = s.now()
		res := tx.Model(&ACMEAccount{}).Where("id = ?", id).Where(cond, args...).Updates(set)
		if res.Error != nil {
			return dbErr(res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: account is not valid or its key changed meanwhile", ErrConflict)
		}
		if err := tx.Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		return s.appendAudit(tx, a, out.Org, "acme_account", id, event(out.BindingID))
	})
	if err != nil {
		return nil, fmt.Errorf("%s ACME account %s: %w", verb, id, err)
	}
	return &out, nil
}

// CreateACMEOrder stores a new order in state ready (its authorizations are
// pre-authorised by the binding). Audit "acme_order.create".
func (s *Store) CreateACMEOrder(ctx context.Context, a Actor, o *ACMEOrder) error {
	now := s.now()
	o.ID = uuid.NewString()
	o.Status = ACMEReady
	o.CreatedAt, o.UpdatedAt = now, now
	o.Expires = normTime(o.Expires)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(o).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, o.Org, "acme_order", o.ID, ACMEOrderCreateEvent{
			Binding: o.BindingID, Account: o.AccountID, Identifiers: o.Identifiers, Replaces: o.Replaces,
		})
	})
	if err != nil {
		return fmt.Errorf("creating ACME order: %w", err)
	}
	return nil
}

// GetACMEOrder returns the order with this id, or ErrNotFound.
func (s *Store) GetACMEOrder(ctx context.Context, id string) (*ACMEOrder, error) {
	var o ACMEOrder
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&o).Error; err != nil {
		return nil, fmt.Errorf("reading ACME order %s: %w", id, dbErr(err))
	}
	return &o, nil
}

// ListACMEOrders returns an account's orders, newest first.
func (s *Store) ListACMEOrders(ctx context.Context, accountID string) ([]ACMEOrder, error) {
	var os []ACMEOrder
	if err := s.db.WithContext(ctx).Where("account_id = ?", accountID).Order("created_at DESC, id DESC").Limit(1000).Find(&os).Error; err != nil {
		return nil, fmt.Errorf("listing ACME orders: %w", err)
	}
	return os, nil
}

// ACMEOrderUpdate is what a finished (or failed) order records.
type ACMEOrderUpdate struct {
	RequestID     string
	CertificateID string
	Error         string
}

// MoveACMEOrder moves an order from one status to another; of concurrent
// moves exactly one succeeds (ErrConflict for the others). Audit
// "acme_order.<to>".
func (s *Store) MoveACMEOrder(ctx context.Context, a Actor, id, from, to string, u ACMEOrderUpdate) (*ACMEOrder, error) {
	var out ACMEOrder
	err := s.tx(ctx, func(tx *gorm.DB) error {
		set := map[string]any{"status": to, "updated_at": s.now()}
		if u.RequestID != "" {
			set["request_id"] = u.RequestID
		}
		if u.CertificateID != "" {
			set["certificate_id"] = u.CertificateID
		}
		if u.Error != "" {
			set["error"] = u.Error
		}
		res := tx.Model(&ACMEOrder{}).Where("id = ? AND status = ?", id, from).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: order is not %s", ErrConflict, from)
		}
		if err := tx.Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		return s.appendAudit(tx, a, out.Org, "acme_order", id, ACMEOrderMoveEvent{
			Binding: out.BindingID, Account: out.AccountID, From: from, To: to,
			Request: u.RequestID, Certificate: u.CertificateID, Error: u.Error,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("moving ACME order %s to %s: %w", id, to, err)
	}
	return &out, nil
}

// StoreACMENonce records a fresh nonce until expires.
func (s *Store) StoreACMENonce(ctx context.Context, value string, expires time.Time) error {
	if err := s.db.WithContext(ctx).Create(&ACMENonce{Value: value, ExpiresAt: normTime(expires)}).Error; err != nil {
		return fmt.Errorf("storing nonce: %w", dbErr(err))
	}
	return nil
}

// UseACMENonce consumes a nonce: true if it existed and had not expired,
// and it can never be used again. Expired nonces are removed on the way.
func (s *Store) UseACMENonce(ctx context.Context, value string) (bool, error) {
	now := s.now()
	db := s.db.WithContext(ctx)
	res := db.Where("value = ? AND expires_at > ?", value, now).Delete(&ACMENonce{})
	if res.Error != nil {
		return false, fmt.Errorf("using nonce: %w", res.Error)
	}
	if err := db.Where("expires_at <= ?", now).Delete(&ACMENonce{}).Error; err != nil {
		return false, fmt.Errorf("removing expired nonces: %w", err)
	}
	return res.RowsAffected == 1, nil
}

// PreauthorizeRequest approves a submitted request that came through an
// automation channel whose authorisation a person gave beforehand: decidedBy
// is that person (the binding's approver), who must not be the requester
// (ErrForbidden). Audit "request.preauthorized".
func (s *Store) PreauthorizeRequest(ctx context.Context, a Actor, id, decidedBy, reason string) (*Request, error) {
	var out Request
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var r Request
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			return dbErr(err)
		}
		switch {
		case r.Via == "":
			return fmt.Errorf("%w: only requests from an automation channel are pre-authorised", ErrForbidden)
		case strings.TrimSpace(decidedBy) == "" || decidedBy == r.RequestedBy:
			return fmt.Errorf("%w: the pre-authorisation must come from someone other than the requester", ErrForbidden)
		}
		now := s.now()
		res := tx.Model(&Request{}).Where("id = ? AND state = ?", id, StateSubmitted).Updates(map[string]any{
			"state": StateApproved, "decided_by": decidedBy, "decision_reason": reason, "decided_at": now, "updated_at": now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: request is no longer %s", ErrConflict, StateSubmitted)
		}
		if err := tx.Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		return s.appendAudit(tx, a, out.Org, "request", id, RequestPreauthorizedEvent{
			From: StateSubmitted, To: StateApproved, Reason: reason, Via: r.Via, ViaRef: r.ViaRef,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("pre-authorising request %s: %w", id, err)
	}
	return &out, nil
}
