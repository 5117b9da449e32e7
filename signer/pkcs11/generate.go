package pkcs11

import (
	"crypto"
	"crypto/rand"
	"fmt"

	"github.com/ThalesGroup/crypto11"
)

// GenerateKey creates a key pair of type kt labelled label in the token and
// returns its signer (cached like Signer's). The private key is a token
// object that is private, sensitive and never extractable, may sign and may
// not decrypt, unwrap or derive; the public key may verify and may not
// encrypt or wrap. crypto11 would silently create a second key with an
// existing label, so GenerateKey looks first and returns an error wrapping
// ErrKeyExists when any private key already has the label.
func (t *Token) GenerateKey(label string, kt KeyType) (crypto.Signer, error) {
	if label == "" {
		return nil, fmt.Errorf("generating key: empty label")
	}
	curve, bits := kt.curve(), kt.rsaBits()
	if curve == nil && bits == 0 {
		return nil, fmt.Errorf("generating key %q: unsupported key type %q: use one of %s", label, kt, joinKeyTypes())
	}
	// Serialise find-then-create within the process; keys are created by
	// `certdesk ca init`, never by replicas racing each other.
	t.genMu.Lock()
	defer t.genMu.Unlock()

	var ks *keySigner
	err := t.use(func(ctx *crypto11.Context, gen uint64) error {
		privs, err := ctx.FindPrivateKeys(nil, []byte(label))
		if err != nil {
			return err
		}
		if len(privs) > 0 {
			return fmt.Errorf("%w: a key labelled %q is already on %s; use it, or choose another label", ErrKeyExists, label, t.uri.selector())
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		pub, priv, err := keyTemplates(id, label, kt)
		if err != nil {
			return err
		}
		var key crypto11.Signer
		if curve != nil {
			key, err = ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, curve)
		} else {
			key, err = ctx.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
		}
		if err != nil {
			return err
		}
		ks = newKeySigner(t, label, key.Public(), key, gen)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generating %s key %q: %w", kt, label, err)
	}
	return t.cache(ks), nil
}

// keyTemplates returns the public and private key attribute templates
// (PKCS#11 v2.40 §4.8 and §4.9) for a CA key.
func keyTemplates(id []byte, label string, kt KeyType) (pub, priv crypto11.AttributeSet, err error) {
	if pub, err = crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label)); err != nil {
		return nil, nil, err
	}
	if priv, err = crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label)); err != nil {
		return nil, nil, err
	}
	pubAttrs := map[crypto11.AttributeType]bool{
		crypto11.CkaToken:  true,
		crypto11.CkaVerify: true,
	}
	privAttrs := map[crypto11.AttributeType]bool{
		crypto11.CkaToken:       true,
		crypto11.CkaPrivate:     true,
		crypto11.CkaSign:        true,
		crypto11.CkaSensitive:   true,
		crypto11.CkaExtractable: false,
		crypto11.CkaDecrypt:     false,
	}
	if kt.rsaBits() > 0 {
		pubAttrs[crypto11.CkaEncrypt] = false
		pubAttrs[crypto11.CkaWrap] = false
		privAttrs[crypto11.CkaUnwrap] = false
	} else {
		privAttrs[crypto11.CkaDerive] = false
	}
	for a, v := range pubAttrs {
		if err := pub.Set(a, v); err != nil {
			return nil, nil, err
		}
	}
	for a, v := range privAttrs {
		if err := priv.Set(a, v); err != nil {
			return nil, nil, err
		}
	}
	return pub, priv, nil
}
