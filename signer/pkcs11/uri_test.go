package pkcs11

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const so = "/usr/lib/softhsm/libsofthsm2.so"

func intp(n int) *int { return &n }

func TestParseURI_GoodURIs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want URI
	}{
		{"token label with pin-source file", "pkcs11:token=certdesk;object=issuing-ca?module-path=" + so + "&pin-source=file:/run/secrets/pin",
			URI{Token: "certdesk", Object: "issuing-ca", ModulePath: so, PinSource: "file:/run/secrets/pin"}},
		{"serial with pin-source env", "pkcs11:serial=0123456789abcdef;object=root?module-path=" + so + "&pin-source=env:HSM_PIN",
			URI{Serial: "0123456789abcdef", Object: "root", ModulePath: so, PinSource: "env:HSM_PIN"}},
		{"slot-id with pin-value", "pkcs11:slot-id=7?module-path=" + so + "&pin-value=1234",
			URI{SlotID: intp(7), ModulePath: so, PinValue: "1234"}},
		{"percent-encoded label, object, id, path and pin", "pkcs11:token=Cert%20Desk%3B1;object=ca%2Fkey;id=%01%02%ff?module-path=/opt/my%20hsm/lib.so&pin-value=p%26ss",
			URI{Token: "Cert Desk;1", Object: "ca/key", ID: []byte{1, 2, 0xff}, ModulePath: "/opt/my hsm/lib.so", PinValue: "p&ss"}},
		{"bare pin-source path", "pkcs11:token=t?module-path=" + so + "&pin-source=/run/pin",
			URI{Token: "t", ModulePath: so, PinSource: "/run/pin"}},
		{"scheme in capitals, type=private and vendor attribute", "PKCS11:token=t;type=private;x-vendor=1?module-path=" + so + "&pin-value=1&x-q=2",
			URI{Token: "t", ModulePath: so, PinValue: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURI(tt.in)
			if err != nil {
				t.Fatalf("ParseURI: %v", err)
			}
			if got.Token != tt.want.Token || got.Serial != tt.want.Serial || got.Object != tt.want.Object ||
				!bytes.Equal(got.ID, tt.want.ID) || got.ModulePath != tt.want.ModulePath ||
				got.PinSource != tt.want.PinSource || got.PinValue != tt.want.PinValue ||
				(got.SlotID == nil) != (tt.want.SlotID == nil) || (got.SlotID != nil && *got.SlotID != *tt.want.SlotID) {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseURI_BadURIs_NameTheProblemAndHideThePIN(t *testing.T) {
	q := "?module-path=" + so + "&pin-value=s3cret"
	tests := []struct {
		name     string
		in       string
		wantText string
	}{
		{"wrong scheme", "pkcs12:token=t" + q, `must start with "pkcs11:"`},
		{"empty", "", `must start with "pkcs11:"`},
		{"no selector", "pkcs11:object=k" + q, "token, serial or slot-id must select the token; none given"},
		{"token and serial", "pkcs11:token=t;serial=1" + q, "got token and serial"},
		{"token and slot-id", "pkcs11:token=t;slot-id=1" + q, "got token and slot-id"},
		{"all three", "pkcs11:token=t;serial=1;slot-id=1" + q, "got token and serial and slot-id"},
		{"missing module", "pkcs11:token=t?pin-value=s3cret", "module-path is required"},
		{"no pin", "pkcs11:token=t?module-path=" + so, "pin-source is required"},
		{"pin-source and pin-value", "pkcs11:token=t" + q + "&pin-source=file:/x", "either pin-source or pin-value"},
		{"empty pin-source file", "pkcs11:token=t?module-path=" + so + "&pin-source=file:", "names no file"},
		{"empty pin-source env", "pkcs11:token=t?module-path=" + so + "&pin-source=env:", "names no env"},
		{"bad slot-id", "pkcs11:slot-id=one" + q, "slot-id must be a non-negative decimal number"},
		{"negative slot-id", "pkcs11:slot-id=-1" + q, "slot-id must be a non-negative"},
		{"bad percent-encoding", "pkcs11:token=a%zz" + q, `attribute "token" has a bad percent-encoding`},
		{"bad percent-encoding in pin", "pkcs11:token=t?module-path=" + so + "&pin-value=s3cret%z", `attribute "pin-value" has a bad percent-encoding`},
		{"repeated attribute", "pkcs11:token=a;token=b" + q, `attribute "token" appears more than once`},
		{"attribute without value", "pkcs11:token" + q, "not of the form name=value"},
		{"pin attribute without =", "pkcs11:token=t?module-path=" + so + "&pin-values3cret", "not of the form name=value"},
		{"unknown path attribute", "pkcs11:token=t;manufacturer=x" + q, `path attribute "manufacturer" is not supported`},
		{"unknown query attribute", "pkcs11:token=t" + q + "&module-name=softhsm2", `query attribute "module-name" is not supported`},
		{"public key type", "pkcs11:token=t;type=public" + q, "type=public is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseURI(tt.in)
			if err == nil {
				t.Fatalf("ParseURI accepted it: %+v", u)
			}
			if !errors.Is(err, ErrBadURI) {
				t.Errorf("error %v does not wrap ErrBadURI", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q contains the PIN", err)
			}
		})
	}
}

func TestURIString_IsCanonicalAndRedactsThePIN(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"attributes in canonical order", "pkcs11:object=k;token=t?pin-source=file:/run/pin&module-path=" + so,
			"pkcs11:token=t;object=k?module-path=" + so + "&pin-source=file:/run/pin"},
		{"pin-value redacted", "pkcs11:token=t;object=k?module-path=" + so + "&pin-value=s3cret",
			"pkcs11:token=t;object=k?module-path=" + so + "&pin-value=REDACTED"},
		{"serial, escapes and id", "pkcs11:serial=ab;object=ca%3Bkey;id=%01%ab?module-path=/a%20b/l.so&pin-source=env:PIN",
			"pkcs11:serial=ab;object=ca%3Bkey;id=%01%AB?module-path=/a%20b/l.so&pin-source=env:PIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseURI(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("String() = %s\nwant       %s", got, tt.want)
			}
			again, err := ParseURI(u.String())
			if err != nil || again.String() != u.String() {
				t.Errorf("String() does not parse back to itself: %v, %v", again, err)
			}
		})
	}
}

