package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/certdesk/certdesk/signer"
)

// TLSConfig makes certdesk serve HTTPS itself. Without cert_file it serves
// plain HTTP (behind a gateway that terminates TLS).
type TLSConfig struct {
	// CertFile and KeyFile are the PEM server certificate (with its chain)
	// and key; both are read again when either file changes.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCertificates is "request" (default: a client may present a
	// certificate, which the routes that authenticate by it verify against
	// the issuing CA) or "off".
	ClientCertificates string `yaml:"client_certificates"`
}

// validate names the field of the first problem.
func (c TLSConfig) validate() error {
	switch {
	case c.CertFile == "" && c.KeyFile == "":
		return nil
	case c.CertFile == "" || c.KeyFile == "":
		return errors.New("tls.cert_file and tls.key_file: set both or neither")
	}
	switch c.ClientCertificates {
	case "", "request", "off":
	default:
		return fmt.Errorf("tls.client_certificates: must be request or off, got %q", c.ClientCertificates)
	}
	return nil
}

// reloadingCert serves the key pair of two files, loading it again when
// either file's modification time or size changes (checked at most once a
// second), so a renewed server certificate is used without a restart. A
// pair that does not load keeps the previous one in service.
type reloadingCert struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func fileStamp(paths ...string) (string, error) {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

func (r *reloadingCert) load() error {
	stamp, err := fileStamp(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert, r.stamp = &pair, stamp
	return nil
}

// get is tls.Config.GetCertificate.
func (r *reloadingCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		if stamp, err := fileStamp(r.certFile, r.keyFile); err == nil && stamp != r.stamp {
			if err := r.load(); err != nil {
				r.log.Error("reloading the TLS certificate failed; keeping the previous one", "cert_file", r.certFile, "err", err)
			} else {
				r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", r.cert.Leaf.NotAfter)
			}
		}
	}
	return r.cert, nil
}

// serverTLS is the TLS configuration of the listener, or nil when the
// portal serves plain HTTP. Client certificates are requested, not
// required, and not verified in the handshake: the routes that authenticate
// by them verify the chain to the issuing CA and the certificate's record,
// and answer a refusal with a clear HTTP error.
func serverTLS(cfg TLSConfig, ca *signer.CA, log *slog.Logger) (*tls.Config, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.CertFile == "" {
		return nil, nil
	}
	rc := &reloadingCert{certFile: cfg.CertFile, keyFile: cfg.KeyFile, log: log, checked: time.Now()}
	if err := rc.load(); err != nil {
		return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rc.get}
	if cfg.ClientCertificates != "off" {
		t.ClientAuth = tls.RequestClientCert
		// Names the CA in the handshake, so that clients pick the right
		// certificate.
		pool := x509.NewCertPool()
		pool.AddCert(ca.Issuer.Certificate())
		pool.AddCert(ca.Root)
		t.ClientCAs = pool
	}
	return t, nil
}
