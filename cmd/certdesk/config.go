package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/certdesk/certdesk/handlers/audit"
	"github.com/certdesk/certdesk/handlers/notify"
	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

// Config is certdesk's configuration file. Each section belongs to the
// package that uses it; this file only composes and loads them.
type Config struct {
	// Listen is the address the portal listens on.
	Listen string `yaml:"listen"`
	// PublicURL is the portal's URL as browsers and API clients see it.
	PublicURL string `yaml:"public_url"`
	// PKIURL is the plain-http base written into certificates for CRLs, OCSP
	// and CA certificates (RFC 5280 §4.2.1.13); defaults to PublicURL when
	// that is http.
	PKIURL        string              `yaml:"pki_url"`
	Database      models.Config       `yaml:"database"`
	CA            signer.CAConfig     `yaml:"ca"`
	Profile       signer.Profile      `yaml:"profile"`
	OIDC          web.OIDCConfig      `yaml:"oidc"`
	Session       web.SessionConfig   `yaml:"session"`
	Revocation    revocation.Settings `yaml:"revocation"`
	Notifications notify.Config       `yaml:"notifications"`
	Metrics       MetricsConfig       `yaml:"metrics"`
	Audit         AuditConfig         `yaml:"audit"`
	Log           LogConfig           `yaml:"log"`
	// TLS makes the portal terminate TLS itself; ClientCertificates says
	// where client certificates come from (the TLS connection, or a
	// trusted gateway's header).
	TLS                TLSConfig            `yaml:"tls"`
	ClientCertificates web.ClientCertConfig `yaml:"client_certificates"`
}

// AuditConfig is the audit trail's signed checkpoints.
type AuditConfig struct {
	// CheckpointInterval is how often the chain head is signed with the
	// issuing CA key when it has moved (default 10m, 1m to 24h).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// MetricsConfig protects GET /metrics. Without a token it needs no
// credentials, for a scrape over a private network.
type MetricsConfig struct {
	// BearerTokenFile holds the token Prometheus sends (authorization:
	// credentials_file); at least 16 characters. CERTDESK_METRICS_TOKEN may
	// hold the token instead.
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// LogConfig is logging.
type LogConfig struct {
	Level string `yaml:"level"` // debug, info, warn, error
}

// loadConfig reads path strictly (an unknown key is an error naming it),
// applies CERTDESK_* environment overrides, fills defaults and validates.
func loadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := applyEnv(reflect.ValueOf(cfg).Elem(), "CERTDESK", os.LookupEnv); err != nil {
		return nil, err
	}
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.PKIURL == "" && strings.HasPrefix(c.PublicURL, "http://") {
		c.PKIURL = c.PublicURL
	}
	c.PKIURL = strings.TrimRight(c.PKIURL, "/")
	c.Database = c.Database.WithDefaults()
	c.CA = c.CA.WithDefaults()
	c.Profile = c.Profile.WithDefaults()
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = audit.DefaultCheckpointEvery
	}
	c.OIDC = c.OIDC.WithDefaults()
	c.Session = c.Session.WithDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

func (c *Config) validate() error {
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public_url: %q is not an http(s) URL", c.PublicURL)
	}
	if c.PKIURL == "" {
		return errors.New("pki_url is required when public_url is https: CRL, OCSP and CA certificate URLs must be plain http (RFC 5280 §4.2.1.13)")
	}
	if u, err := url.Parse(c.PKIURL); err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("pki_url: %q must be a plain http:// URL (relying parties fetch it while validating; RFC 5280 §4.2.1.13)", c.PKIURL)
	}
	for _, section := range []interface{ Validate() error }{c.Database, c.CA, c.Profile, c.OIDC, c.Session, c.Revocation} {
		if err := section.Validate(); err != nil {
			return err
		}
	}
	if i := c.Audit.CheckpointInterval; i < time.Minute || i > 24*time.Hour {
		return fmt.Errorf("audit.checkpoint_interval: %s is not between 1m and 24h", i)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	return nil
}

// applyEnv overrides scalar fields from environment variables named after
// their YAML path: ca.issuing_key is CERTDESK_CA_ISSUING_KEY.
func applyEnv(v reflect.Value, prefix string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, lookup); err != nil {
				return err
			}
			continue
		}
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setScalar(fv, s); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	return nil
}

func setScalar(fv reflect.Value, s string) error {
	if fv.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(f)
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return errors.New("unsupported list type")
		}
		parts := strings.Split(s, ",")
		fv.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
