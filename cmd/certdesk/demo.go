package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web/devidp"
)

func init() { register("demo", demo) }

// softHSMModule is Debian's SoftHSM2 PKCS#11 module.
const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// demo runs the whole portal on one machine: SQLite in DIR, the CA in a
// SoftHSM2 token made in DIR (or, without SoftHSM2, a labelled software key),
// and the built-in development OIDC provider with demo users. It writes
// DIR/certdesk.yaml so that operator commands work against it. None of this
// is reachable from `certdesk serve`: serve refuses demo software keys and
// never starts the development provider.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.addr, err)
	}
	portalURL := "http://" + ln.Addr().String()
	softhsm := softHSMAvailable() && !f.softwareKey
	cfgPath, err := writeDemoConfig(f.dir, ln.Addr().String(), portalURL, "http://"+f.idpAddr, softhsm)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if err := demoCA(cfg, f.dir, softhsm, log); err != nil {
		return err
	}
	if err := demoOrg(ctx, cfg); err != nil {
		return err
	}
	idp, err := startDemoIdP(ctx, cfg, f.idpAddr, portalURL, log)
	if err != nil {
		return err
	}
	defer idp.Close()
	keyKind := "SoftHSM2 token in " + filepath.Join(f.dir, "softhsm")
	if !softhsm {
		keyKind = "demo key — not for production (install softhsm2 for a PKCS#11 token)"
	}
	return runPortal(ctx, cfg, portalOptions{AllowSoftwareKey: !softhsm, Demo: true, Listener: ln}, log, func(string) {
		fmt.Fprintf(stdout, demoBanner, portalURL, idp.Issuer, keyKind, cfg.CA.Dir, cfg.Database.DSN, cfgPath, cfgPath)
	})
}

// demoFlags are the demo command's flags.
type demoFlags struct {
	dir         string // absolute --data
	addr        string
	idpAddr     string
	softwareKey bool
}

