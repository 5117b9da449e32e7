package pkcs11

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// URI is a parsed RFC 7512 PKCS#11 URI, for example
//
//	pkcs11:token=certdesk;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin
//
// Exactly one of Token, Serial and SlotID selects the token.
type URI struct {
	Token      string // path attribute "token" (the token label)
	Serial     string // path attribute "serial"
	SlotID     *int   // path attribute "slot-id"
	Object     string // path attribute "object" (the key label)
	ID         []byte // path attribute "id" (CKA_ID)
	ModulePath string // query attribute "module-path"
	PinSource  string // query attribute "pin-source": "file:/path", a bare path, or "env:VAR"
	PinValue   string // query attribute "pin-value" (tests only: the PIN is in the URI text)
}

// redacted replaces pin-value in String.
const redacted = "REDACTED"

// ParseURI parses an RFC 7512 PKCS#11 URI. Attribute values are
// percent-decoded (RFC 7512 §2.3). It requires exactly one token selector
// (token, serial or slot-id), a module-path, and exactly one of pin-source
// and pin-value. Errors wrap ErrBadURI and name the attribute at fault; they
// never repeat the URI text, which may hold a PIN.
func ParseURI(s string) (*URI, error) {
	const scheme = "pkcs11:"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return nil, fmt.Errorf("%w: must start with %q", ErrBadURI, scheme)
	}
	rest := s[len(scheme):]
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{}
	seen := map[string]bool{}

	for _, attr := range splitNonEmpty(path, ";") {
		name, value, err := decodeAttr(attr, seen)
		if err != nil {
			return nil, err
		}
		switch name {
		case "token":
			u.Token = value
		case "serial":
			u.Serial = value
		case "slot-id":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: slot-id must be a non-negative decimal number", ErrBadURI)
			}
			u.SlotID = &n
		case "object":
			u.Object = value
		case "id":
			u.ID = []byte(value)
		case "type":
			// RFC 7512 §2.3: the object class. Only private keys sign.
			if value != "private" {
				return nil, fmt.Errorf("%w: type=%s is not supported; certdesk keys are type=private", ErrBadURI, value)
			}
		default:
			if !strings.HasPrefix(name, "x-") {
				return nil, fmt.Errorf("%w: path attribute %q is not supported (use token, serial or slot-id to select the token, object or id for the key)", ErrBadURI, name)
			}
		}
	}
	for _, attr := range splitNonEmpty(query, "&") {
		name, value, err := decodeAttr(attr, seen)
		if err != nil {
			return nil, err
		}
		switch name {
		case "module-path":
			u.ModulePath = value
		case "pin-source":
			u.PinSource = value
		case "pin-value":
			u.PinValue = value
		default:
			if !strings.HasPrefix(name, "x-") {
				return nil, fmt.Errorf("%w: query attribute %q is not supported (use module-path, pin-source or pin-value)", ErrBadURI, name)
			}
		}
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	return u, nil
}

// validate checks the rules ParseURI enforces; Open calls it too, so a URI
// built as a struct literal gets the same checks.
func (u *URI) validate() error {
	var selectors []string
	if u.Token != "" {
		selectors = append(selectors, "token")
	}
	if u.Serial != "" {
		selectors = append(selectors, "serial")
	}
	if u.SlotID != nil {
		selectors = append(selectors, "slot-id")
	}
	switch len(selectors) {
	case 0:
		return fmt.Errorf("%w: exactly one of token, serial or slot-id must select the token; none given", ErrBadURI)
	case 1:
	default:
		return fmt.Errorf("%w: exactly one of token, serial or slot-id must select the token; got %s", ErrBadURI, strings.Join(selectors, " and "))
	}
	if u.ModulePath == "" {
		return fmt.Errorf("%w: module-path is required (for SoftHSM2: module-path=/usr/lib/softhsm/libsofthsm2.so)", ErrBadURI)
	}
	switch {
	case u.PinSource != "" && u.PinValue != "":
		return fmt.Errorf("%w: give either pin-source or pin-value, not both", ErrBadURI)
	case u.PinSource == "" && u.PinValue == "":
		return fmt.Errorf("%w: pin-source is required (pin-source=file:/path/to/pin or pin-source=env:VARIABLE)", ErrBadURI)
	}
	if u.PinSource != "" {
		kind, ref := u.pinSourceParts()
		if ref == "" {
			return fmt.Errorf("%w: pin-source %q names no %s", ErrBadURI, u.PinSource, kind)
		}
	}
	return nil
}

