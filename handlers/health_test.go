package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestReadyz_SignInDown_StaysReadyUnlessAskedFor(t *testing.T) {
	down := errors.New("oidc.issuer: OpenID Connect discovery at http://idp: connection refused")
	tests := []struct {
		name       string
		query      string
		db, signIn error
		wantCode   int
		wantSignIn string
	}{
		{"all up", "", nil, nil, http.StatusOK, "ok"},
		{"sign-in down: still ready, says why", "", nil, down, http.StatusOK, "unavailable"},
		{"sign-in down, sign-in check asked for", "?check=sign_in", nil, down, http.StatusServiceUnavailable, "unavailable"},
		{"sign-in up, sign-in check asked for", "?check=sign_in", nil, nil, http.StatusOK, "ok"},
		{"database down", "", errors.New("dial tcp: refused"), nil, http.StatusServiceUnavailable, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Health{
				DBPing:   func(context.Context) error { return tt.db },
				SignIn:   func() error { return tt.signIn },
				HSMCheck: func(context.Context) error { return nil },
			}
			e := echo.New()
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodGet, "/readyz"+tt.query, nil), rec)
			if err := h.Readyz(c); err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantCode || body["sign_in"] != tt.wantSignIn {
				t.Fatalf("GET /readyz%s: %d %v, want %d with sign_in %q", tt.query, rec.Code, body, tt.wantCode, tt.wantSignIn)
			}
			if tt.signIn != nil && body["sign_in_reason"] != tt.signIn.Error() {
				t.Errorf("sign_in_reason %q, want the discovery error", body["sign_in_reason"])
			}
		})
	}
}

func TestReadyz_UnknownCheck_IsBadRequest(t *testing.T) {
	h := &Health{DBPing: func(context.Context) error { return nil }}
	e := echo.New()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/readyz?check=everything", nil), httptest.NewRecorder())
	var he *echo.HTTPError
	if err := h.Readyz(c); !errors.As(err, &he) || he.Code != http.StatusBadRequest {
		t.Fatalf("unknown check: %v, want a 400", err)
	}
}
