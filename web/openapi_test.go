package web_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/web"
)

// documentedPrefixes are the route prefixes the OpenAPI document must cover
// the REST API and the public CA, CRL, OCSP and health
// endpoints. The browser app, /auth/* and /metrics are not part of it.
var documentedPrefixes = []string{"/api/v1/", "/ca/", "/crl/", "/ocsp", "/healthz", "/readyz"}

// testServer builds the real server with every optional route enabled. No
// request reaches a store, so the handlers need no dependencies.
func testServer(t *testing.T) *echo.Echo {
	t.Helper()
	return web.New(web.Deps{
		Log:          slog.New(slog.DiscardHandler),
		Auth:         &web.Auth{},
		Requests:     &handlers.Requests{},
		Certificates: &handlers.Certificates{},
		Orgs:         &handlers.Orgs{},
		Users:        &handlers.Users{},
		Tokens:       &handlers.Tokens{},
		BlockedKeys:  &handlers.BlockedKeys{},
		Audit:        &handlers.Audit{},
		CAFiles:      &handlers.CAFiles{},
		Health:       &handlers.Health{},
		Stats:        &handlers.Stats{},
		ACMEBindings: &handlers.ACMEBindings{},
		Renew:        &handlers.Renew{},
		Frontend:     fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}},
	})
}

// openAPIDoc is the part of an OpenAPI document these tests read.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

var (
	echoParam = regexp.MustCompile(`:[^/]+|\*`) // echo's :id and trailing *
	specParam = regexp.MustCompile(`\{[^}/]+\}`)
)

// routeKey normalises a method and path so that echo's "/requests/:id" and
// "/ocsp/*" match OpenAPI's "/requests/{id}" and "/ocsp/{request}".
func routeKey(method, path string, param *regexp.Regexp) string {
	return strings.ToUpper(method) + " " + param.ReplaceAllString(path, "{}")
}

// mustBeDocumented reports whether r is one of the routes the document
// must describe. Catch-alls that only answer 404 are not API routes: echo's
// group fallbacks (method echo.RouteNotFound) and /api/v1/*.
func mustBeDocumented(r *echo.Route) bool {
	if r.Method == echo.RouteNotFound || r.Path == "/api/v1/*" {
		return false
	}
	for _, p := range documentedPrefixes {
		if strings.HasPrefix(r.Path, p) || r.Path == strings.TrimSuffix(p, "/") {
			return true
		}
	}
	return false
}

// undocumented lists the routes of routes that spec does not describe, as
// "METHOD /path" in echo's notation, sorted.
func undocumented(routes []*echo.Route, spec []byte) ([]string, error) {
	var doc openAPIDoc
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, err
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			documented[routeKey(method, path, specParam)] = true
		}
	}
	var missing []string
	for _, r := range routes {
		if mustBeDocumented(r) && !documented[routeKey(r.Method, r.Path, echoParam)] {
			missing = append(missing, r.Method+" "+r.Path)
		}
	}
	sort.Strings(missing)
	return slices.Compact(missing), nil
}

