package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/certdesk/certdesk/handlers/audit"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

func init() {
	register("token create", tokenCreate)
	register("audit verify", auditVerify)
}

// tokenCreate mints an API token for an operator and prints only the token.
func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token create", stderr)
	subject := fs.String("subject", "", "who the token acts as (e.g. ci-acme)")
	role := fs.String("role", "", "partner, admin or auditor")
	org := fs.String("org", "", "organisation slug (required for partner)")
	ttl := fs.Duration("ttl", 90*24*time.Hour, "lifetime")
	name := fs.String("name", "", "a label for the token (default: the subject)")
	cfg, err := parseWithConfig(fs, args)
	if err != nil {
		return err
	}
	switch *role {
	case models.RolePartner, models.RoleAdmin, models.RoleAuditor:
	default:
		return fmt.Errorf("%w: --role must be partner, admin or auditor", errUsage)
	}
	if *subject == "" {
		return fmt.Errorf("%w: --subject is required", errUsage)
	}
	if *role == models.RolePartner && *org == "" {
		return fmt.Errorf("%w: --org is required for a partner token", errUsage)
	}
	if *ttl <= 0 || *ttl > models.MaxTokenLifetime {
		return fmt.Errorf("%w: --ttl must be positive and at most %s (%d days)", errUsage, models.MaxTokenLifetime, models.MaxTokenLifetimeDays)
	}
	if *name == "" {
		*name = *subject
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if *org != "" {
		if _, err := store.GetOrg(ctx, *org); err != nil {
			return fmt.Errorf("organisation %q: %w", *org, err)
		}
	}
	token, hash := web.NewAPIToken()
	t := &models.APIToken{Name: *name, Subject: *subject, Role: *role, Org: *org, Hash: hash, ExpiresAt: time.Now().Add(*ttl)}
	op := models.Actor{Subject: "cli:operator", Role: models.RoleSystem, Source: "cli"}
	if err := store.CreateToken(ctx, op, t); err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// auditVerify walks the audit chain and names the first bad event; it
// checks the signed checkpoints against the issuing CA certificate in ca.dir.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withConfigStore(ctx, "audit verify", args, stderr, func(cfg *Config, store *models.Store) error {
		issuing, err := signer.ReadCertificate(cfg.CA.IssuingPath())
		if err != nil {
			return fmt.Errorf("reading the issuing CA certificate, to check audit checkpoints: %w", err)
		}
		v, err := store.VerifyAuditWith(ctx, audit.VerifyWith(issuing))
		if err != nil {
			return err
		}
		if !v.OK {
			return fmt.Errorf("audit chain broken after %d events: %s", v.Events, v.Problem)
		}
		fmt.Fprintf(stdout, "audit chain OK: %d events, head %s\n", v.Events, v.HeadHash)
		fmt.Fprintf(stdout, "%d signed checkpoints, last at event %d\n", v.Checkpoints, v.LastCheckpointSeq)
		return nil
	})
}
