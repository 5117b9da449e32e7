package web

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/certauth"
)

// ClientCertConfig says where client certificates come from: the TLS
// connection when certdesk terminates TLS itself, or a header set by a
// gateway that terminates TLS, read only from the gateway's addresses.
type ClientCertConfig struct {
	// Header carries the client certificate as nginx's
	// $ssl_client_escaped_cert writes it (URL-encoded PEM), e.g.
	// "X-SSL-Client-Cert". Empty: no forwarded certificates.
	Header string `yaml:"header"`
	// TrustedProxies are the addresses or CIDR ranges of the gateways
	// allowed to set Header. From any other peer the header is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// ClientCerts finds a request's client certificate.
type ClientCerts struct {
	header  string
	proxies []netip.Prefix
	log     *slog.Logger
}

// NewClientCerts checks cfg (naming the field of a problem) and returns
// the finder.
func NewClientCerts(cfg ClientCertConfig, log *slog.Logger) (*ClientCerts, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc := &ClientCerts{header: http.CanonicalHeaderKey(strings.TrimSpace(cfg.Header)), log: log}
	if cc.header != "" && len(cfg.TrustedProxies) == 0 {
		return nil, fmt.Errorf("client_certificates.trusted_proxies: required with client_certificates.header (only a gateway may forward a certificate)")
	}
	if cc.header == "" && len(cfg.TrustedProxies) > 0 {
		return nil, fmt.Errorf("client_certificates.header: required with client_certificates.trusted_proxies")
	}
	for _, p := range cfg.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("client_certificates.trusted_proxies: %q is neither an address nor a CIDR range", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		cc.proxies = append(cc.proxies, pfx.Masked())
	}
	return cc, nil
}

// trusted reports whether the direct peer of r is a trusted gateway.
func (cc *ClientCerts) trusted(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range cc.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Middleware puts the request's client certificate (not yet verified) into
// its context for certauth: the forwarded one when the peer is a trusted
// gateway, else the one of the TLS connection. A forwarded header from
// anyone else is ignored and logged.
func (cc *ClientCerts) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			var cert *x509.Certificate
			if cc.header != "" {
				if v := r.Header.Get(cc.header); v != "" {
					if cc.trusted(r) {
						cert = parseForwarded(v)
					} else {
						cc.log.WarnContext(r.Context(), "ignoring a forwarded client certificate from an untrusted peer",
							"header", cc.header, "peer", r.RemoteAddr)
					}
				}
			}
			if cert == nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				cert = r.TLS.PeerCertificates[0]
			}
			if cert != nil {
				c.SetRequest(r.WithContext(certauth.WithPeer(r.Context(), cert)))
			}
			return next(c)
		}
	}
}

// parseForwarded reads nginx's $ssl_client_escaped_cert (URL-encoded PEM).
func parseForwarded(v string) *x509.Certificate {
	text, err := url.PathUnescape(v) // not QueryUnescape: a "+" of the base64 stays "+"
	if err != nil {
		return nil
	}
	b, _ := pem.Decode([]byte(text))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return cert
}
