package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/web"
)

var (
	adminActor   = models.Actor{Subject: "alice-admin", Role: models.RoleAdmin, Source: "192.0.2.1"}
	partnerActor = models.Actor{Subject: "carol-partner", Role: models.RolePartner, Org: "acme", Source: "198.51.100.7"}
	auditorActor = models.Actor{Subject: "dave-auditor", Role: models.RoleAuditor, Source: "192.0.2.3"}
)

// call runs h for a request with body (JSON, or none when "") made by a,
// through the web layer's error mapping, and returns the recorder.
func call(t *testing.T, h echo.HandlerFunc, a models.Actor, method, body string) *httptest.ResponseRecorder {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(nil)
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, "/", nil)
	} else {
		req = httptest.NewRequest(method, "/", strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	req = req.WithContext(models.WithActor(req.Context(), a))
	rec := httptest.NewRecorder()
	c := e.NewContext(req, rec)
	if err := h(c); err != nil {
		e.HTTPErrorHandler(err, c)
	}
	return rec
}

// decode unmarshals the recorder's body into v.
func decode(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
}
