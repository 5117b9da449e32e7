package revocation

import (
	"fmt"
	"time"
)

// DefaultOCSPSignRate is the default Settings.OCSPSignRate: a few
// percent of what one SoftHSM2 token signs per second, far above what
// honest clients of a partner CA ask for.
const DefaultOCSPSignRate = 100

// Settings tune CRLs and OCSP: the configuration file's revocation
// section. Zero values take the defaults.
type Settings struct {
	// CRLValidity is nextUpdate - thisUpdate (default 24h). A CRL is
	// regenerated at half-life, and at once after a revocation.
	CRLValidity time.Duration `yaml:"crl_validity"`
	// OCSPValidity is nextUpdate - thisUpdate of an OCSP response (default
	// 24h); pre-signed responses are refreshed at half-life.
	OCSPValidity time.Duration `yaml:"ocsp_validity"`
	// ResponderValidity is the life of a delegated responder certificate
	// (default 30 days); it is rotated when a third of it is left.
	ResponderValidity time.Duration `yaml:"ocsp_responder_validity"`
	// DisableOCSPNonce ignores the nonce of a request and returns the
	// pre-signed response, so that every answer is pre-signed; by default
	// a request with a nonce gets a fresh response (RFC 6960 §4.4.1).
	DisableOCSPNonce bool `yaml:"disable_ocsp_nonce"`
	// FallbackToCAKey signs OCSP responses with the issuing CA key when no
	// delegated responder is available.
	FallbackToCAKey bool `yaml:"ocsp_fallback_to_ca_key"`
	// OCSPSignRate caps the OCSP answers signed on request, per second:
	// those with a nonce and those for serials nobody issued. Pre-signed
	// answers are never limited. Beyond the cap a nonce request gets the
	// pre-signed answer without its nonce, and an unknown serial tryLater,
	// so that a flood of made-up requests cannot keep the HSM from issuing
	// and signing CRLs (default DefaultOCSPSignRate).
	OCSPSignRate float64 `yaml:"ocsp_sign_rate"`
}

// Validate reports the first negative value, naming its field.
func (s Settings) Validate() error {
	for _, d := range []struct {
		field string
		value time.Duration
	}{
		{"crl_validity", s.CRLValidity}, {"ocsp_validity", s.OCSPValidity}, {"ocsp_responder_validity", s.ResponderValidity},
	} {
		if d.value < 0 {
			return fmt.Errorf("revocation.%s: %s is negative", d.field, d.value)
		}
	}
	if s.OCSPSignRate < 0 {
		return fmt.Errorf("revocation.ocsp_sign_rate: %v is negative", s.OCSPSignRate)
	}
	return nil
}