func TestURIWithObject_CopiesAndReplacesTheLabel(t *testing.T) {
	u, err := ParseURI("pkcs11:slot-id=3;object=a;id=%01?module-path=" + so + "&pin-value=1")
	if err != nil {
		t.Fatal(err)
	}
	c := u.WithObject("b")
	if c.Object != "b" || c.ID != nil || *c.SlotID != 3 || c.PinValue != "1" {
		t.Errorf("WithObject = %+v", *c)
	}
	*c.SlotID = 4
	if u.Object != "a" || *u.SlotID != 3 || len(u.ID) != 1 {
		t.Errorf("WithObject changed the original: %+v", *u)
	}
}

func TestURIPIN_ReadsEachSourceAndNeverEchoesThePIN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pinFile := write("pin", "s3cret\n")
	crlfFile := write("pin-crlf", "s3cret\r\n")
	emptyFile := write("empty", "\n")
	t.Setenv("CERTDESK_TEST_PIN", "s3cret")
	t.Setenv("CERTDESK_TEST_EMPTY_PIN", "")

	tests := []struct {
		name    string
		uri     URI
		want    string
		wantErr string
	}{
		{"pin-value", URI{PinValue: "s3cret"}, "s3cret", ""},
		{"file: source, trailing newline trimmed", URI{PinSource: "file:" + pinFile}, "s3cret", ""},
		{"file:// source", URI{PinSource: "file://" + pinFile}, "s3cret", ""},
		{"bare path, CRLF trimmed", URI{PinSource: crlfFile}, "s3cret", ""},
		{"env source", URI{PinSource: "env:CERTDESK_TEST_PIN"}, "s3cret", ""},
		{"missing file", URI{PinSource: "file:" + filepath.Join(dir, "nope")}, "", "reading PIN from pin-source file " + filepath.Join(dir, "nope")},
		{"empty file", URI{PinSource: "file:" + emptyFile}, "", "file " + emptyFile + " is empty"},
		{"unset variable", URI{PinSource: "env:CERTDESK_TEST_NO_SUCH_PIN"}, "", "environment variable CERTDESK_TEST_NO_SUCH_PIN named by pin-source is not set"},
		{"empty variable", URI{PinSource: "env:CERTDESK_TEST_EMPTY_PIN"}, "", "environment variable CERTDESK_TEST_EMPTY_PIN is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.uri.PIN()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("PIN() error = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q contains the PIN", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("PIN() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseKeyType_AcceptsTheFourCAKeyTypes(t *testing.T) {
	tests := []struct {
		in      string
		want    KeyType
		wantErr bool
	}{
		{"EC-P256", KeyECP256, false},
		{"ec-p384", KeyECP384, false},
		{"P-256", KeyECP256, false},
		{"RSA-3072", KeyRSA3072, false},
		{"rsa_4096", KeyRSA4096, false},
		{"RSA-2048", "", true},
		{"Ed25519", "", true},
		{"EC-P521", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKeyType(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseKeyType(%q) = %q, %v", tt.in, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), "EC-P256, EC-P384, RSA-3072, RSA-4096") {
				t.Errorf("error %q does not list the supported types", err)
			}
		})
	}
}

func TestSiblingURI_SameTokenModuleAndPINSourceAnotherObject(t *testing.T) {
	const mod = "module-path=" + so
	tests := []struct {
		name, ref, label, want string
	}{
		{"token, object, pin-source file:", "pkcs11:token=certdesk;object=issuing-ca?" + mod + "&pin-source=file:/run/secrets/pin", "ocsp-202601021504",
			"pkcs11:token=certdesk;object=ocsp-202601021504?" + mod + "&pin-source=file:/run/secrets/pin"},
		{"pin-source file:/// kept as written", "pkcs11:token=certdesk;object=issuing-ca?" + mod + "&pin-source=file:///run/secrets/pin", "ocsp-1",
			"pkcs11:token=certdesk;object=ocsp-1?" + mod + "&pin-source=file:///run/secrets/pin"},
		{"pin-source env:", "pkcs11:token=certdesk;object=issuing-ca?" + mod + "&pin-source=env:HSM_PIN", "ocsp-1",
			"pkcs11:token=certdesk;object=ocsp-1?" + mod + "&pin-source=env:HSM_PIN"},
		{"pin-value survives, percent-encoding and all", "pkcs11:token=certdesk;object=issuing-ca?" + mod + "&pin-value=p%26ss", "ocsp-1",
			"pkcs11:token=certdesk;object=ocsp-1?" + mod + "&pin-value=p%26ss"},
		{"id= is dropped", "pkcs11:token=certdesk;id=%01%02?" + mod + "&pin-source=env:P", "ocsp-1",
			"pkcs11:token=certdesk;object=ocsp-1?" + mod + "&pin-source=env:P"},
		{"object and id both dropped", "pkcs11:object=ca;token=certdesk;id=%01?" + mod + "&pin-source=env:P", "ocsp-1",
			"pkcs11:token=certdesk;object=ocsp-1?" + mod + "&pin-source=env:P"},
		{"serial selector", "pkcs11:serial=0123456789abcdef;object=ca?" + mod + "&pin-source=env:P", "ocsp-1",
			"pkcs11:serial=0123456789abcdef;object=ocsp-1?" + mod + "&pin-source=env:P"},
		{"slot-id selector", "pkcs11:slot-id=7;object=ca?" + mod + "&pin-value=1234", "ocsp-1",
			"pkcs11:slot-id=7;object=ocsp-1?" + mod + "&pin-value=1234"},
		{"no object yet", "pkcs11:token=t?" + mod + "&pin-value=1", "ocsp-1",
			"pkcs11:token=t;object=ocsp-1?" + mod + "&pin-value=1"},
		{"type, vendor path and query attributes kept, in order", "PKCS11:token=Cert%20Desk;type=private;x-vendor=1;object=ca?x-q=2&" + mod + "&pin-source=env:P", "ocsp-1",
			"PKCS11:token=Cert%20Desk;type=private;x-vendor=1;object=ocsp-1?x-q=2&" + mod + "&pin-source=env:P"},
		{"label percent-encoded", "pkcs11:token=t;object=ca?" + mod + "&pin-value=1", "ocsp key;2",
			"pkcs11:token=t;object=ocsp%20key%3B2?" + mod + "&pin-value=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SiblingURI(tt.ref, tt.label)
			if err != nil {
				t.Fatalf("SiblingURI: %v", err)
			}
			if got != tt.want {
				t.Errorf("SiblingURI =\n %s\nwant\n %s", got, tt.want)
			}
			ref, _ := ParseURI(tt.ref)
			sib, err := ParseURI(got)
			if err != nil {
				t.Fatalf("the sibling does not parse: %v", err)
			}
			if sib.Object != tt.label || sib.ID != nil || sib.Token != ref.Token || sib.Serial != ref.Serial ||
				(sib.SlotID == nil) != (ref.SlotID == nil) || sib.ModulePath != ref.ModulePath ||
				sib.PinSource != ref.PinSource || sib.PinValue != ref.PinValue {
				t.Errorf("sibling %+v of %+v", *sib, *ref)
			}
		})
	}
}

func TestSiblingURI_BadReference_IsRefusedWithoutRepeatingIt(t *testing.T) {
	tests := []struct{ name, ref, label string }{
		{"not pkcs11", "demo-file:/ca/issuing.pem", "ocsp-1"},
		{"no module", "pkcs11:token=t;object=ca?pin-value=s3cret", "ocsp-1"},
		{"two selectors", "pkcs11:token=t;slot-id=1?module-path=" + so + "&pin-value=s3cret", "ocsp-1"},
		{"no label", "pkcs11:token=t;object=ca?module-path=" + so + "&pin-value=s3cret", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SiblingURI(tt.ref, tt.label)
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("SiblingURI = %q, %v; want ErrBadURI", got, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the PIN: %v", err)
			}
		})
	}
}
