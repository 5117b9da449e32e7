// Package deploy_test validates the deployment files in deploy/ and the
// repository's docker-compose.yml: no Docker engine or Kubernetes cluster
// runs on our machines, so the structure is checked here instead, with the
// same parsers and types the real tools use where we can run them
// (kustomize, k8s.io/api, systemd-analyze, nginx -t).
package deploy_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// repo is the repository root, relative to this package's directory.
const repo = ".."

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, path))
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return b
}

// --- docker-compose.yml --------------------------------------------------

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Secrets  map[string]composeSecret  `yaml:"secrets"`
}

type composeService struct {
	Image       string                      `yaml:"image"`
	Build       *composeBuild               `yaml:"build"`
	Entrypoint  []string                    `yaml:"entrypoint"`
	Command     []string                    `yaml:"command"`
	Environment map[string]string           `yaml:"environment"`
	Secrets     []string                    `yaml:"secrets"`
	Volumes     []string                    `yaml:"volumes"`
	Ports       []string                    `yaml:"ports"`
	DependsOn   map[string]composeCondition `yaml:"depends_on"`
	Healthcheck *composeHealthcheck         `yaml:"healthcheck"`
	Restart     string                      `yaml:"restart"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeCondition struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

type composeSecret struct {
	File string `yaml:"file"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, "docker-compose.yml")))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func TestCompose_DefinesPostgresKeycloakAndCertdesk(t *testing.T) {
	c := loadCompose(t)
	tests := []struct {
		service   string
		image     string // prefix; empty: built
		ports     []string
		secrets   []string
		volumes   []string // prefixes
		dependsOn []string
		health    string // a word the healthcheck test must contain
	}{
		{
			service: "postgres", image: "postgres:15",
			secrets: []string{"postgres_password"},
			volumes: []string{"postgres-data:/var/lib/postgresql/data"},
			health:  "pg_isready",
		},
		{
			service: "keycloak", image: "quay.io/keycloak/keycloak:",
			ports:   []string{"127.0.0.1:8180:8180"},
			secrets: []string{"keycloak_admin_password", "oidc_client_secret", "demo_user_password"},
			volumes: []string{"./deploy/keycloak/certdesk-realm.json:/opt/keycloak/data/import/"},
			health:  "/health/ready",
		},
		{
			service:   "certdesk",
			ports:     []string{"127.0.0.1:8080:8080"},
			secrets:   []string{"hsm_pin", "oidc_client_secret", "session_key", "database_dsn"},
			volumes:   []string{"certdesk-data:/var/lib/certdesk", "./deploy/certdesk.compose.yaml:/etc/certdesk/certdesk.yaml"},
			dependsOn: []string{"postgres", "keycloak"},
			health:    "/healthz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s, ok := c.Services[tt.service]
			if !ok {
				t.Fatalf("service %q is missing", tt.service)
			}
			if tt.image != "" && !strings.HasPrefix(s.Image, tt.image) {
				t.Errorf("image = %q, want %s…", s.Image, tt.image)
			}
			for _, p := range tt.ports {
				if !slices.Contains(s.Ports, p) {
					t.Errorf("ports %v lack %q", s.Ports, p)
				}
			}
			for _, sec := range tt.secrets {
				if !slices.Contains(s.Secrets, sec) {
					t.Errorf("secrets %v lack %q", s.Secrets, sec)
				}
				if _, ok := c.Secrets[sec]; !ok {
					t.Errorf("secret %q is not defined at the top level", sec)
				}
			}
			for _, v := range tt.volumes {
				if !slices.ContainsFunc(s.Volumes, func(m string) bool { return strings.HasPrefix(m, v) }) {
					t.Errorf("volumes %v lack %q", s.Volumes, v)
				}
			}
			for _, d := range tt.dependsOn {
				if s.DependsOn[d].Condition != "service_healthy" {
					t.Errorf("depends_on %s: condition %q, want service_healthy", d, s.DependsOn[d].Condition)
				}
			}
			if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), tt.health) {
				t.Errorf("healthcheck %+v does not check %s", s.Healthcheck, tt.health)
			}
			for _, e := range s.Environment {
				if looksSecret(e) {
					t.Errorf("environment carries what looks like a secret value: %q", e)
				}
			}
		})
	}
}

