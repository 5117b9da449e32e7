package signer

import (
	"errors"
	"strings"
	"testing"
)

func TestParseIdentities_SPIFFEIDsFollowTheSpecification(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // "" for accepted, else part of the reason
	}{
		{"spiffe://example.org/partners/acme/billing", ""},
		{"spiffe://trust_domain-1.example/a.b/c_d/e-f/G9", ""},
		{"spiffe://example.org/partners/acme/a%2Fb", "percent-encoding"},
		{"spiffe://example.org/partners/acme/%61pi", "percent-encoding"},
		{"spiffe://ex%61mple.org/x", "trust domain"},
		{"spiffe://example.org//x", "empty segment"},
		{"spiffe://example.org/x/./y", "dot path segment"},
		{"spiffe://example.org/x/..", "dot path segment"},
		{"spiffe://example.org/x/", "does not end in /"},
		{"spiffe://example.org", "path"},
		{"spiffe://example.org:8443/x", "trust domain"},
		{"spiffe://user@example.org/x", "trust domain"},
		{"spiffe://example.org/x?y=1", "path segments"},
		{"spiffe://example.org/x#frag", "path segments"},
		{"spiffe://Example.org/x", "lower case"},
		{"SPIFFE://example.org/x", "spiffe://"},
		{"spiffe:example.org/x", "':'"},
		{"spiffe:///x", "no trust domain"},
		{"spiffe://example.org/a+b", "path segments"},
		{"https://api.acme.example/clients/a%20b", "percent-encoding"},
	} {
		_, err := ParseIdentities([]string{tc.id})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.id, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want a refusal mentioning %q", tc.id, err, tc.want)
		}
		var pe *PolicyError
		if err != nil && (!errors.As(err, &pe) || pe.Rule != "identity-syntax") {
			t.Errorf("%s: refusal %v is not by rule identity-syntax", tc.id, err)
		}
	}
}

// FuzzParseIdentities: whatever the input, parsing never panics, a refusal
// is a PolicyError, and an accepted SPIFFE ID is canonical (it is exactly
// its own string form and has no percent-encoding or empty segments).
func FuzzParseIdentities(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org/partners/acme/billing", "spiffe://example.org/a%2Fb", "spiffe://example.org//x",
		"spiffe://example.org:1/x", "spiffe://u@example.org/x", "spiffe://example.org/x?q", "spiffe://example.org/./x",
		"billing.acme.example", "ops@acme.example", "https://api.acme.example/clients/7",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ids, err := ParseIdentities([]string{in})
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("refusal is not a PolicyError: %v", err)
			}
			return
		}
		for _, u := range ids.URIs {
			s := u.String()
			if s != in || strings.Contains(s, "%") {
				t.Fatalf("accepted non-canonical URI %q (%q)", in, s)
			}
			if u.Scheme == "spiffe" && (strings.Contains(u.Path, "//") || u.RawQuery != "" || u.Port() != "") {
				t.Fatalf("accepted SPIFFE ID %q", in)
			}
		}
	})
}
