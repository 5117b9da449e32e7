package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/certdesk/certdesk/signer/pkcs11"
)

// SoftwareKeyPrefix starts a key reference to a file-backed software key.
// Such keys exist only for the one-command demo: they are
// refused unless the caller explicitly allows them.
const SoftwareKeyPrefix = "demo-file:"

// ErrSoftwareKeyRefused is a software key reference outside demo mode.
var ErrSoftwareKeyRefused = errors.New("file-backed software keys are for the demo only; use a pkcs11: URI")

// Keys resolves CA key references: RFC 7512 PKCS#11 URIs, and in demo mode
// "demo-file:/path/key.pem".
type Keys struct {
	// AllowSoftware permits demo-file: references (certdesk demo only).
	AllowSoftware bool
}

// IsSoftware reports whether ref names a demo software key.
func IsSoftware(ref string) bool { return strings.HasPrefix(ref, SoftwareKeyPrefix) }

// SiblingKeyRef derives the reference of another key next to ref's, named
// label: for a PKCS#11 URI the same token, module and PIN source with
// object=label (pkcs11.SiblingURI); for a software key the file label.pem in
// the same directory.
func SiblingKeyRef(ref, label string) (string, error) {
	if IsSoftware(ref) {
		if label == "" || strings.ContainsAny(label, `/\`) || label == "." || label == ".." {
			return "", fmt.Errorf("software key label %q must be a plain file name", label)
		}
		path := strings.TrimPrefix(ref, SoftwareKeyPrefix)
		return SoftwareKeyPrefix + filepath.Join(filepath.Dir(path), label+".pem"), nil
	}
	return pkcs11.SiblingURI(ref, label)
}

// Find returns the signer for ref; pkcs11.ErrKeyNotFound (or fs.ErrNotExist
// for a software key) when it does not exist.
func (k Keys) Find(ref string) (crypto.Signer, error) {
	if IsSoftware(ref) {
		if !k.AllowSoftware {
			return nil, ErrSoftwareKeyRefused
		}
		return loadSoftwareKey(strings.TrimPrefix(ref, SoftwareKeyPrefix))
	}
	u, tok, err := k.token(ref)
	if err != nil {
		return nil, err
	}
	return tok.Signer(u.Object)
}

// Create makes a new key for ref of the given type ("EC-P256", "EC-P384",
// "RSA-3072", "RSA-4096"); it refuses when the key exists.
func (k Keys) Create(ref, keyType string) (crypto.Signer, error) {
	kt, err := pkcs11.ParseKeyType(keyType)
	if err != nil {
		return nil, err
	}
	if IsSoftware(ref) {
		if !k.AllowSoftware {
			return nil, ErrSoftwareKeyRefused
		}
		return createSoftwareKey(strings.TrimPrefix(ref, SoftwareKeyPrefix), kt)
	}
	u, tok, err := k.token(ref)
	if err != nil {
		return nil, err
	}
	return tok.GenerateKey(u.Object, kt)
}

// IsNotFound reports whether err means "no such key".
func IsNotFound(err error) bool {
	return errors.Is(err, pkcs11.ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist)
}

func (k Keys) token(ref string) (*pkcs11.URI, *pkcs11.Token, error) {
	u, err := pkcs11.ParseURI(ref)
	if err != nil {
		return nil, nil, err
	}
	if u.Object == "" {
		return nil, nil, fmt.Errorf("%w: key URI %s names no object (add ;object=<label>)", pkcs11.ErrBadURI, u)
	}
	tok, err := pkcs11.Open(u)
	if err != nil {
		return nil, nil, err
	}
	return u, tok, nil
}

func loadSoftwareKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM private key", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}

func createSoftwareKey(path string, kt pkcs11.KeyType) (crypto.Signer, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", pkcs11.ErrKeyExists, path)
	}
	var key crypto.Signer
	var err error
	switch kt {
	case pkcs11.KeyECP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case pkcs11.KeyECP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case pkcs11.KeyRSA3072:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case pkcs11.KeyRSA4096:
		key, err = rsa.GenerateKey(rand.Reader, 4096)
	default:
		return nil, fmt.Errorf("unsupported key type %s", kt)
	}
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der, Headers: map[string]string{"Comment": "certdesk demo key - not for production"}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
