package handlers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// AuditStore is what the audit handlers need.
type AuditStore interface {
	ListAudit(ctx context.Context, f models.AuditFilter) ([]models.AuditEvent, string, error)
	StreamAudit(ctx context.Context, f models.AuditFilter, fn func(*models.AuditEvent) error) error
	VerifyAuditWith(ctx context.Context, verifySig func(cp *models.AuditCheckpoint) error) (*models.AuditVerification, error)
}

// Audit serves /api/v1/audit (auditors and admins).
type Audit struct {
	Store AuditStore
	// VerifyCheckpoint, when set, checks each signed checkpoint's signature
	// during Verify (see VerifyWith); unset, only the chain is checked
	// against the checkpoints.
	VerifyCheckpoint func(*models.AuditCheckpoint) error
	// Log receives errors that happen after an export has started; nil
	// means slog.Default().
	Log *slog.Logger
}

// filter reads actor, org, action, object_id, from and to (RFC 3339 or
// YYYY-MM-DD; "to" as a date includes that whole day).
func auditFilter(c echo.Context) (models.AuditFilter, error) {
	f := models.AuditFilter{
		Actor: c.QueryParam("actor"), Org: c.QueryParam("org"),
		Action: c.QueryParam("action"), ObjectID: c.QueryParam("object_id"),
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
		end  bool
	}{{"from", &f.From, false}, {"to", &f.To, true}} {
		s := c.QueryParam(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d, derr := time.Parse(time.DateOnly, s)
			if derr != nil {
				return f, echo.NewHTTPError(http.StatusBadRequest, p.name+" must be a date (2026-11-23) or an RFC 3339 time")
			}
			if p.end {
				d = d.Add(24*time.Hour - time.Nanosecond)
			}
			t = d
		}
		*p.dst = &t
	}
	return f, nil
}

// Events is GET /audit/events.
func (h *Audit) Events(c echo.Context) error {
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	if f.Cursor, f.Limit, err = page(c); err != nil {
		return err
	}
	items, next, err := h.Store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next))
}

var csvHeader = []string{"seq", "time", "actor", "role", "org", "action", "object_type", "object_id", "source", "detail", "prev_hash", "hash"}

// Export is GET /audit/export?format=csv|json: every matching event, oldest
// first, streamed so that memory does not grow with the size of the log.
func (h *Audit) Export(c echo.Context) error {
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "json"
	}
	if format != "csv" && format != "json" {
		return echo.NewHTTPError(http.StatusBadRequest, "format must be csv or json")
	}
	w := c.Response()
	name := "certdesk-audit-" + time.Now().UTC().Format("20060102T150405Z") + "." + format
	w.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Cache-Control", "no-store")
	ctx := c.Request().Context()
	if format == "csv" {
		w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		n := 0
		err := h.Store.StreamAudit(ctx, f, func(e *models.AuditEvent) error {
			n++
			if n%500 == 0 {
				cw.Flush()
			}
			return cw.Write(csvRow(strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Actor, e.Role, e.Org,
				e.Action, e.ObjectType, e.ObjectID, e.Source, e.Detail, e.PrevHash, e.Hash))
		})
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
		h.abortOn(c, err)
		return nil
	}
	// JSON: one array, written event by event.
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSONCharsetUTF8)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("[\n")); err != nil {
		return err
	}
	first := true
	enc := json.NewEncoder(w)
	err = h.Store.StreamAudit(ctx, f, func(e *models.AuditEvent) error {
		if !first {
			if _, err := w.Write([]byte(",")); err != nil {
				return err
			}
		}
		first = false
		return enc.Encode(e)
	})
	if err == nil {
		_, err = w.Write([]byte("]\n"))
	}
	h.abortOn(c, err)
	return nil
}

// abortOn ends an export whose response has started when err is not nil:
// the status and part of the body are sent, so the error cannot become a
// problem answer. It logs err and aborts the connection (http.ErrAbortHandler)
// instead of finishing a well-formed body, so the client sees a truncated
// transfer rather than a complete-looking but partial export.
func (h *Audit) abortOn(c echo.Context, err error) {
	if err == nil {
		return
	}
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(c.Request().Context(), "audit export failed after it started; aborting the connection",
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
	panic(http.ErrAbortHandler)
}

// csvRow makes every cell of an exported row safe: any column may carry
// text that came from outside (subjects, organisation slugs, object ids,
// sources), so none is trusted to be formula-free.
func csvRow(cells ...string) []string {
	for i, c := range cells {
		cells[i] = csvSafe(c)
	}
	return cells
}

// csvSafe defuses spreadsheet formula injection (OWASP "CSV Injection"): a
// cell starting with =, +, -, @, a tab or a carriage return is read as a
// formula by spreadsheet programs, so it is prefixed with a quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Verify is GET /audit/verify: walks the hash chain and names the first
// event that was altered, removed or inserted, or the first signed
// checkpoint that the chain no longer matches.
func (h *Audit) Verify(c echo.Context) error {
	v, err := h.Store.VerifyAuditWith(c.Request().Context(), h.VerifyCheckpoint)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
