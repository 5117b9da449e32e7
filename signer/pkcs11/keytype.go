package pkcs11

import (
	"crypto/elliptic"
	"fmt"
	"strings"
)

// KeyType names a CA key algorithm that can be generated in the token.
// crypto11 has no Ed25519, so CA keys are ECDSA or RSA.
type KeyType string

// The key types a CA key may have.
const (
	KeyECP256  KeyType = "EC-P256"
	KeyECP384  KeyType = "EC-P384"
	KeyRSA3072 KeyType = "RSA-3072"
	KeyRSA4096 KeyType = "RSA-4096"
)

// KeyTypes lists every supported key type, in the order they are documented.
var KeyTypes = []KeyType{KeyECP256, KeyECP384, KeyRSA3072, KeyRSA4096}

// ParseKeyType parses a key type name. Matching ignores case, "-" and "_",
// and the "EC" prefix is optional, so "EC-P256", "ec_p256" and "P-256" are the
// same type.
func ParseKeyType(s string) (KeyType, error) {
	norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToUpper(strings.TrimSpace(s)))
	norm = strings.TrimPrefix(norm, "EC")
	switch norm {
	case "P256":
		return KeyECP256, nil
	case "P384":
		return KeyECP384, nil
	case "RSA3072":
		return KeyRSA3072, nil
	case "RSA4096":
		return KeyRSA4096, nil
	}
	return "", fmt.Errorf("unsupported key type %q: use one of %s", s, joinKeyTypes())
}

func joinKeyTypes() string {
	names := make([]string, len(KeyTypes))
	for i, kt := range KeyTypes {
		names[i] = string(kt)
	}
	return strings.Join(names, ", ")
}

// curve returns the elliptic curve of an EC key type, or nil for RSA.
func (kt KeyType) curve() elliptic.Curve {
	switch kt {
	case KeyECP256:
		return elliptic.P256()
	case KeyECP384:
		return elliptic.P384()
	}
	return nil
}

// rsaBits returns the modulus size of an RSA key type, or 0 for EC.
func (kt KeyType) rsaBits() int {
	switch kt {
	case KeyRSA3072:
		return 3072
	case KeyRSA4096:
		return 4096
	}
	return 0
}
