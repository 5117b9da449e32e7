// Package serial is the one form of a certificate serial number that the
// signer, the store and the API share. A Number prints as OpenSSL prints a
// serial (`openssl x509 -noout -serial`, nginx's $ssl_client_serial): the
// big-endian magnitude bytes in upper-case hex, two digits a byte, so that a
// serial copied from a gateway log matches the portal's.
//
// The package imports only the standard library, so that models can use it
// without depending on the signer.
package serial

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxOctets is the longest serial a conforming CA issues (RFC 5280
// §4.1.2.2: at most 20 octets).
const MaxOctets = 20

// ErrInvalid is wrapped by every Parse error.
var ErrInvalid = errors.New("invalid serial")

// Number is a non-negative certificate serial number. The zero Number is
// "no serial"; it is comparable, so it serves as a map key.
type Number struct {
	hex string // upper case, two digits a byte, no leading zero byte ("00" for zero)
}

// Parse reads a serial in hex: any case, with or without colons between
// bytes (as `openssl x509 -text` prints them), with or without leading zeros
// or a "0x" prefix. It refuses anything else, zero, and serials longer than
// MaxOctets, with an error that wraps ErrInvalid.
func Parse(s string) (Number, error) {
	t := strings.TrimSpace(s)
	if len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") {
		t = t[2:]
	}
	if strings.HasPrefix(t, ":") || strings.HasSuffix(t, ":") || strings.Contains(t, "::") {
		return Number{}, fmt.Errorf("%w %q: colons go only between bytes", ErrInvalid, s)
	}
	t = strings.ReplaceAll(t, ":", "")
	if t == "" {
		return Number{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	for i := 0; i < len(t); i++ {
		if !isHex(t[i]) {
			return Number{}, fmt.Errorf("%w %q: only hex digits and colons are allowed", ErrInvalid, s)
		}
	}
	t = strings.TrimLeft(t, "0")
	if t == "" {
		return Number{}, fmt.Errorf("%w %q: a serial is positive (RFC 5280 §4.1.2.2)", ErrInvalid, s)
	}
	if len(t)%2 == 1 {
		t = "0" + t
	}
	if len(t) > 2*MaxOctets {
		return Number{}, fmt.Errorf("%w %q: longer than %d octets (RFC 5280 §4.1.2.2)", ErrInvalid, s, MaxOctets)
	}
	return Number{hex: strings.ToUpper(t)}, nil
}

// FromBig returns the Number of n, which must be non-negative. A certificate
// or OCSP request parsed by crypto/x509 or x/crypto/ocsp carries its serial
// as a *big.Int; this is the one way from there to a Number.
func FromBig(n *big.Int) (Number, error) {
	switch {
	case n == nil:
		return Number{}, fmt.Errorf("%w: none", ErrInvalid)
	case n.Sign() < 0:
		return Number{}, fmt.Errorf("%w: %v is negative", ErrInvalid, n)
	case n.Sign() == 0:
		return Number{hex: "00"}, nil
	}
	return Number{hex: fmt.Sprintf("%X", n.Bytes())}, nil
}

// String is the OpenSSL form, e.g. "089CFEDD…"; "" for the zero Number.
func (n Number) String() string { return n.hex }

// IsZero reports whether n is the zero Number (no serial).
func (n Number) IsZero() bool { return n.hex == "" }

// Big returns n as a new *big.Int (nil for the zero Number), the form
// crypto/x509 templates and ASN.1 encoders take.
func (n Number) Big() *big.Int {
	if n.hex == "" {
		return nil
	}
	b, _ := new(big.Int).SetString(n.hex, 16)
	return b
}

// MarshalText implements encoding.TextMarshaler with the OpenSSL form.
func (n Number) MarshalText() ([]byte, error) { return []byte(n.hex), nil }

// UnmarshalText implements encoding.TextUnmarshaler with Parse.
func (n *Number) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
