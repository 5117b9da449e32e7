package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes of the provider's short-lived objects.
const (
	authRequestLifetime = 10 * time.Minute // from /authorize to the code exchange
	codeLifetime        = time.Minute      // RFC 6749 §4.1.2 recommends at most ten minutes
	accessTokenLifetime = 5 * time.Minute
	idTokenLifetime     = time.Hour
)

var errNotSupported = errors.New("not supported by the development provider")

// storage is an in-memory op.Storage: auth requests, codes, access tokens,
// users, clients and the signing key. Codes are single use: the code is
// forgotten as soon as the token endpoint has exchanged it.
type storage struct {
	mu           sync.Mutex
	users        map[string]*User   // by subject
	byUsername   map[string]*User   // by username
	clients      map[string]*client // by client id
	authRequests map[string]*authRequest
	codes        map[string]string // code -> auth request id
	tokens       map[string]*accessToken
	key          *signingKey
	now          func() time.Time
	userinfoOnly bool   // user claims in userinfo only, not in the ID token
	groupsScope  string // the scope that releases groups and org ("": openid)
}

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

func newStorage(users []User, clients []Client) (*storage, error) {
	if err := validate(users, clients); err != nil {
		return nil, err
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s := &storage{
		users:        map[string]*User{},
		byUsername:   map[string]*User{},
		clients:      map[string]*client{},
		authRequests: map[string]*authRequest{},
		codes:        map[string]string{},
		tokens:       map[string]*accessToken{},
		key:          key,
		now:          time.Now,
	}
	for _, u := range users {
		u := u
		u.Groups = append([]string(nil), u.Groups...)
		if u.Subject == "" {
			u.Subject = u.Username
		}
		s.users[u.Subject] = &u
		s.byUsername[u.Username] = &u
	}
	for _, c := range clients {
		s.clients[c.ID] = &client{Client: c, store: s}
	}
	return s, nil
}

// userList returns the users in a stable order (for the demo login page).
func (s *storage) userList() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.byUsername {
		out = append(out, *u)
	}
	sortUsers(out)
	return out
}

// completeLogin marks auth request id as authenticated by username.
func (s *storage) completeLogin(id, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.authRequests[id]
	if !ok || s.now().Sub(req.created) > authRequestLifetime {
		return errors.New("this sign-in request is unknown or has expired; start again from the application")
	}
	u, ok := s.byUsername[username]
	if !ok {
		return errors.New("unknown user")
	}
	req.subject = u.Subject
	req.authTime = s.now()
	req.done = true
	return nil
}

// authRequestExists reports whether an auth request is pending (login page).
func (s *storage) authRequestExists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.authRequests[id]
	return ok
}

// CreateAuthRequest implements op.Storage. PKCE with S256 is required of every
// client (RFC 7636; OAuth 2.0 Security BCP §2.1.1), not only public ones.
func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	if len(r.Prompt) == 1 && r.Prompt[0] == oidc.PromptNone {
		return nil, oidc.ErrLoginRequired()
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	req := &authRequest{
		id:          id,
		created:     s.now(),
		clientID:    r.ClientID,
		redirectURI: r.RedirectURI,
		state:       r.State,
		nonce:       r.Nonce,
		scopes:      append([]string(nil), r.Scopes...),
		respType:    r.ResponseType,
		respMode:    r.ResponseMode,
		challenge:   &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod},
		subject:     userID,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked()
	s.authRequests[id] = req
	return req, nil
}

// gcLocked forgets expired auth requests and tokens.
func (s *storage) gcLocked() {
	now := s.now()
	for id, r := range s.authRequests {
		if now.Sub(r.created) > authRequestLifetime {
			delete(s.authRequests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.authRequests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for id, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, id)
		}
	}
}

// AuthRequestByID implements op.Storage.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.authRequests[id]
	if !ok {
		return nil, errors.New("auth request not found")
	}
	return req, nil
}

// AuthRequestByCode implements op.Storage. An unknown, used or expired code
// is refused (RFC 6749 §4.1.2: a code is used once).
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errors.New("code invalid, expired or already used")
	}
	req, ok := s.authRequests[id]
	if !ok || s.now().Sub(req.codeIssued) > codeLifetime {
		delete(s.codes, code)
		return nil, errors.New("code invalid, expired or already used")
	}
	return req, nil
}

// SaveAuthCode implements op.Storage.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.authRequests[id]
	if !ok {
		return errors.New("auth request not found")
	}
	req.codeIssued = s.now()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.Storage. It is called once the code has
