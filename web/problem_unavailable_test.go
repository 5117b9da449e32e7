package web

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer/pkcs11"
)

// TestErrorHandler_Unavailable_503WithRetryAfter: an unavailable HSM or
// database is a 503 with Retry-After, and the database's connection details
// never reach the client.
func TestErrorHandler_Unavailable_503WithRetryAfter(t *testing.T) {
	leak := "dial tcp 10.0.0.7:5432: connect: connection refused"
	tests := []struct {
		name     string
		err      error
		wantType string
	}{
		{"HSM", fmt.Errorf("signing: %w", pkcs11.ErrHSMUnavailable), ProblemTypeHSMUnavailable},
		{"database", fmt.Errorf("reading request r1: %w: %s", models.ErrUnavailable, leak), ProblemTypeDBUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := echo.New()
			e.HTTPErrorHandler = ErrorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
			e.GET("/x", func(echo.Context) error { return tt.err })
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			var p Problem
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if rec.Code != http.StatusServiceUnavailable || p.Type != tt.wantType || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("status %d type %q Retry-After %q, want 503 %s with Retry-After", rec.Code, p.Type, rec.Header().Get("Retry-After"), tt.wantType)
			}
			if strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Fatalf("the answer leaks the connection: %s", rec.Body)
			}
		})
	}
}