// parseDemoFlags reads the demo's flags; the provider's address defaults
// to the portal's port + 1.
func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	fs := newFlags("demo", stderr)
	data := fs.String("data", "demo-data", "folder for the database, token, CA and configuration")
	addr := fs.String("addr", "127.0.0.1:8080", "address of the portal")
	idpAddr := fs.String("idp-addr", "", "address of the demo OIDC provider (default: the portal's port + 1)")
	softwareKey := fs.Bool("software-key", false, "keep the demo CA key in a file even when SoftHSM2 is installed (labelled: not for production)")
	if err := fs.Parse(args); err != nil {
		return demoFlags{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return demoFlags{}, fmt.Errorf("%w: --addr: %v", errUsage, err)
	}
	if *idpAddr == "" {
		p, _ := strconv.Atoi(port)
		*idpAddr = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	dir, err := filepath.Abs(*data)
	if err != nil {
		return demoFlags{}, err
	}
	return demoFlags{dir: dir, addr: *addr, idpAddr: *idpAddr, softwareKey: *softwareKey}, nil
}

// demoCA makes the demo's CA once: in a SoftHSM2 token in dir when
// softhsm, else with the labelled software key.
func demoCA(cfg *Config, dir string, softhsm bool, log *slog.Logger) error {
	if softhsm {
		if err := demoToken(dir); err != nil {
			return fmt.Errorf("preparing the demo SoftHSM2 token: %w", err)
		}
	} else {
		log.Warn("the demo CA uses a file-backed software key — demo key, not for production (install softhsm2 for a PKCS#11 token)")
	}
	rep, err := signer.InitCA(cfg.CA, signer.Keys{AllowSoftware: !softhsm}, cfg.PKIURL, false, time.Now())
	if err != nil {
		return fmt.Errorf("creating the demo CA: %w", err)
	}
	for _, c := range rep.Created {
		log.Info("demo CA: created " + c)
	}
	return nil
}

// startDemoIdP starts the development OIDC provider with the demo users
// and the portal as its one client.
func startDemoIdP(ctx context.Context, cfg *Config, addr, portalURL string, log *slog.Logger) (*devidp.Provider, error) {
	secret, _ := os.ReadFile(cfg.OIDC.ClientSecretFile)
	idp, err := devidp.Start(ctx, devidp.Config{
		Addr: addr, Users: devidp.DemoUsers(), Demo: true, Logger: log,
		Clients: []devidp.Client{{
			ID: cfg.OIDC.ClientID, Secret: strings.TrimSpace(string(secret)),
			RedirectURIs: []string{portalURL + "/auth/callback"}, PostLogoutRedirectURIs: []string{portalURL + "/"},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the demo OIDC provider on %s: %w", addr, err)
	}
	return idp, nil
}

// demoBanner is printed once the demo serves: the portal and provider
// URLs, the key, CA files, database and configuration.
const demoBanner = `
certdesk demo is running: %s

  sign in as   partner  (organisation acme: requests and downloads certificates)
               admin    (approves requests, manages organisations, revokes)
               auditor  (reads the history, exports, verifies the audit chain)
  at the demo identity provider %s (no passwords; demo only)

  CA key:      %s
  CA files:    %s
  database:    %s
  config:      %s   (e.g. certdesk token create --config %s --subject ci --role partner --org acme)

Press Ctrl-C to stop.
`

func softHSMAvailable() bool {
	if _, err := os.Stat(softHSMModule); err != nil {
		return false
	}
	_, err := exec.LookPath("softhsm2-util")
	return err == nil
}

var demoConfig = template.Must(template.New("cfg").Parse(`# Written by certdesk demo. Demo only: the OIDC provider it names runs
# inside "certdesk demo" and nowhere else.
listen: {{.Listen}}
public_url: {{.URL}}
database:
  driver: sqlite
  dsn: {{.Dir}}/certdesk.db
ca:
  dir: {{.Dir}}/ca
  root_key: "{{.RootKey}}"
  issuing_key: "{{.IssuingKey}}"
  root:
    common_name: certdesk Demo Root CA
    organization: certdesk demo
  issuing:
    common_name: certdesk Demo Issuing CA
    organization: certdesk demo
oidc:
  issuer: {{.IdP}}
  client_id: certdesk-demo
  client_secret_file: {{.Dir}}/oidc-client-secret
  roles:
    partner: [certdesk-partners]
    admin: [certdesk-admins]
    auditor: [certdesk-auditors]
session:
  key_file: {{.Dir}}/session.key
`))

func writeDemoConfig(dir, listen, url, idp string, softhsm bool) (string, error) {
	for _, f := range []string{"oidc-client-secret", "session.key", "pin"} {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	v := map[string]string{"Listen": listen, "URL": url, "Dir": dir, "IdP": idp}
	if softhsm {
		q := "?module-path=" + softHSMModule + "&pin-source=file:" + filepath.Join(dir, "pin")
		v["RootKey"] = "pkcs11:token=certdesk-demo;object=root-ca" + q
		v["IssuingKey"] = "pkcs11:token=certdesk-demo;object=issuing-ca" + q
	} else {
		v["RootKey"] = signer.SoftwareKeyPrefix + filepath.Join(dir, "demo-keys", "root-ca.key")
		v["IssuingKey"] = signer.SoftwareKeyPrefix + filepath.Join(dir, "demo-keys", "issuing-ca.key")
	}
	var b strings.Builder
	if err := demoConfig.Execute(&b, v); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "certdesk.yaml")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// demoToken makes the demo's SoftHSM2 token in DIR/softhsm once, and points
// SOFTHSM2_CONF at it before anything opens the PKCS#11 module.
func demoToken(dir string) error {
	tokDir := filepath.Join(dir, "softhsm", "tokens")
	conf := filepath.Join(dir, "softhsm", "softhsm2.conf")
	if err := os.MkdirAll(tokDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return err
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	entries, err := os.ReadDir(tokDir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return nil
	}
	pin, err := os.ReadFile(filepath.Join(dir, "pin"))
	if err != nil {
		return err
	}
	so := make([]byte, 16)
	_, _ = rand.Read(so)
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "certdesk-demo",
		"--pin", strings.TrimSpace(string(pin)), "--so-pin", base64.RawURLEncoding.EncodeToString(so))
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm2-util --init-token: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// demoOrg creates the demo organisation acme once.
func demoOrg(ctx context.Context, cfg *Config) error {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.GetOrg(ctx, "acme"); err == nil {
		return nil
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	return store.CreateOrg(ctx, models.Actor{Subject: "system:demo", Role: models.RoleSystem, Source: "demo"}, &models.Organization{
		Slug: "acme", Name: "Acme Corp",
		URIPrefixes:     models.StringList{"spiffe://demo.certdesk.test/partners/acme/"},
		DNSSuffixes:     models.StringList{"acme.example"},
		EmailDomains:    models.StringList{"acme.example"},
		MaxValidityDays: 90,
	})
}
