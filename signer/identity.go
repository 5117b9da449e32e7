package signer

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIdentities bounds how many names one certificate may carry.
const maxIdentities = 20

// Identities are the names a certificate is issued for, split by SAN type.
// Values of this type have passed ParseIdentities: they are well formed, but
// not yet checked against any organisation's namespace.
type Identities struct {
	URIs     []*url.URL
	DNSNames []string
	Emails   []string
}

// Strings lists every identity as text, URIs first, in the order given.
func (ids Identities) Strings() []string {
	out := make([]string, 0, len(ids.URIs)+len(ids.DNSNames)+len(ids.Emails))
	for _, u := range ids.URIs {
		out = append(out, u.String())
	}
	out = append(out, ids.DNSNames...)
	return append(out, ids.Emails...)
}

// Len is the number of identities.
func (ids Identities) Len() int { return len(ids.URIs) + len(ids.DNSNames) + len(ids.Emails) }

// ParseIdentities classifies and checks requested identities: a value with
// "://" is a URI SAN, one with "@" an email SAN (rfc822Name), anything else a
// DNS name. Client identities never contain wildcards, control characters or
// NUL bytes (RFC 5280 §4.2.1.6 forbids none of these outright, but no client
// identity needs them and each has been used to confuse name matching).
func ParseIdentities(requested []string) (Identities, error) {
	var ids Identities
	if len(requested) == 0 {
		return ids, &PolicyError{Rule: "identities", Reason: "at least one identity (URI, DNS name or email address) is required"}
	}
	if len(requested) > maxIdentities {
		return ids, &PolicyError{Rule: "identities", Reason: fmt.Sprintf("at most %d identities per certificate, got %d", maxIdentities, len(requested))}
	}
	seen := map[string]bool{}
	for _, insecureName := range requested {
		if err := checkNameCharacters(insecureName); err != nil {
			return ids, err
		}
		key := strings.ToLower(insecureName)
		if seen[key] {
			return ids, &PolicyError{Rule: "identity-syntax", Reason: fmt.Sprintf("identity %q is listed twice", insecureName)}
		}
		seen[key] = true
		switch {
		case strings.Contains(insecureName, "://"):
			u, err := parseURIIdentity(insecureName)
			if err != nil {
				return ids, err
			}
			ids.URIs = append(ids.URIs, u)
		case strings.Contains(insecureName, "@"):
			e, err := parseEmailIdentity(insecureName)
			if err != nil {
				return ids, err
			}
			ids.Emails = append(ids.Emails, e)
		default:
			d, err := parseDNSIdentity(insecureName)
			if err != nil {
				return ids, err
			}
			ids.DNSNames = append(ids.DNSNames, d)
		}
	}
	return ids, nil
}

func syntaxError(format string, args ...any) error {
	return &PolicyError{Rule: "identity-syntax", Reason: fmt.Sprintf(format, args...)}
}

func checkNameCharacters(name string) error {
	if name == "" {
		return syntaxError("an identity is empty")
	}
	if len(name) > 255 {
		return syntaxError("identity %.40q… is longer than 255 characters", name)
	}
	if !utf8.ValidString(name) {
		return syntaxError("identity %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r == 0 || unicode.IsControl(r) || unicode.IsSpace(r) {
			return syntaxError("identity %q contains a control or space character", name)
		}
		if r > unicode.MaxASCII {
			return syntaxError("identity %q contains non-ASCII characters; use the IDNA (xn--) form", name)
		}
	}
	if strings.Contains(name, "*") {
		return syntaxError("identity %q contains a wildcard; client identities name exactly one party", name)
	}
	return nil
}

func parseURIIdentity(insecureName string) (*url.URL, error) {
	if strings.HasPrefix(strings.ToLower(insecureName), "spiffe:") {
		if err := checkSPIFFEID(insecureName); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(insecureName)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, syntaxError("identity %q is not a well-formed URI", insecureName)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" || u.ForceQuery {
		return nil, syntaxError("URI identity %q must not carry user info, a port, a query or a fragment", insecureName)
	}
	if u.Host == "" {
		return nil, syntaxError("URI identity %q has no authority (host or trust domain)", insecureName)
	}
	if strings.Contains(insecureName, "%") {
		return nil, syntaxError("URI identity %q contains percent-encoding; write every character as itself", insecureName)
	}
	if u.String() != insecureName {
		return nil, syntaxError("URI identity %q is not in canonical form (%q)", insecureName, u.String())
	}
	return u, nil
}