// looksSecret reports a long random-looking value.
func looksSecret(v string) bool {
	return len(v) >= 20 && regexp.MustCompile(`^[A-Za-z0-9+_=-]+$`).MatchString(v)
}

func TestCompose_CertdeskInitialisesTokenAndCABeforeServing(t *testing.T) {
	s := loadCompose(t).Services["certdesk"]
	if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
		t.Fatalf("certdesk must be built from deploy/Dockerfile, got %+v", s.Build)
	}
	script := strings.Join(s.Command, " ")
	order := []string{"certdesk-softhsm-init", "certdesk ca init --config /etc/certdesk/certdesk.yaml", "exec certdesk serve --config /etc/certdesk/certdesk.yaml"}
	last := -1
	for _, step := range order {
		i := strings.Index(script, step)
		if i < 0 || i < last {
			t.Fatalf("command %q must run, in order: %q", script, order)
		}
		last = i
	}
	if s.Environment["SOFTHSM2_CONF"] == "" || !strings.HasPrefix(s.Environment["SOFTHSM2_CONF"], "/var/lib/certdesk/") {
		t.Errorf("SOFTHSM2_CONF = %q, want a file in the certdesk-data volume", s.Environment["SOFTHSM2_CONF"])
	}
}

func TestCompose_SecretsAreFilesThatGitIgnores(t *testing.T) {
	c := loadCompose(t)
	readme := string(readFile(t, "deploy/secrets/README.md"))
	ignore := string(readFile(t, ".gitignore"))
	if !strings.Contains(ignore, "/deploy/secrets/*") || !strings.Contains(ignore, "!/deploy/secrets/README.md") {
		t.Errorf(".gitignore must ignore /deploy/secrets/* except README.md")
	}
	if len(c.Secrets) == 0 {
		t.Fatal("no secrets defined")
	}
	for name, s := range c.Secrets {
		if s.File != "./deploy/secrets/"+name {
			t.Errorf("secret %s: file %q, want ./deploy/secrets/%s", name, s.File, name)
		}
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("deploy/secrets/README.md does not describe %s", name)
		}
	}
	entries, err := os.ReadDir(filepath.Join(repo, "deploy/secrets"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "README.md" {
			continue
		}
		out, err := exec.Command("git", "-C", repo, "check-ignore", "-q", "deploy/secrets/"+e.Name()).CombinedOutput()
		if err != nil {
			t.Errorf("deploy/secrets/%s is not git-ignored: %v %s", e.Name(), err, out)
		}
	}
}

// --- Keycloak realm ------------------------------------------------------

type realm struct {
	Realm   string `json:"realm"`
	Enabled bool   `json:"enabled"`
	Groups  []struct {
		Name string `json:"name"`
	} `json:"groups"`
	Clients []struct {
		ClientID        string            `json:"clientId"`
		PublicClient    bool              `json:"publicClient"`
		Secret          string            `json:"secret"`
		RedirectURIs    []string          `json:"redirectUris"`
		Attributes      map[string]string `json:"attributes"`
		ProtocolMappers []struct {
			Name           string            `json:"name"`
			ProtocolMapper string            `json:"protocolMapper"`
			Config         map[string]string `json:"config"`
		} `json:"protocolMappers"`
	} `json:"clients"`
	Users []struct {
		Username    string              `json:"username"`
		Groups      []string            `json:"groups"`
		Attributes  map[string][]string `json:"attributes"`
		Credentials []struct {
			Value string `json:"value"`
		} `json:"credentials"`
	} `json:"users"`
}

