package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// closingStore is a real store that closes its database after the first
// page of a streamed export, so the next page fails like a dropped database.
type closingStore struct{ *models.Store }

func (s closingStore) StreamAudit(ctx context.Context, f models.AuditFilter, fn func(*models.AuditEvent) error) error {
	n := 0
	return s.Store.StreamAudit(ctx, f, func(e *models.AuditEvent) error {
		if n++; n == 1 {
			s.Store.Close()
		}
		return fn(e)
	})
}

// TestAuditExport_DatabaseFailsMidStream_AbortsAndLogs: a database failure
// after the export started is logged and the connection aborted, so the
// client sees a truncated transfer, never a complete-looking body.
func TestAuditExport_DatabaseFailsMidStream_AbortsAndLogs(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			s := modelstest.SQLite(t)
			sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
			for i := range 1005 { // more than one streamed page
				o := &models.Organization{Slug: fmt.Sprintf("org%d", i), Name: "Org", MaxValidityDays: 30,
					DNSSuffixes: models.StringList{fmt.Sprintf("org%d.example", i)}}
				if err := s.CreateOrg(context.Background(), sys, o); err != nil {
					t.Fatal(err)
				}
			}
			var logs modelstest.LogBuffer
			h := &handlers.Audit{Store: closingStore{s}, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
			e := echo.New()
			e.Use(middleware.Recover())
			e.GET("/export", h.Export)
			srv := httptest.NewServer(e)
			defer srv.Close()
			res, err := http.Get(srv.URL + "/export?format=" + format)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err == nil {
				t.Fatalf("the export read to its end (%d bytes, ends %q) although the database failed", len(body), body[max(0, len(body)-20):])
			}
			if !strings.Contains(logs.String(), "audit export failed") || !strings.Contains(logs.String(), "closed") {
				t.Fatalf("the failure was not logged: %s", logs.String())
			}
		})
	}
}
