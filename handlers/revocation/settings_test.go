package revocation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/revocation"
)

func TestSettingsValidate_NegativeValues_NameTheField(t *testing.T) {
	tests := []struct {
		name string
		s    revocation.Settings
		want string // "" = valid
	}{
		{"zero values take the defaults", revocation.Settings{}, ""},
		{"set values", revocation.Settings{CRLValidity: time.Hour, OCSPValidity: time.Hour, ResponderValidity: 48 * time.Hour, OCSPSignRate: 2.5}, ""},
		{"negative crl_validity", revocation.Settings{CRLValidity: -time.Hour}, "revocation.crl_validity"},
		{"negative ocsp_validity", revocation.Settings{OCSPValidity: -time.Hour}, "revocation.ocsp_validity"},
		{"negative ocsp_responder_validity", revocation.Settings{ResponderValidity: -time.Hour}, "revocation.ocsp_responder_validity"},
		{"negative ocsp_sign_rate", revocation.Settings{OCSPSignRate: -1}, "revocation.ocsp_sign_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