// been exchanged, which makes the code single use.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// CreateAccessToken implements op.Storage.
func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	id, err := randomID()
	if err != nil {
		return "", time.Time{}, err
	}
	clientID := ""
	if ar, ok := r.(*authRequest); ok {
		clientID = ar.clientID
	}
	t := &accessToken{
		id:       id,
		clientID: clientID,
		subject:  r.GetSubject(),
		scopes:   append([]string(nil), r.GetScopes()...),
		expires:  s.now().Add(accessTokenLifetime),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = t
	return id, t.expires, nil
}

// CreateAccessAndRefreshTokens implements op.Storage; refresh tokens are not
// offered (no client has the refresh_token grant).
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotSupported
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

// TerminateSession implements op.Storage (end_session): the user's access
// tokens for the client are forgotten.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.tokens, id)
		}
	}
	return nil
}

// RevokeToken implements op.Storage.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenOrID]
	if !ok {
		return nil // RFC 7009 §2.2: an invalid token is not an error
	}
	if t.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	delete(s.tokens, tokenOrID)
	return nil
}

// GetRefreshTokenInfo implements op.Storage.
func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.key.alg}, nil
}

// KeySet implements op.Storage: the public half of the signing key.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("unknown client")
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage, comparing in constant time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("invalid client id or secret")
	}
	return nil
}

// SetUserinfoFromScopes implements op.Storage. It is deprecated upstream and
// left empty: SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest (ID token claims).
func (s *storage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if s.userinfoOnly {
		ui.Subject = r.GetSubject() // the library copies the whole subject part into the ID token
		return nil
	}
	return s.setUserinfo(ui, r.GetSubject(), scopes)
}

// SetUserinfoFromToken implements op.Storage (the userinfo endpoint).
func (s *storage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || t.subject != subject || s.now().After(t.expires) {
		return errors.New("access token invalid or expired")
	}
	return s.setUserinfo(ui, subject, t.scopes)
}

// setUserinfo fills the standard claims the scopes ask for, plus `groups`
// and `org`, which certdesk maps to roles and organisations.
func (s *storage) setUserinfo(ui *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	u, ok := s.users[subject]
	s.mu.Unlock()
	if !ok {
		return errors.New("user not found")
	}
	groupsScope := s.groupsScope
	if groupsScope == "" {
		groupsScope = oidc.ScopeOpenID
	}
	for _, scope := range scopes {
		if scope == oidc.ScopeOpenID {
			ui.Subject = u.Subject
		}
		if scope == groupsScope {
			ui.AppendClaims("groups", append([]string{}, u.Groups...))
			if u.Org != "" {
				ui.AppendClaims("org", u.Org)
			}
		}
		switch scope {
		case oidc.ScopeProfile:
			ui.Name = u.Name
			ui.PreferredUsername = u.Username
		case oidc.ScopeEmail:
			ui.Email = u.Email
			ui.EmailVerified = oidc.Bool(u.Email != "" && !u.EmailUnverified)
		}
	}
	return nil
}

// SetIntrospectionFromToken implements op.Storage; introspection is not offered.
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotSupported
}

// GetPrivateClaimsFromScopes implements op.Storage (JWT access tokens only; none here).
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.Storage; private_key_jwt is not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotSupported
}

// ValidateJWTProfileScopes implements op.Storage; the JWT profile grant is not offered.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotSupported
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

// authRequest is a pending /authorize request (op.AuthRequest).
type authRequest struct {
	id          string
	created     time.Time
	clientID    string
	redirectURI string
	state       string
	nonce       string
	scopes      []string
	respType    oidc.ResponseType
	respMode    oidc.ResponseMode
	challenge   *oidc.CodeChallenge
	subject     string
	authTime    time.Time
	done        bool
	codeIssued  time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return nil }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// accessToken is an opaque access token's server-side record.
type accessToken struct {
	id       string
	clientID string
	subject  string
	scopes   []string
	expires  time.Time
}

// client adapts a Client to op.Client: a web application using the
// authorization code grant only.
type client struct {
	Client
	store *storage
}

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic // client_secret_post is accepted too (op.Config.AuthMethodPost)
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string    { return pathLogin + "?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c *client) IDTokenLifetime() time.Duration { return idTokenLifetime }

// DevMode allows http redirect URIs (loopback) for public clients too.
func (c *client) DevMode() bool { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool {
	return scope == "groups" || (c.store != nil && c.store.groupsScope != "" && scope == c.store.groupsScope)
}

// IDTokenUserinfoClaimsAssertion puts name, email, groups and org in the ID
// token itself, so a relying party needs no userinfo call.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// signingKey is the provider's private RS256 key (op.SigningKey).
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the public half published at the keys endpoint (op.Key).
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// randomID returns 128 random bits in hex.
func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("devidp: random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