// checkSPIFFEID applies the SPIFFE ID specification (SPIFFE-ID §2) to the
// text as written, before any URI decoding: the scheme "spiffe" in lower
// case; a trust domain of lower-case letters, digits, '.', '-' and '_' (so
// no port, no user info, no percent-encoding); a path of one or more
// segments of letters, digits, '.', '_' and '-', none of them empty, "." or
// ".."; and no query or fragment.
func checkSPIFFEID(insecureName string) error {
	rest, ok := strings.CutPrefix(insecureName, "spiffe://")
	if !ok {
		return syntaxError("SPIFFE ID %q must start with spiffe:// in lower case", insecureName)
	}
	td, path, _ := strings.Cut(rest, "/")
	if td == "" {
		return syntaxError("SPIFFE ID %q has no trust domain", insecureName)
	}
	for _, c := range td {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			if c >= 'A' && c <= 'Z' {
				return syntaxError("SPIFFE ID %q: the trust domain must be lower case", insecureName)
			}
			return syntaxError("SPIFFE ID %q: the trust domain may hold only lower-case letters, digits, '.', '-' and '_' (no port, user info, query or percent-encoding), found %q", insecureName, c)
		}
	}
	if path == "" {
		return syntaxError("SPIFFE ID %q must have a path that does not end in /", insecureName)
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			return syntaxError("SPIFFE ID %q must have a path that does not end in / and has no empty segment", insecureName)
		}
		if seg == "." || seg == ".." {
			return syntaxError("SPIFFE ID %q has a dot path segment", insecureName)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return syntaxError("SPIFFE ID %q: path segments may hold only letters, digits, '.', '-' and '_' (no percent-encoding, query or fragment), found %q", insecureName, c)
			}
		}
	}
	return nil
}

func parseDNSIdentity(insecureName string) (string, error) {
	name := strings.ToLower(insecureName)
	if strings.HasSuffix(name, ".") {
		return "", syntaxError("DNS identity %q must not end with a dot", insecureName)
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return "", syntaxError("DNS identity %q is not a fully qualified name", insecureName)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", syntaxError("DNS identity %q has an empty or over-long label", insecureName)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", syntaxError("DNS identity %q has a label that starts or ends with '-'", insecureName)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", syntaxError("DNS identity %q contains %q; only letters, digits, '-' and '.' are allowed", insecureName, c)
			}
		}
	}
	return name, nil
}

func parseEmailIdentity(insecureName string) (string, error) {
	addr, err := mail.ParseAddress(insecureName)
	if err != nil || addr.Address != insecureName || addr.Name != "" {
		return "", syntaxError("email identity %q is not a plain address like name@example.com", insecureName)
	}
	at := strings.LastIndexByte(insecureName, '@')
	if _, err := parseDNSIdentity(insecureName[at+1:]); err != nil {
		return "", syntaxError("email identity %q has an invalid domain", insecureName)
	}
	return insecureName[:at] + "@" + strings.ToLower(insecureName[at+1:]), nil
}

// Namespace is the set of identities an organisation may hold: URI prefixes
// (e.g. "spiffe://example.org/partners/acme/"), DNS suffixes (e.g.
// "acme.example", which allows the name itself and names below it) and email
// domains (exact).
type Namespace struct {
	URIPrefixes  []string
	DNSSuffixes  []string
	EmailDomains []string
}

// Check refuses, naming the first offender, any identity outside ns.
func (ns Namespace) Check(ids Identities) error {
	for _, u := range ids.URIs {
		if !ns.allowsURI(u.String()) {
			return &PolicyError{Rule: "namespace", Reason: fmt.Sprintf("URI %q is outside the organisation's namespace (allowed prefixes: %s)", u, listOrNone(ns.URIPrefixes))}
		}
	}
	for _, d := range ids.DNSNames {
		if !ns.allowsDNS(d) {
			return &PolicyError{Rule: "namespace", Reason: fmt.Sprintf("DNS name %q is outside the organisation's namespace (allowed suffixes: %s)", d, listOrNone(ns.DNSSuffixes))}
		}
	}
	for _, e := range ids.Emails {
		if !ns.allowsEmail(e) {
			return &PolicyError{Rule: "namespace", Reason: fmt.Sprintf("email %q is outside the organisation's namespace (allowed domains: %s)", e, listOrNone(ns.EmailDomains))}
		}
	}
	return nil
}

func (ns Namespace) allowsURI(u string) bool {
	for _, p := range ns.URIPrefixes {
		// A prefix that does not end in "/" still only matches whole path
		// segments: "spiffe://td/acme" must not allow "spiffe://td/acme-evil".
		if p == "" {
			continue
		}
		if strings.HasSuffix(p, "/") && strings.HasPrefix(u, p) && len(u) > len(p) {
			return true
		}
		if !strings.HasSuffix(p, "/") && (u == p || strings.HasPrefix(u, p+"/")) {
			return true
		}
	}
	return false
}

func (ns Namespace) allowsDNS(d string) bool {
	for _, s := range ns.DNSSuffixes {
		s = strings.ToLower(strings.TrimPrefix(s, "."))
		if s != "" && (d == s || strings.HasSuffix(d, "."+s)) {
			return true
		}
	}
	return false
}

func (ns Namespace) allowsEmail(e string) bool {
	domain := e[strings.LastIndexByte(e, '@')+1:]
	for _, s := range ns.EmailDomains {
		if strings.EqualFold(strings.TrimPrefix(s, "@"), domain) {
			return true
		}
	}
	return false
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
