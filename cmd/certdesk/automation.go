package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/handlers/acme"
	"github.com/certdesk/certdesk/handlers/certauth"
	"github.com/certdesk/certdesk/handlers/est"
	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

// addAutomation wires the automation protocols into the server's
// dependencies: ACME with its bindings API, EST, and renewal with the
// current certificate (client certificates from the TLS connection or a
// trusted gateway). The bindings' HMAC keys are
// sealed under a key derived from the session key.
func addAutomation(deps *web.Deps, cfg *Config, store *models.Store, wf *issuance.Workflow, ca *signer.CA) error {
	key, err := web.ReadSecret(cfg.Session.KeyFile, "session.key_file", web.EnvSessionKey)
	if err != nil {
		return err
	}
	sealer, err := acme.NewSealer([]byte(key))
	if err != nil {
		return fmt.Errorf("session.key_file: %w", err)
	}
	deps.ACME = &acme.Server{Store: store, Workflow: wf, Keys: sealer, BaseURL: cfg.PublicURL,
		Issuing: ca.Issuer.Certificate(), Log: deps.Log, Now: time.Now}
	deps.ACMEBindings = &handlers.ACMEBindings{Bindings: &acme.Bindings{Store: store, Keys: sealer, Now: time.Now},
		DirectoryURL: cfg.PublicURL + "/acme/directory",
		Codes:        &est.Codes{Store: store, Now: time.Now}, EnrollURL: cfg.PublicURL + "/.well-known/est/simpleenroll"}
	cc, err := web.NewClientCerts(cfg.ClientCertificates, deps.Log)
	if err != nil {
		return err
	}
	deps.ClientCerts = cc
	verifier := certauth.NewVerifier(store, ca.Root, ca.Issuer.Certificate())
	deps.EST = &est.Server{Store: store, Workflow: wf, Keys: sealer, Verifier: verifier, Root: ca.Root,
		Issuing: ca.Issuer.Certificate(), Log: deps.Log, Now: time.Now,
		Tokens: func(ctx context.Context, secret string) (models.Actor, bool, error) {
			if !strings.HasPrefix(secret, web.APITokenPrefix) || len(secret) > 256 {
				return models.Actor{}, false, nil
			}
			t, err := store.LookupToken(ctx, web.HashAPIToken(secret))
			if err != nil {
				return models.Actor{}, true, err
			}
			return models.Actor{Subject: t.Subject, Role: t.Role, Org: t.Org}, true, nil
		}}
	deps.Renew = &handlers.Renew{Verifier: verifier, Workflow: wf, Store: store,
		IssuingPEM: signer.PEM(ca.Issuer.Certificate().Raw), Now: time.Now}
	return nil
}
