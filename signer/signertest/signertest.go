// Package signertest makes CA hierarchies whose keys are in a SoftHSM2
// test token, for the tests of the services that issue, revoke and sign
// checkpoints.
package signertest

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
)

// CA is a root and an issuing CA whose keys are in the token, as
// `certdesk ca init` makes them.
type CA struct {
	Config signer.CAConfig
	CA     *signer.CA
}

var cas sync.Map // token dir + name → *CA

// HSMCA creates (once per token and name) a hierarchy in token, with
// keys labelled <name>-root and <name>-issuing, and loads it.
func HSMCA(t testing.TB, token *softhsmtest.Token, name string) *CA {
	t.Helper()
	key := token.Dir + "\x00" + name
	if v, ok := cas.Load(key); ok {
		return v.(*CA)
	}
	cfg := signer.CAConfig{
		Dir:        filepath.Join(token.Dir, "ca-"+name),
		RootKey:    token.URI(name + "-root"),
		IssuingKey: token.URI(name + "-issuing"),
		Root:       signer.CAName{CommonName: "certdesk Test Root " + name, Organization: "certdesk tests"},
		Issuing:    signer.CAName{CommonName: "certdesk Test Issuing " + name, Organization: "certdesk tests"},
	}
	if _, err := signer.InitCA(cfg, signer.Keys{}, "http://127.0.0.1", false, time.Now()); err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	ca, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, "http://127.0.0.1", time.Now())
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	v, _ := cas.LoadOrStore(key, &CA{Config: cfg, CA: ca})
	return v.(*CA)
}
