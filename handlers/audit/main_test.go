package audit_test

import (
	"context"
	"testing"

	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/certdesk/certdesk/signer/signertest"
)

// token is this test binary's SoftHSM2 token: SOFTHSM2_CONF is read once,
// at the first PKCS#11 configuration in the process.
var token *softhsmtest.Token

func TestMain(m *testing.M) { softhsmtest.Main(m, "certdesk", &token) }

var (
	bg       = context.Background()
	admin    = modelstest.Admin
	testLogs = modelstest.Logs
)

// testCA is a CA hierarchy whose keys are in the token.
type testCA = signertest.CA

// hsmCA creates (once per name) a hierarchy in the token.
func hsmCA(t testing.TB, name string) *testCA { return signertest.HSMCA(t, token, name) }
