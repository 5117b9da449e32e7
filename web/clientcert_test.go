package web_test

import (
	"strings"
	"testing"

	"github.com/certdesk/certdesk/web"
)

func TestNewClientCerts_RefusesAHeaderWithoutTrustedProxiesAndBadAddresses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     web.ClientCertConfig
		wantErr string
	}{
		{"nothing forwarded", web.ClientCertConfig{}, ""},
		{"a gateway by address and by range", web.ClientCertConfig{Header: "X-SSL-Client-Cert", TrustedProxies: []string{"10.1.2.3", "fd00::/8"}}, ""},
		{"a header trusted from anyone", web.ClientCertConfig{Header: "X-SSL-Client-Cert"}, "client_certificates.trusted_proxies"},
		{"proxies without a header", web.ClientCertConfig{TrustedProxies: []string{"10.1.2.3"}}, "client_certificates.header"},
		{"a proxy that is no address", web.ClientCertConfig{Header: "X-SSL-Client-Cert", TrustedProxies: []string{"gateway.example"}}, "neither an address nor a CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := web.NewClientCerts(tc.cfg, nil)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("NewClientCerts: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("NewClientCerts: %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
}
