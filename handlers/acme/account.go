package acme

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// accountBody is an account object (RFC 8555 §7.1.2).
type accountBody struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact,omitempty"`
	Orders  string   `json:"orders"`
}

func (s *Server) accountJSON(a *models.ACMEAccount) accountBody {
	return accountBody{Status: a.Status, Contact: a.Contact, Orders: s.url("/acme/account/" + a.ID + "/orders")}
}

type newAccountPayload struct {
	Contact              []string        `json:"contact"`
	TermsOfServiceAgreed bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting   bool            `json:"onlyReturnExisting"`
	ExternalAccount      json.RawMessage `json:"externalAccountBinding"`
}

// NewAccount is POST /acme/new-account (RFC 8555 §7.3): an existing key
// gets its account back; a new one needs an external account binding
// (§7.3.4) whose MAC verifies with the key of an approved, unexpired,
// unrevoked binding.
func (s *Server) NewAccount(c echo.Context) error {
	req, err := s.post(c, true, false)
	if err != nil {
		return err
	}
	var p newAccountPayload
	if err := decode(req.payload, &p); err != nil {
		return err
	}
	ctx := c.Request().Context()
	tp, err := thumbprint(req.jwk)
	if err != nil {
		return err
	}
	if acct, err := s.Store.GetACMEAccountByThumbprint(ctx, tp); err == nil {
		c.Response().Header().Set("Location", s.url("/acme/account/"+acct.ID))
		return c.JSON(http.StatusOK, s.accountJSON(acct))
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	if p.OnlyReturnExisting {
		return &Problem{Type: errAccountDoesNotExist, Status: 400, Detail: "no account has this key"}
	}
	if len(p.ExternalAccount) == 0 {
		return &Problem{Type: errExternalAccount, Status: 400, Detail: "this server requires an external account binding: ask for one in the portal"}
	}
	bind, err := s.checkEAB(c, p.ExternalAccount, req.jwk)
	if err != nil {
		return err
	}
	jwk, err := req.jwk.MarshalJSON()
	if err != nil {
		return err
	}
	acct := &models.ACMEAccount{BindingID: bind.ID, Thumbprint: tp, JWK: string(jwk), Contact: p.Contact}
	a := models.Actor{Subject: "acme-binding:" + bind.ID, Role: models.RolePartner, Org: bind.Org, Source: c.RealIP()}
	if err := s.Store.CreateACMEAccount(ctx, a, acct); err != nil {
		if errors.Is(err, models.ErrForbidden) {
			return &Problem{Type: errUnauthorized, Status: 401, Detail: "the external account binding is revoked or expired"}
		}
		return err
	}
	c.Response().Header().Set("Location", s.url("/acme/account/"+acct.ID))
	return c.JSON(http.StatusCreated, s.accountJSON(acct))
}

// checkEAB verifies an externalAccountBinding JWS (RFC 8555 §7.3.4): MAC
// algorithm, kid naming a usable binding, url of newAccount, no nonce, the
// account key as payload, and the MAC under the binding's key.
func (s *Server) checkEAB(c echo.Context, raw json.RawMessage, accountKey *jose.JSONWebKey) (*models.ACMEBinding, error) {
	sig, err := parseJWS(raw, eabAlgs, false)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			p.Detail = "externalAccountBinding: " + p.Detail
		}
		return nil, err
	}
	if sig.hdr.KeyID == "" || sig.hdr.JSONWebKey != nil {
		return nil, malformed("externalAccountBinding: the protected header needs the binding's kid")
	}
	if sig.hdr.Nonce != "" {
		return nil, malformed("externalAccountBinding: the protected header must have no nonce")
	}
	if sig.url != s.url("/acme/new-account") {
		return nil, &Problem{Type: errUnauthorized, Status: 401, Detail: "externalAccountBinding: url is not the newAccount URL"}
	}
	refused := &Problem{Type: errUnauthorized, Status: 401, Detail: "externalAccountBinding: unknown, unapproved, revoked or expired binding, or a wrong MAC"}
	bind, err := s.Store.GetACMEBinding(c.Request().Context(), sig.hdr.KeyID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, refused
	}
	if err != nil {
		return nil, err
	}
	if !bind.Usable(s.now()) || len(bind.HMACKeySealed) == 0 {
		return nil, refused
	}
	key, err := s.Keys.Open(bind.ID, bind.HMACKeySealed)
	if err != nil {
		return nil, err
	}
	payload, err := sig.jws.Verify(key)
	if err != nil {
		return nil, refused
	}
	var inner jose.JSONWebKey
	if err := inner.UnmarshalJSON(payload); err != nil {
		return nil, malformed("externalAccountBinding: the payload is not a JWK")
	}
	a, err1 := thumbprint(&inner)
	b, err2 := thumbprint(accountKey)
	if err1 != nil || err2 != nil || !hmac.Equal([]byte(a), []byte(b)) {
		return nil, malformed("externalAccountBinding: the payload is not the account key")
	}
	return bind, nil
}