func TestRealm_ClientGroupsClaimsAndDemoUsers(t *testing.T) {
	var r realm
	if err := json.Unmarshal(readFile(t, "deploy/keycloak/certdesk-realm.json"), &r); err != nil {
		t.Fatalf("certdesk-realm.json: %v", err)
	}
	if r.Realm != "certdesk" || !r.Enabled {
		t.Errorf("realm %q enabled=%v, want certdesk enabled", r.Realm, r.Enabled)
	}
	groups := []string{"certdesk-partners", "certdesk-admins", "certdesk-auditors"}
	for _, g := range groups {
		if !slices.ContainsFunc(r.Groups, func(x struct {
			Name string `json:"name"`
		}) bool {
			return x.Name == g
		}) {
			t.Errorf("group %s is missing", g)
		}
	}
	if len(r.Clients) != 1 || r.Clients[0].ClientID != "certdesk" {
		t.Fatalf("want exactly the client certdesk, got %d clients", len(r.Clients))
	}
	cl := r.Clients[0]
	if cl.PublicClient || cl.Secret != "${CERTDESK_OIDC_CLIENT_SECRET}" {
		t.Errorf("client must be confidential with its secret from the environment placeholder, got public=%v", cl.PublicClient)
	}
	if !slices.Contains(cl.RedirectURIs, "http://127.0.0.1:8080/auth/callback") {
		t.Errorf("redirect URIs %v lack the portal's /auth/callback", cl.RedirectURIs)
	}
	if cl.Attributes["pkce.code.challenge.method"] != "S256" {
		t.Errorf("PKCE method %q, want S256", cl.Attributes["pkce.code.challenge.method"])
	}
	mappers := map[string]map[string]string{}
	for _, m := range cl.ProtocolMappers {
		mappers[m.ProtocolMapper] = m.Config
	}
	if g := mappers["oidc-group-membership-mapper"]; g["claim.name"] != "groups" || g["full.path"] != "false" || g["id.token.claim"] != "true" {
		t.Errorf("group mapper %v: want claim groups, full.path false, in the ID token", g)
	}
	if o := mappers["oidc-usermodel-attribute-mapper"]; o["user.attribute"] != "org" || o["claim.name"] != "org" || o["id.token.claim"] != "true" {
		t.Errorf("org mapper %v: want attribute org as claim org in the ID token", o)
	}
	inGroup := map[string]bool{}
	for _, u := range r.Users {
		for _, g := range u.Groups {
			inGroup[strings.TrimPrefix(g, "/")] = true
		}
		if slices.Contains(u.Groups, "/certdesk-partners") && len(u.Attributes["org"]) != 1 {
			t.Errorf("partner %s has no org attribute", u.Username)
		}
		for _, c := range u.Credentials {
			if c.Value != "${CERTDESK_DEMO_PASSWORD}" {
				t.Errorf("user %s has a literal password in the realm file", u.Username)
			}
		}
	}
	for _, g := range groups {
		if !inGroup[g] {
			t.Errorf("no demo user in %s", g)
		}
	}
}

// --- Dockerfile ----------------------------------------------------------

func TestDockerfile_MultiStageNonRootWithHealthcheck(t *testing.T) {
	df := string(readFile(t, "deploy/Dockerfile"))
	want := []struct{ what, re string }{
		{"a Node 20 frontend stage", `(?m)^FROM node:20\S* AS frontend$`},
		{"npm ci and npm run build", `npm ci[^\n]*\n(?:.*\n)*RUN npm run build`},
		{"a Go 1.26 build stage", `(?m)^FROM golang:1\.26\S* AS build$`},
		{"cgo", `(?m)^ENV CGO_ENABLED=1$`},
		{"the ./cmd/certdesk build", `go build [^\n]*\./cmd/certdesk`},
		{"a debian:12-slim runtime", `(?m)^FROM debian:12-slim$`},
		{"ca-certificates and softhsm2", `ca-certificates[\s\S]*softhsm2`},
		{"a configurable PKCS#11 module", `(?m)^ENV PKCS11_MODULE=`},
		{"a non-root user", `(?m)^USER 10001:10001$`},
		{"a /healthz HEALTHCHECK", `HEALTHCHECK[\s\S]*http://127\.0\.0\.1:8080/healthz`},
		{"ENTRYPOINT certdesk", `(?m)^ENTRYPOINT \["certdesk"\]$`},
		{"CMD serve", `(?m)^CMD \["serve", "--config", "/etc/certdesk/certdesk\.yaml"\]$`},
	}
	for _, w := range want {
		if !regexp.MustCompile(w.re).MatchString(df) {
			t.Errorf("deploy/Dockerfile lacks %s (/%s/)", w.what, w.re)
		}
	}
	for _, bad := range []string{"PIN=", "SECRET=", "PASSWORD="} {
		if strings.Contains(strings.ToUpper(df), bad) {
			t.Errorf("deploy/Dockerfile sets %s: no secrets in the image", bad)
		}
	}
}