// splitNonEmpty splits s by sep; an empty s gives no parts.
func splitNonEmpty(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

// decodeAttr splits and percent-decodes one name=value attribute and refuses
// a repeated name (RFC 7512 §2.3: an attribute must not appear twice).
func decodeAttr(attr string, seen map[string]bool) (name, value string, err error) {
	name, raw, ok := strings.Cut(attr, "=")
	if !ok || name == "" {
		return "", "", fmt.Errorf("%w: attribute %q is not of the form name=value", ErrBadURI, safeName(attr))
	}
	if seen[name] {
		return "", "", fmt.Errorf("%w: attribute %q appears more than once", ErrBadURI, name)
	}
	seen[name] = true
	value, err = url.PathUnescape(raw)
	if err != nil {
		return "", "", fmt.Errorf("%w: attribute %q has a bad percent-encoding", ErrBadURI, name)
	}
	return name, value, nil
}

// safeName keeps an attribute text out of error messages when it could be a
// PIN (a malformed "pin-value..." attribute).
func safeName(attr string) string {
	if strings.HasPrefix(attr, "pin") || len(attr) > 40 {
		return attr[:min(len(attr), 9)] + "…"
	}
	return attr
}

// pinSourceParts splits pin-source into its kind ("file" or "env") and the
// file path or variable name. A value without a scheme is a file path.
func (u *URI) pinSourceParts() (kind, ref string) {
	if v, ok := strings.CutPrefix(u.PinSource, "env:"); ok {
		return "env", v
	}
	if v, ok := strings.CutPrefix(u.PinSource, "file:"); ok {
		// Accept both file:/path and file:///path.
		if strings.HasPrefix(v, "//") {
			if pu, err := url.Parse(u.PinSource); err == nil && pu.Path != "" {
				v = pu.Path
			}
		}
		return "file", v
	}
	return "file", u.PinSource
}

// PIN returns the user PIN: pin-value, the content of the pin-source file
// (without the trailing newline), or the pin-source environment variable.
// Errors name the source, never the PIN.
func (u *URI) PIN() (string, error) {
	if u.PinValue != "" {
		return u.PinValue, nil
	}
	kind, ref := u.pinSourceParts()
	var pin string
	switch kind {
	case "env":
		v, ok := os.LookupEnv(ref)
		if !ok {
			return "", fmt.Errorf("reading PIN: environment variable %s named by pin-source is not set", ref)
		}
		pin = v
	default:
		if ref == "" {
			return "", fmt.Errorf("reading PIN: no pin-source or pin-value in the key URI")
		}
		b, err := os.ReadFile(ref)
		if err != nil {
			return "", fmt.Errorf("reading PIN from pin-source file %s: %w", ref, err)
		}
		pin = string(b)
	}
	pin = strings.TrimRight(pin, "\r\n")
	if pin == "" {
		return "", fmt.Errorf("reading PIN: %s is empty", u.pinSourceName())
	}
	return pin, nil
}

// pinSourceName describes where the PIN comes from, for error messages.
func (u *URI) pinSourceName() string {
	if u.PinValue != "" {
		return "pin-value of the key URI"
	}
	kind, ref := u.pinSourceParts()
	if kind == "env" {
		return "environment variable " + ref
	}
	return "file " + ref
}

// WithObject returns a copy of u that names the key with the given label
// (and no id).
func (u *URI) WithObject(label string) *URI {
	c := u.clone()
	c.Object = label
	c.ID = nil
	return c
}

func (u *URI) clone() *URI {
	c := *u
	if u.SlotID != nil {
		n := *u.SlotID
		c.SlotID = &n
	}
	if u.ID != nil {
		c.ID = append([]byte(nil), u.ID...)
	}
	return &c
}

// String returns the canonical URI: path attributes in the order token,
// serial, slot-id, object, id, then module-path and the PIN attribute, with
// values percent-encoded. A pin-value is shown as REDACTED, so the result is
// safe to log.
func (u *URI) String() string {
	var path []string
	add := func(name, value string) {
		path = append(path, name+"="+escape(value, false))
	}
	if u.Token != "" {
		add("token", u.Token)
	}
	if u.Serial != "" {
		add("serial", u.Serial)
	}
	if u.SlotID != nil {
		add("slot-id", strconv.Itoa(*u.SlotID))
	}
	if u.Object != "" {
		add("object", u.Object)
	}
	if len(u.ID) > 0 {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		path = append(path, "id="+b.String())
	}
	var query []string
	if u.ModulePath != "" {
		query = append(query, "module-path="+escape(u.ModulePath, true))
	}
	if u.PinSource != "" {
		query = append(query, "pin-source="+escape(u.PinSource, true))
	}
	if u.PinValue != "" {
		query = append(query, "pin-value="+redacted)
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// escape percent-encodes everything except RFC 3986 unreserved characters and
// ":" and "@"; in query values "/" is also left alone (RFC 7512 §2.3 q-pchar).
func escape(s string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == ':', c == '@':
			b.WriteByte(c)
		case c == '/' && query:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// selector describes the token selector for messages, e.g. `token "certdesk"`.
func (u *URI) selector() string {
	switch {
	case u.Token != "":
		return fmt.Sprintf("token %q", u.Token)
	case u.Serial != "":
		return fmt.Sprintf("serial %q", u.Serial)
	case u.SlotID != nil:
		return fmt.Sprintf("slot-id %d", *u.SlotID)
	}
	return "no token selector"
}

// SiblingURI derives, from the URI text ref, the URI of another object in
// the same token: every attribute of ref is kept exactly as written (the
// token selector, module-path, the PIN attribute, vendor x- attributes), and
// object and id are replaced by object=label. The text is edited rather than
// parsed and re-rendered because String redacts pin-value, which must
// survive. ref must be a URI ParseURI accepts; errors never repeat it.
func SiblingURI(ref, label string) (string, error) {
	if _, err := ParseURI(ref); err != nil {
		return "", err
	}
	if label == "" {
		return "", fmt.Errorf("%w: the sibling object needs a label", ErrBadURI)
	}
	const scheme = "pkcs11:"
	path, query, hasQuery := strings.Cut(ref[len(scheme):], "?")
	var attrs []string
	for _, a := range splitNonEmpty(path, ";") {
		if strings.HasPrefix(a, "object=") || strings.HasPrefix(a, "id=") {
			continue
		}
		attrs = append(attrs, a)
	}
	attrs = append(attrs, "object="+escape(label, false))
	out := ref[:len(scheme)] + strings.Join(attrs, ";")
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}
