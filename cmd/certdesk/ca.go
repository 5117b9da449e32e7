package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/certdesk/certdesk/signer"
)

func init() {
	register("ca init", caInit)
	register("ca import", caImport)
}

// caInit creates what is missing of the CA hierarchy and reports what it
// created and what already existed.
func caInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca init", stderr)
	external := fs.Bool("external-root", false, "create only the issuing key and a CSR for an offline root")
	cfg, err := parseWithConfig(fs, args)
	if err != nil {
		return err
	}
	rep, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, *external, time.Now())
	if err != nil {
		return err
	}
	for _, s := range rep.Existed {
		fmt.Fprintln(stdout, "exists: ", s)
	}
	for _, s := range rep.Created {
		fmt.Fprintln(stdout, "created:", s)
	}
	return nil
}

// caImport installs an issuing CA certificate signed by an offline root.
func caImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca import", stderr)
	certPath := fs.String("cert", "", "the signed issuing CA certificate (PEM)")
	rootPath := fs.String("root", "", "the root certificate it chains to (PEM)")
	cfg, err := parseWithConfig(fs, args)
	if err != nil {
		return err
	}
	if *certPath == "" || *rootPath == "" {
		return fmt.Errorf("%w: --cert and --root are required", errUsage)
	}
	certPEM, err := os.ReadFile(*certPath)
	if err != nil {
		return err
	}
	rootPEM, err := os.ReadFile(*rootPath)
	if err != nil {
		return err
	}
	if err := signer.ImportIssuing(cfg.CA, signer.Keys{}, certPEM, rootPEM, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported: issuing CA certificate %s and root %s\n", cfg.CA.IssuingPath(), cfg.CA.RootPath())
	return nil
}
