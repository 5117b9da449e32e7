package signer

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// LintSources are the zlint sources certdesk lints against. The CA/Browser
// Forum sources are for publicly trusted TLS server certificates and do not
// apply to a private client-certificate CA.
var LintSources = lint.SourceList{lint.RFC5280, lint.RFC5480, lint.RFC3279, lint.RFC5891, lint.RFC8813, lint.Community}

// excludedLints are lints that cannot apply to certdesk's CA. Each costs
// time on every issuance for nothing.
var excludedLints = []string{
	// Verifies every certificate's signature against eight specific
	// compromised public eMudhra CA keys: about 9 ms of P-384 verification per
	// certificate, and a certdesk CA key is never one of those keys.
	"e_cert_issued_by_compromised_emudhra_ca",
	// Replaced by certdesk's own copy, smallKeyLint, which answers with a
	// table lookup where zlint's searches with about sixteen point additions
	// per certificate.
	smallKeyLintName,
}

// Linter runs zlint over certificates and CRLs before the HSM signs them
// (Boulder linter/linter.go). Any warning, error or fatal result refuses.
type Linter struct {
	registry lint.Registry
	// certLints are the registry's certificate lints and smallKeyLint, and
	// config the registry's configuration, taken once:
	// zlint.LintCertificateEx lists, sorts and names them again for every
	// certificate.
	certLints []*lint.CertificateLint
	config    lint.Configuration
}

// NewLinter returns a linter with LintSources.
func NewLinter() (*Linter, error) {
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: LintSources, ExcludeNames: excludedLints})
	if err != nil {
		return nil, fmt.Errorf("building the zlint registry: %w", err)
	}
	// Lints returns the registry's own slice: append to a copy.
	certLints := append(slices.Clone(reg.CertificateLints().Lints()), smallKeyLint())
	return &Linter{registry: reg, certLints: certLints, config: reg.GetConfiguration()}, nil
}

// LintCertificate lints a DER certificate with every certificate lint of
// the registry and certdesk's e_ecdsa_small_private_key, as
// zlint.LintCertificateEx does.
func (l *Linter) LintCertificate(der []byte) error {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: zlint cannot parse the certificate: %v", ErrLint, err)
	}
	var found []string
	for _, cl := range l.certLints {
		if r := cl.Execute(c, l.config); r.Status == lint.Warn || r.Status == lint.Error || r.Status == lint.Fatal {
			found = append(found, problem(cl.Name, r))
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	return fmt.Errorf("%w: %s", ErrLint, strings.Join(found, "; "))
}

// problem describes one lint's refusal.
func problem(name string, r *lint.LintResult) string {
	s := fmt.Sprintf("%s (%s)", name, r.Status)
	if r.Details != "" {
		s += ": " + r.Details
	}
	return s
}

// LintCRL lints a DER certificate revocation list.
func (l *Linter) LintCRL(der []byte) error {
	crl, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("%w: zlint cannot parse the CRL: %v", ErrLint, err)
	}
	return problems(zlint.LintRevocationListEx(crl, l.registry))
}

func problems(rs *zlint.ResultSet) error {
	if !rs.WarningsPresent && !rs.ErrorsPresent && !rs.FatalsPresent {
		return nil
	}
	var found []string
	for name, r := range rs.Results {
		if r.Status == lint.Warn || r.Status == lint.Error || r.Status == lint.Fatal {
			found = append(found, problem(name, r))
		}
	}
	sort.Strings(found)
	return fmt.Errorf("%w: %s", ErrLint, strings.Join(found, "; "))
}