// --- the configurations load in certdesk ----------------------------------

// TestConfigs_LoadInCertdesk runs the real binary on each shipped
// configuration: loading and validating must pass, so the first error is
// reaching the (absent) database secret file.
func TestConfigs_LoadInCertdesk(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "certdesk")
	build := exec.Command("go", "build", "-o", bin, "./cmd/certdesk")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building certdesk: %v\n%s", err, out)
	}
	k8s := renderKustomize(t)
	var k8sConfig string
	for _, o := range k8s {
		if o.kind == "ConfigMap" && strings.HasPrefix(o.name, "certdesk-config") {
			var cm corev1.ConfigMap
			if err := sigsyaml.UnmarshalStrict(o.raw, &cm); err != nil {
				t.Fatal(err)
			}
			k8sConfig = filepath.Join(t.TempDir(), "certdesk.yaml")
			if err := os.WriteFile(k8sConfig, []byte(cm.Data["certdesk.yaml"]), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if k8sConfig == "" {
		t.Fatal("kustomize rendered no certdesk-config ConfigMap")
	}
	tests := []struct{ name, path, wantErr string }{
		{"compose", filepath.Join(repo, "deploy/certdesk.compose.yaml"), "database.dsn_file: open /run/secrets/database_dsn"},
		{"kubernetes", k8sConfig, "database.dsn_file: open /run/secrets/certdesk/database-dsn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, "migrate", "--config", tt.path)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.wantErr) {
				t.Fatalf("certdesk migrate --config %s: err %v, output %q; want the configuration to load and the run to stop at %q", tt.path, err, out, tt.wantErr)
			}
		})
	}
}

// --- Kubernetes ----------------------------------------------------------

type k8sObject struct {
	kind, name string
	raw        []byte
}

// renderKustomize runs kustomize build deploy/kubernetes and splits the
// output into objects.
func renderKustomize(t *testing.T) []k8sObject {
	t.Helper()
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env GOPATH: %v", err)
	}
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "kustomize")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kustomize is not installed at %s (.ci/testenv.sh installs it: go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1): %v", bin, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "build", filepath.Join(repo, "deploy/kubernetes"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build deploy/kubernetes: %v\n%s", err, stderr.String())
	}
	var objs []k8sObject
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered object does not parse: %v\n%s", err, doc)
		}
		objs = append(objs, k8sObject{kind: meta.Kind, name: meta.Metadata.Name, raw: []byte(doc)})
	}
	return objs
}

