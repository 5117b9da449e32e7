package signer_test

import (
	"testing"

	"github.com/certdesk/certdesk/signer"
)

func TestSiblingKeyRef_NextToTheIssuingKey(t *testing.T) {
	const q = "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
	tests := []struct {
		name, ref, label, want string
	}{
		{"software key: same directory", "demo-file:/var/lib/certdesk/ca/issuing.pem", "ocsp-1", "demo-file:/var/lib/certdesk/ca/ocsp-1.pem"},
		{"software key: relative path", "demo-file:ca/issuing.pem", "ocsp-1", "demo-file:ca/ocsp-1.pem"},
		{"pkcs11: same token, PIN kept", "pkcs11:token=certdesk;object=issuing-ca" + q, "ocsp-1", "pkcs11:token=certdesk;object=ocsp-1" + q},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := signer.SiblingKeyRef(tt.ref, tt.label)
			if err != nil || got != tt.want {
				t.Errorf("SiblingKeyRef(%q, %q) = %q, %v; want %q", tt.ref, tt.label, got, err, tt.want)
			}
		})
	}
}

func TestSiblingKeyRef_BadInput_IsRefused(t *testing.T) {
	tests := []struct{ name, ref, label string }{
		{"software label with a path", "demo-file:/ca/issuing.pem", "../escape"},
		{"software label empty", "demo-file:/ca/issuing.pem", ""},
		{"neither scheme", "/ca/issuing.pem", "ocsp-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := signer.SiblingKeyRef(tt.ref, tt.label); err == nil {
				t.Errorf("SiblingKeyRef(%q, %q) = %q, want an error", tt.ref, tt.label, got)
			}
		})
	}
}