type accountUpdate struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact"`
}

// Account is POST /acme/account/{id}: POST-as-GET, or deactivation
// (RFC 8555 §7.3.2, §7.3.6). Contacts are kept as registered.
func (s *Server) Account(c echo.Context) error {
	req, err := s.post(c, false, true)
	if err != nil {
		return err
	}
	if req.account.ID != c.Param("id") {
		return &Problem{Type: errUnauthorized, Status: 401, Detail: "the kid does not name this account"}
	}
	acct := req.account
	if !req.empty {
		var u accountUpdate
		if err := decode(req.payload, &u); err != nil {
			return err
		}
		switch u.Status {
		case "":
		case models.ACMEDeactivated:
			if acct, err = s.Store.DeactivateACMEAccount(c.Request().Context(), actorOf(c, acct), acct.ID); err != nil {
				return err
			}
		default:
			return malformed("an account's status can only be set to deactivated")
		}
	}
	return c.JSON(http.StatusOK, s.accountJSON(acct))
}

// Orders is POST /acme/account/{id}/orders (RFC 8555 §7.1.2.1).
func (s *Server) Orders(c echo.Context) error {
	req, err := s.post(c, false, true)
	if err != nil {
		return err
	}
	if req.account.ID != c.Param("id") {
		return &Problem{Type: errUnauthorized, Status: 401, Detail: "the kid does not name this account"}
	}
	os, err := s.Store.ListACMEOrders(c.Request().Context(), req.account.ID)
	if err != nil {
		return err
	}
	urls := []string{}
	for _, o := range os {
		urls = append(urls, s.url("/acme/order/"+o.ID))
	}
	return c.JSON(http.StatusOK, map[string]any{"orders": urls})
}

type keyChangeInner struct {
	Account string          `json:"account"`
	OldKey  json.RawMessage `json:"oldKey"`
}

// KeyChange is POST /acme/key-change (RFC 8555 §7.3.5): the outer JWS is
// signed by the account's key, the inner by the new key (jwk), naming the
// account and the old key.
func (s *Server) KeyChange(c echo.Context) error {
	req, err := s.post(c, false, true)
	if err != nil {
		return err
	}
	inner, err := parseJWS(req.payload, accountAlgs, false)
	if err != nil {
		return err
	}
	if inner.hdr.JSONWebKey == nil {
		return malformed("the inner JWS must carry the new key as jwk")
	}
	if inner.hdr.Nonce != "" {
		return malformed("the inner JWS must have no nonce")
	}
	if inner.url != s.url("/acme/key-change") {
		return malformed("the inner JWS url must be the keyChange URL")
	}
	payload, err := inner.verifyWith(inner.hdr.JSONWebKey)
	if err != nil {
		return err
	}
	var p keyChangeInner
	if err := decode(payload, &p); err != nil {
		return err
	}
	if p.Account != s.url("/acme/account/"+req.account.ID) {
		return &Problem{Type: errUnauthorized, Status: 401, Detail: "the inner account is not the signing account"}
	}
	var old jose.JSONWebKey
	if err := old.UnmarshalJSON(p.OldKey); err != nil {
		return malformed("oldKey is not a JWK")
	}
	oldTP, err := thumbprint(&old)
	if err != nil {
		return err
	}
	if oldTP != req.account.Thumbprint {
		return &Problem{Type: errUnauthorized, Status: 401, Detail: "oldKey is not the account's current key"}
	}
	newTP, err := thumbprint(inner.hdr.JSONWebKey)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if other, err := s.Store.GetACMEAccountByThumbprint(ctx, newTP); err == nil {
		c.Response().Header().Set("Location", s.url("/acme/account/"+other.ID))
		return &Problem{Type: errMalformed, Status: 409, Detail: "the new key is already the key of an account"}
	}
	jwk, err := inner.hdr.JSONWebKey.MarshalJSON()
	if err != nil {
		return err
	}
	acct, err := s.Store.ChangeACMEAccountKey(ctx, actorOf(c, req.account), req.account.ID, oldTP, newTP, string(jwk))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.accountJSON(acct))
}