func TestKustomize_RendersObjectsThatDecodeStrictly(t *testing.T) {
	objs := renderKustomize(t)
	var (
		deploys  []appsv1.Deployment
		services []corev1.Service
		pdbs     []policyv1.PodDisruptionBudget
		secrets  []corev1.Secret
		cms      []corev1.ConfigMap
	)
	for _, o := range objs {
		var err error
		switch o.kind {
		case "Deployment":
			var d appsv1.Deployment
			err = sigsyaml.UnmarshalStrict(o.raw, &d)
			deploys = append(deploys, d)
		case "Service":
			var s corev1.Service
			err = sigsyaml.UnmarshalStrict(o.raw, &s)
			services = append(services, s)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			err = sigsyaml.UnmarshalStrict(o.raw, &p)
			pdbs = append(pdbs, p)
		case "Secret":
			var s corev1.Secret
			err = sigsyaml.UnmarshalStrict(o.raw, &s)
			secrets = append(secrets, s)
		case "ConfigMap":
			var c corev1.ConfigMap
			err = sigsyaml.UnmarshalStrict(o.raw, &c)
			cms = append(cms, c)
		default:
			t.Errorf("rendered %s %s: no decoder for this kind; add one to the test", o.kind, o.name)
			continue
		}
		if err != nil {
			t.Errorf("%s %s does not decode strictly into k8s.io/api: %v", o.kind, o.name, err)
		}
	}
	if len(deploys) != 1 || len(services) != 1 || len(pdbs) != 1 || len(secrets) != 1 || len(cms) != 2 {
		t.Fatalf("want 1 Deployment, 1 Service, 1 PodDisruptionBudget, 1 Secret, 2 ConfigMaps; got %d, %d, %d, %d, %d",
			len(deploys), len(services), len(pdbs), len(secrets), len(cms))
	}
	d, svc, pdb, sec := deploys[0], services[0], pdbs[0], secrets[0]

	t.Run("replicas", func(t *testing.T) {
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
		}
	})
	pod := d.Spec.Template.Spec
	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "certdesk" {
			c = &pod.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("no container named certdesk")
	}
	t.Run("probes", func(t *testing.T) {
		probes := []struct {
			name string
			p    *corev1.Probe
			path string
		}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}}
		for _, p := range probes {
			if p.p == nil || p.p.HTTPGet == nil || p.p.HTTPGet.Path != p.path || p.p.HTTPGet.Port.String() != "http" {
				t.Errorf("%s probe %+v, want GET %s on port http", p.name, p.p, p.path)
			}
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 8080 }) {
			t.Errorf("container ports %v lack http 8080", c.Ports)
		}
	})
	t.Run("non-root read-only", func(t *testing.T) {
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("pod securityContext %+v, want runAsNonRoot with a non-zero runAsUser", psc)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container securityContext %+v, want a read-only root fs, no privilege escalation, all capabilities dropped", sc)
		}
	})
	t.Run("secrets mounted", func(t *testing.T) {
		for _, k := range []string{"hsm-pin", "oidc-client-secret", "session-key", "database-dsn", "metrics-token"} {
			if _, ok := sec.StringData[k]; !ok {
				t.Errorf("Secret %s lacks key %s", sec.Name, k)
			}
			if v := sec.StringData[k]; v != "" {
				t.Errorf("Secret %s key %s has a committed value", sec.Name, k)
			}
		}
		vol := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == sec.Name })
		if vol < 0 {
			t.Fatalf("no volume mounts Secret %s", sec.Name)
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == pod.Volumes[vol].Name && m.MountPath == "/run/secrets/certdesk" && m.ReadOnly
		}) {
			t.Errorf("Secret volume %s is not mounted read-only at /run/secrets/certdesk", pod.Volumes[vol].Name)
		}
		for _, name := range []string{"config", "ca", "pkcs11"} {
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == name }) {
				t.Errorf("volume %s is not mounted", name)
			}
		}
	})
	t.Run("service and PDB select the pods", func(t *testing.T) {
		labels := d.Spec.Template.Labels
		for k, v := range svc.Spec.Selector {
			if labels[k] != v {
				t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, labels)
			}
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("PDB minAvailable %v, want 1", pdb.Spec.MinAvailable)
		}
		for k, v := range pdb.Spec.Selector.MatchLabels {
			if labels[k] != v {
				t.Errorf("PDB selector %s=%s does not match the pod labels %v", k, v, labels)
			}
		}
	})
}

// --- systemd -------------------------------------------------------------

func TestSystemdUnit_VerifiesAndIsHardened(t *testing.T) {
	unit := string(readFile(t, "deploy/systemd/certdesk.service"))
	keys := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("line %q is not key=value", line)
			continue
		}
		keys[k] = append(keys[k], v)
	}
	want := map[string]string{
		"User": "certdesk", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
		"ReadWritePaths": "/var/lib/certdesk", "ProtectHome": "yes",
		"ExecStart": "/usr/local/bin/certdesk serve --config /etc/certdesk/certdesk.yaml",
	}
	for k, v := range want {
		if !slices.Contains(keys[k], v) {
			t.Errorf("%s = %v, want %s", k, keys[k], v)
		}
	}
	for _, cred := range []string{"hsm-pin", "oidc-client-secret", "session-key", "database-dsn"} {
		if !slices.ContainsFunc(keys["LoadCredential"], func(v string) bool { return strings.HasPrefix(v, cred+":") }) {
			t.Errorf("no LoadCredential for %s", cred)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: checked the keys only")
		return
	}
	// verify also checks that ExecStart exists: point it at a stand-in.
	dir := t.TempDir()
	stub := filepath.Join(dir, "certdesk")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "certdesk.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/certdesk", stub)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// --- gateways --------------------------------------------------------------

