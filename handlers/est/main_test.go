package est

import (
	"testing"

	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
)

var token *softhsmtest.Token

func TestMain(m *testing.M) { softhsmtest.Main(m, "certdesk", &token) }