func TestOpenAPI_DocumentsEveryRegisteredRoute(t *testing.T) {
	e := testServer(t)
	checked := 0
	for _, r := range e.Routes() {
		if mustBeDocumented(r) {
			checked++
		}
	}
	// A guard against a filter that silently checks nothing: web.New
	// registers over thirty such routes.
	if checked < 30 {
		t.Fatalf("only %d routes under %v found in web.New; the route filter is broken", checked, documentedPrefixes)
	}
	t.Logf("%d routes of web.New checked against the spec", checked)
	missing, err := undocumented(e.Routes(), handlers.OpenAPISpec())
	if err != nil {
		t.Fatalf("handlers/openapi.json is not valid JSON: %v", err)
	}
	if len(missing) > 0 {
		t.Errorf("routes registered by web.New but missing from handlers/openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
}

func TestOpenAPI_RouteMissingFromSpec_IsReported(t *testing.T) {
	e := testServer(t)
	tests := []struct {
		name       string
		path       string // removed from a copy of the spec
		method     string // "" removes the whole path item
		wantReport []string
	}{
		{name: "path with echo parameter", path: "/api/v1/requests/{id}/approve",
			wantReport: []string{"POST /api/v1/requests/:id/approve"}},
		{name: "one method of a path", path: "/api/v1/orgs/{slug}", method: "put",
			wantReport: []string{"PUT /api/v1/orgs/:slug"}},
		{name: "public path", path: "/healthz",
			wantReport: []string{"GET /healthz"}},
		{name: "every method of a path", path: "/api/v1/tokens",
			wantReport: []string{"GET /api/v1/tokens", "POST /api/v1/tokens"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(handlers.OpenAPISpec(), &doc); err != nil {
				t.Fatal(err)
			}
			paths := doc["paths"].(map[string]any)
			item, ok := paths[tt.path].(map[string]any)
			if !ok {
				t.Fatalf("the spec has no path %s to remove", tt.path)
			}
			if tt.method == "" {
				delete(paths, tt.path)
			} else {
				delete(item, tt.method)
			}
			spec, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := undocumented(e.Routes(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.wantReport) {
				t.Errorf("after removing %s %s: reported %v, want %v", tt.method, tt.path, got, tt.wantReport)
			}
		})
	}
}

// TestOpenAPI_DocumentsRevocationRoutes checks the CRL and OCSP routes in
// echo's notation, including a wildcard for OCSP over GET (base64 may
// contain '/'), whether or not web.New registers them yet.
func TestOpenAPI_DocumentsRevocationRoutes(t *testing.T) {
	routes := []*echo.Route{
		{Method: http.MethodGet, Path: "/crl/issuing.crl"},
		{Method: http.MethodGet, Path: "/crl/root.crl"},
		{Method: http.MethodGet, Path: "/crl/issuing.pem"},
		{Method: http.MethodGet, Path: "/crl/root.pem"},
		{Method: http.MethodGet, Path: "/crl/bundle.pem"},
		{Method: http.MethodPost, Path: "/ocsp"},
		{Method: http.MethodGet, Path: "/ocsp/*"},
		{Method: http.MethodGet, Path: "/ocsp/:request"},
		{Method: http.MethodGet, Path: "/api/v1/revocation"},
		{Method: http.MethodPost, Path: "/api/v1/certificates/:id/revoke"},
	}
	missing, err := undocumented(routes, handlers.OpenAPISpec())
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("revocation routes missing from handlers/openapi.json: %v", missing)
	}
}

func TestOpenAPI_IsOpenAPI31WithRolesAndProblems(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(handlers.OpenAPISpec(), &doc); err != nil {
		t.Fatalf("handlers/openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	type operation struct {
		Roles     []string                   `json:"x-roles"`
		Security  []map[string][]string      `json:"security"`
		Responses map[string]json.RawMessage `json:"responses"`
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				continue
			}
			if len(op.Roles) == 0 {
				t.Errorf("%s %s: no x-roles", method, path)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
			if !strings.HasPrefix(path, "/api/v1/") || path == "/api/v1/openapi.json" {
				continue
			}
			for _, code := range []string{"401", "403", "500"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s %s: no %s problem answer", method, path, code)
				}
			}
			if len(op.Security) == 0 {
				t.Errorf("%s %s: no security requirement", method, path)
			}
		}
	}
}

func TestOpenAPI_EveryRefResolves(t *testing.T) {
	var doc any
	if err := json.Unmarshal(handlers.OpenAPISpec(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if !resolves(doc, ref) {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

// resolves reports whether a local JSON pointer reference exists in doc.
func resolves(doc any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	cur := doc
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestOpenAPI_ServedPubliclyAsCacheableJSON(t *testing.T) {
	e := testServer(t)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json without sign-in: status %d, want 200: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300", cc)
	}
	if rec.Body.String() != string(handlers.OpenAPISpec()) {
		t.Error("the served document differs from handlers/openapi.json")
	}
}