// pki writes a root, an issuing CA, both CRLs and a server certificate into
// dir, in the shapes certdesk publishes (/ca/bundle.pem, /crl/bundle.pem).
func pki(t *testing.T, dir string) (caBundle, crlBundle, serverCert, serverKey string) {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mk := func(tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	rootKey, issKey, srvKey := newKey(), newKey(), newKey()
	caTmpl := func(n int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	root := mk(caTmpl(1, "test root"), caTmpl(1, "test root"), &rootKey.PublicKey, rootKey)
	iss := mk(caTmpl(2, "test issuing"), root, &issKey.PublicKey, rootKey)
	srv := mk(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "api.example.com"}, DNSNames: []string{"api.example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, iss, &srvKey.PublicKey, issKey)
	crl := func(ca *x509.Certificate, key *ecdsa.PrivateKey) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, ca, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	certPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	files := map[string][]byte{
		"ca-bundle.pem":  append(certPEM(iss), certPEM(root)...),
		"crl-bundle.pem": append(crl(iss, issKey), crl(root, rootKey)...),
		"server.pem":     append(certPEM(srv), certPEM(iss)...),
		"server.key":     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "ca-bundle.pem"), filepath.Join(dir, "crl-bundle.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
}

func TestNginxConfig_PassesNginxTest(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatalf("nginx is not installed (.ci/testenv.sh installs nginx-light): %v", err)
		}
		nginx = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	ca, crl, cert, key := pki(t, dir)
	conf := string(readFile(t, "deploy/nginx/certdesk-mtls.conf"))
	for _, want := range []string{"ssl_verify_client      on;", "ssl_verify_depth       2;", "$ssl_client_s_dn", "$ssl_client_escaped_cert"} {
		if !strings.Contains(conf, want) {
			t.Errorf("certdesk-mtls.conf lacks %q", want)
		}
	}
	conf = strings.NewReplacer(
		"/etc/nginx/certdesk/ca-bundle.pem", ca,
		"/etc/nginx/certdesk/crl-bundle.pem", crl,
		"/etc/nginx/tls/api.example.com.pem", cert,
		"/etc/nginx/tls/api.example.com.key", key,
		"/var/log/nginx/", dir+"/",
		"listen 443 ssl;", "listen 127.0.0.1:18443 ssl;",
	).Replace(conf)
	if err := os.WriteFile(filepath.Join(dir, "certdesk-mtls.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	main := "pid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log;\nevents {}\nhttp {\n" +
		"  access_log off;\n  client_body_temp_path " + dir + "/body;\n  proxy_temp_path " + dir + "/proxy;\n" +
		"  fastcgi_temp_path " + dir + "/fcgi;\n  uwsgi_temp_path " + dir + "/uwsgi;\n  scgi_temp_path " + dir + "/scgi;\n" +
		"  include " + dir + "/certdesk-mtls.conf;\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func TestGatewayConfigs_UseBothCRLsAndPassTheIdentity(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"deploy/envoy/envoy.yaml", []string{"require_client_certificate: true", "trusted_ca: { filename: /etc/envoy/certdesk/ca-bundle.pem }",
			"crl: { filename: /etc/envoy/certdesk/crl-bundle.pem }", "forward_client_cert_details: SANITIZE_SET", "uri: true"}},
		{"deploy/haproxy/haproxy.cfg", []string{"ca-file /etc/haproxy/certdesk/ca-bundle.pem", "crl-file /etc/haproxy/certdesk/crl-bundle.pem",
			"verify required", "ssl_c_s_dn", "ssl_c_der,base64"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			b := readFile(t, tt.file)
			for _, w := range tt.want {
				if !bytes.Contains(b, []byte(w)) {
					t.Errorf("%s lacks %q", tt.file, w)
				}
			}
			if strings.HasSuffix(tt.file, ".yaml") {
				var v map[string]any
				if err := yaml.Unmarshal(b, &v); err != nil {
					t.Errorf("%s is not YAML: %v", tt.file, err)
				}
			}
		})
	}
}
