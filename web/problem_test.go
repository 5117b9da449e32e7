package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

func TestErrorHandler_MapsErrorKinds(t *testing.T) {
	secret := "pq: password authentication failed for user certdesk at 10.0.0.5"
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantDetail string // substring; "" for none expected
		wantRule   string
	}{
		{"not found", fmt.Errorf("reading request r1: %w", models.ErrNotFound), 404, ProblemTypeDefault, "not found", ""},
		{"conflict", fmt.Errorf("approving: %w: already decided", models.ErrConflict), 409, ProblemTypeDefault, "already decided", ""},
		{"forbidden", fmt.Errorf("approving: %w: own request", models.ErrForbidden), 403, ProblemTypeDefault, "own request", ""},
		{"invalid", fmt.Errorf("%w: validity_days must be positive", models.ErrInvalid), 400, ProblemTypeDefault, "validity_days", ""},
		{"policy", fmt.Errorf("checking CSR: %w", &signer.PolicyError{Rule: "key-size", Reason: "RSA keys must be at least 3072 bits"}), 422, ProblemTypePolicy, "3072 bits", "key-size"},
		{"HSM unavailable", fmt.Errorf("signing: %w", signer.ErrHSMUnavailable), 503, ProblemTypeHSMUnavailable, "unavailable", ""},
		{"lint failure is ours", fmt.Errorf("issuing: %w: e_sub_cert_aia_missing", signer.ErrLint), 500, ProblemTypeDefault, "request id", ""},
		{"unexpected error is not leaked", errors.New(secret), 500, ProblemTypeDefault, "request id", ""},
		{"echo 404", echo.ErrNotFound, 404, ProblemTypeDefault, "", ""},
		{"echo 413", echo.ErrStatusRequestEntityTooLarge, 413, ProblemTypeDefault, "", ""},
		{"echo bind error", echo.NewHTTPError(400, "Syntax error: offset=3").SetInternal(errors.New(secret)), 400, ProblemTypeDefault, "Syntax error", ""},
		{"echo 500 message hidden", echo.NewHTTPError(500, secret), 500, ProblemTypeDefault, "request id", ""},
		{"NewProblem", NewProblem(http.StatusBadRequest, "csr: not a PEM CERTIFICATE REQUEST"), 400, ProblemTypeDefault, "not a PEM", ""},
		{"wrapped NewProblem", fmt.Errorf("handler: %w", NewProblem(http.StatusTooManyRequests, "slow down")), 429, ProblemTypeDefault, "slow down", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			e := echo.New()
			e.HTTPErrorHandler = ErrorHandler(slog.New(slog.NewJSONHandler(&logBuf, nil)))
			e.Use(middleware.RequestID())
			e.GET("/api/v1/x", func(echo.Context) error { return tt.err })

			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/x", nil))

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != ContentTypeProblem {
				t.Errorf("Content-Type %q, want %s", ct, ContentTypeProblem)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body is not a problem: %v: %s", err, rec.Body)
			}
			if p.Status != tt.wantStatus || p.Type != tt.wantType || p.Title == "" || p.Instance != "/api/v1/x" || p.Rule != tt.wantRule {
				t.Errorf("problem %+v, want status %d type %s rule %q instance /api/v1/x", p, tt.wantStatus, tt.wantType, tt.wantRule)
			}
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, tt.wantDetail)
			}
			if p.RequestID == "" || p.RequestID != rec.Header().Get(echo.HeaderXRequestID) {
				t.Errorf("request_id %q, want the X-Request-ID %q", p.RequestID, rec.Header().Get(echo.HeaderXRequestID))
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("the response leaks the internal error: %s", rec.Body)
			}
			if tt.wantStatus >= 500 && tt.wantStatus != 503 {
				if !strings.Contains(logBuf.String(), p.RequestID) {
					t.Errorf("the 500 was not logged with its request id: %s", logBuf.String())
				}
			}
		})
	}
}

func TestErrorHandler_HeadHasNoBody(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(slog.New(slog.DiscardHandler))
	e.HEAD("/x", func(echo.Context) error { return models.ErrNotFound })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/x", nil))
	if rec.Code != http.StatusNotFound || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: status %d body %q, want 404 and no body", rec.Code, rec.Body)
	}
}
