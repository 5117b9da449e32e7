package pkcs11

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/ThalesGroup/crypto11"
)

// keySigner is the crypto.Signer handed out by Token. It keeps the key's
// label and public key and re-finds the crypto11 key after the token's
// context was re-opened, so holders never see a stale object handle.
type keySigner struct {
	t     *Token
	label string
	pub   crypto.PublicKey

	mu  sync.Mutex
	gen uint64          // context generation key belongs to
	key crypto11.Signer // nil until resolved in the current generation
}

func newKeySigner(t *Token, label string, pub crypto.PublicKey, key crypto11.Signer, gen uint64) *keySigner {
	return &keySigner{t: t, label: label, pub: pub, key: key, gen: gen}
}

// Public returns the key's public key, as read when the key was first found.
func (k *keySigner) Public() crypto.PublicKey { return k.pub }

// Sign signs digest with the key in the token. The rand argument is ignored:
// the token draws its own randomness. RSA-PSS with PSSSaltLengthAuto signs
// with a salt as long as the hash, which every PSS verifier accepts.
func (k *keySigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if pss, ok := opts.(*rsa.PSSOptions); ok && pss.SaltLength == rsa.PSSSaltLengthAuto {
		c := *pss
		c.SaltLength = rsa.PSSSaltLengthEqualsHash
		opts = &c
	}
	var sig []byte
	err := k.t.use(func(ctx *crypto11.Context, gen uint64) error {
		key, err := k.resolve(ctx, gen)
		if err != nil {
			return err
		}
		sig, err = key.Sign(rand.Reader, digest, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signing with key %q: %w", k.label, err)
	}
	return sig, nil
}

// resolve returns the crypto11 key for the context generation gen, finding
// it again (and checking it is still the same key) after a re-open.
func (k *keySigner) resolve(ctx *crypto11.Context, gen uint64) (crypto11.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil && k.gen == gen {
		return k.key, nil
	}
	key, err := findKeyPair(ctx, k.t.uri, k.label, k.pub)
	if err != nil {
		return nil, err
	}
	if k.key != nil {
		slog.Info("pkcs11: key found again after re-open", "key", k.label, "selector", k.t.uri.selector())
	}
	k.key, k.gen = key, gen
	return key, nil
}

// publicKeyEqual is implemented by the standard library's public key types.
type publicKeyEqual interface {
	Equal(crypto.PublicKey) bool
}

// findKeyPair finds the key pair labelled label. When want is set the key
// must have that public key: a key replaced under the same label is not
// silently used by signers that already published the old public key.
func findKeyPair(ctx *crypto11.Context, u *URI, label string, want crypto.PublicKey) (crypto11.Signer, error) {
	keys, err := ctx.FindKeyPairs(nil, []byte(label))
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key pair labelled %q on %s; check object= in the key URI, or create the key (certdesk ca init)",
			ErrKeyNotFound, label, u.selector())
	}
	if want != nil {
		for _, k := range keys {
			if eq, ok := k.Public().(publicKeyEqual); ok && eq.Equal(want) {
				return k, nil
			}
		}
		return nil, fmt.Errorf("%w: the key labelled %q on %s is not the key loaded before (its public key changed); restart certdesk after replacing a CA key",
			ErrKeyNotFound, label, u.selector())
	}
	if len(keys) > 1 {
		return nil, fmt.Errorf("%d key pairs are labelled %q on %s; labels must be unique: delete the duplicates", len(keys), label, u.selector())
	}
	return keys[0], nil
}

// Signer returns a crypto.Signer for the key pair labelled label. The key is
// looked up once and the signer cached: the same label gives the same
// signer. It returns an error wrapping ErrKeyNotFound when no key pair has
// that label.
func (t *Token) Signer(label string) (crypto.Signer, error) {
	if label == "" {
		return nil, fmt.Errorf("%w: no key label given (object= in the key URI)", ErrKeyNotFound)
	}
	t.smu.Lock()
	ks := t.signers[label]
	t.smu.Unlock()
	if ks != nil {
		return ks, nil
	}
	var found *keySigner
	err := t.use(func(ctx *crypto11.Context, gen uint64) error {
		key, err := findKeyPair(ctx, t.uri, label, nil)
		if err != nil {
			return err
		}
		found = newKeySigner(t, label, key.Public(), key, gen)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading key %q: %w", label, err)
	}
	return t.cache(found), nil
}

// cache stores ks unless a signer for its label is already cached, and
// returns the cached one.
func (t *Token) cache(ks *keySigner) *keySigner {
	t.smu.Lock()
	defer t.smu.Unlock()
	if t.signers == nil {
		t.signers = map[string]*keySigner{}
	}
	if old := t.signers[ks.label]; old != nil {
		return old
	}
	t.signers[ks.label] = ks
	return ks
}
