package models_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func TestLookupToken_RespectsExpiryAndRevocation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		tok := &models.APIToken{Name: "ci", Subject: partner.Subject, Role: models.RolePartner, Org: "acme",
			Hash: tokenHash("secret-1"), ExpiresAt: clk.Now().Add(time.Hour)}
		if err := s.CreateToken(ctx, partner, tok); err != nil {
			t.Fatal(err)
		}
		ev := wantLastAudit(t, s, "token.create", partner, tok.ID)
		if strings.Contains(ev.Detail, tok.Hash) || strings.Contains(ev.Detail, "secret-1") {
			t.Fatal("audit detail carries the token or its hash")
		}
		got, err := s.LookupToken(ctx, tok.Hash)
		if err != nil || got.ID != tok.ID || got.LastUsedAt == nil {
			t.Fatalf("lookup = %+v, %v", got, err)
		}
		firstUse := *got.LastUsedAt
		clk.Advance(30 * time.Second)
		got, _ = s.LookupToken(ctx, tok.Hash)
		if !got.LastUsedAt.Equal(firstUse) {
			t.Fatal("LastUsedAt written again within a minute")
		}
		clk.Advance(31 * time.Second)
		got, _ = s.LookupToken(ctx, tok.Hash)
		if !got.LastUsedAt.After(firstUse) {
			t.Fatal("LastUsedAt not updated after a minute")
		}
		_, err = s.LookupToken(ctx, tokenHash("other"))
		wantErr(t, err, models.ErrNotFound)

		clk.Advance(time.Hour)
		_, err = s.LookupToken(ctx, tok.Hash)
		wantErr(t, err, models.ErrNotFound)

		tok2 := &models.APIToken{Name: "deploy", Subject: partner.Subject, Role: models.RolePartner,
			Hash: tokenHash("secret-2"), ExpiresAt: clk.Now().Add(time.Hour)}
		if err := s.CreateToken(ctx, partner, tok2); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, partner, tok2.ID); err != nil {
			t.Fatal(err)
		}
		wantLastAudit(t, s, "token.revoke", partner, tok2.ID)
		_, err = s.LookupToken(ctx, tok2.Hash)
		wantErr(t, err, models.ErrNotFound)
		wantErr(t, s.RevokeToken(ctx, partner, tok2.ID), models.ErrConflict)

		ts, err := s.ListTokens(ctx, partner.Subject)
		if err != nil || len(ts) != 2 || ts[0].ID != tok2.ID {
			t.Fatalf("list = %d tokens (err %v), want 2 newest first", len(ts), err)
		}
	})
}

func TestRevokeToken_OnlyOwnerOrAdmin(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		mk := func(name string) *models.APIToken {
			tok := &models.APIToken{Name: name, Subject: partner.Subject, Role: models.RolePartner,
				Hash: tokenHash(name), ExpiresAt: s.Now().Add(time.Hour)}
			if err := s.CreateToken(ctx, partner, tok); err != nil {
				t.Fatal(err)
			}
			return tok
		}
		a, b := mk("a"), mk("b")
		other := models.Actor{Subject: "eve", Role: models.RolePartner, Org: "acme"}
		wantErr(t, s.RevokeToken(ctx, other, a.ID), models.ErrNotFound)
		wantErr(t, s.RevokeToken(ctx, other, "nope"), models.ErrNotFound)
		if _, err := s.LookupToken(ctx, a.Hash); err != nil {
			t.Fatal("a refused revocation revoked the token")
		}
		wantErr(t, s.RevokeToken(ctx, admin, b.ID), nil)
	})
}

func TestCreateToken_BadInput_IsInvalid(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		future := s.Now().Add(time.Hour)
		cases := []struct {
			name string
			tok  models.APIToken
		}{
			{"hash not hex", models.APIToken{Subject: "x", Role: "partner", Hash: "token-in-clear", ExpiresAt: future}},
			{"no subject", models.APIToken{Role: "partner", Hash: tokenHash("1"), ExpiresAt: future}},
			{"no role", models.APIToken{Subject: "x", Hash: tokenHash("1"), ExpiresAt: future}},
			{"already expired", models.APIToken{Subject: "x", Role: "partner", Hash: tokenHash("1"), ExpiresAt: s.Now().Add(-time.Second)}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantErr(t, s.CreateToken(ctx, partner, &c.tok), models.ErrInvalid)
			})
		}
		dup := func() *models.APIToken {
			return &models.APIToken{Subject: "x", Role: "partner", Hash: tokenHash("dup"), ExpiresAt: future}
		}
		wantErr(t, s.CreateToken(ctx, partner, dup()), nil)
		wantErr(t, s.CreateToken(ctx, partner, dup()), models.ErrConflict)
	})
}

func TestCreateToken_LifetimeCap_AcceptsTheCapRefusesASecondMore(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		tests := []struct {
			name    string
			expires time.Time
			want    error
		}{
			{"exactly the cap", clk.Now().Add(models.MaxTokenLifetime), nil},
			{"a second beyond the cap", clk.Now().Add(models.MaxTokenLifetime + time.Second), models.ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok := &models.APIToken{Subject: "x", Role: "partner", Hash: tokenHash(tt.name), ExpiresAt: tt.expires}
				wantErr(t, s.CreateToken(ctx, partner, tok), tt.want)
			})
		}
	})
}

func TestSessions_ExpireByTheClock(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clk := newClock()
		s.Now = clk.Now
		mk := func(id string, ttl time.Duration) {
			sess := &models.Session{ID: tokenHash(id), Subject: partner.Subject, Role: models.RolePartner, Org: "acme",
				CSRFToken: "csrf", ExpiresAt: clk.Now().Add(ttl)}
			if err := s.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
		}
		mk("short", time.Hour)
		mk("long", 8*time.Hour)
		got, err := s.GetSession(ctx, tokenHash("short"))
		if err != nil || got.Subject != partner.Subject || got.CSRFToken != "csrf" || !got.LastSeenAt.Equal(clk.Now()) {
			t.Fatalf("session = %+v, %v", got, err)
		}
		seen := clk.Now().Add(10 * time.Minute)
		if err := s.TouchSession(ctx, tokenHash("short"), seen); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetSession(ctx, tokenHash("short"))
		if !got.LastSeenAt.Equal(seen) {
			t.Fatalf("LastSeenAt = %v, want %v", got.LastSeenAt, seen)
		}
		wantErr(t, s.TouchSession(ctx, "nope", seen), models.ErrNotFound)
		wantErr(t, s.CreateSession(ctx, &models.Session{ID: tokenHash("short"), Subject: "x", Role: "admin", CSRFToken: "c", ExpiresAt: clk.Now().Add(time.Hour)}), models.ErrConflict)

		clk.Advance(time.Hour)
		_, err = s.GetSession(ctx, tokenHash("short"))
		wantErr(t, err, models.ErrNotFound)
		if _, err := s.GetSession(ctx, tokenHash("long")); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteExpiredSessions(ctx, clk.Now())
		if err != nil || n != 1 {
			t.Fatalf("deleted %d expired sessions (err %v), want 1", n, err)
		}
		if err := s.DeleteSession(ctx, tokenHash("long")); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetSession(ctx, tokenHash("long"))
		wantErr(t, err, models.ErrNotFound)
		wantErr(t, s.DeleteSession(ctx, tokenHash("long")), nil)
		wantErr(t, s.CreateSession(ctx, &models.Session{Subject: "x"}), models.ErrInvalid)
	})
}

func TestSetMembership_AssignsMovesAndRemoves(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		newOrg(t, s, "globex", false)
		_, err := s.GetMembership(ctx, "dave")
		wantErr(t, err, models.ErrNotFound)
		wantErr(t, s.SetMembership(ctx, admin, "dave", "nope"), models.ErrNotFound)
		steps := []struct{ org, wantPrev string }{{"acme", ""}, {"globex", "acme"}, {"", "globex"}}
		for _, st := range steps {
			if err := s.SetMembership(ctx, admin, "dave", st.org); err != nil {
				t.Fatal(err)
			}
			ev := wantLastAudit(t, s, "membership.set", admin, "dave")
			if !strings.Contains(ev.Detail, `"previous_org":"`+st.wantPrev+`"`) {
				t.Fatalf("detail %s lacks previous org %q", ev.Detail, st.wantPrev)
			}
			got, err := s.GetMembership(ctx, "dave")
			if st.org == "" {
				wantErr(t, err, models.ErrNotFound)
			} else if err != nil || got != st.org {
				t.Fatalf("membership = %q, %v; want %q", got, err, st.org)
			}
		}
		for _, sub := range []string{"erin", "frank"} {
			if err := s.SetMembership(ctx, admin, sub, "acme"); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := s.ListMemberships(ctx, "acme")
		if err != nil || len(ms) != 2 || ms[0].Subject != "erin" || ms[0].CreatedBy != admin.Subject {
			t.Fatalf("memberships = %+v, %v", ms, err)
		}
	})
}

func TestOrgs_CreateUpdateAndRefusals(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		o := newOrg(t, s, "acme", false)
		ev := wantLastAudit(t, s, "org.create", admin, "acme")
		if ev.Org != "acme" {
			t.Fatalf("audit org = %q", ev.Org)
		}
		wantErr(t, s.CreateOrg(ctx, admin, &models.Organization{Slug: "acme", Name: "Again"}), models.ErrConflict)
		for _, slug := range []string{"", "Acme", "-acme", "acme-", "a b", strings.Repeat("a", 65)} {
			wantErr(t, s.CreateOrg(ctx, admin, &models.Organization{Slug: slug, Name: "x"}), models.ErrInvalid)
		}
		wantErr(t, s.CreateOrg(ctx, admin, &models.Organization{Slug: "noname"}), models.ErrInvalid)

		d := &models.Organization{Slug: "defaults", Name: "Defaults"}
		if err := s.CreateOrg(ctx, admin, d); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetOrg(ctx, "defaults")
		if got.MaxValidityDays != models.DefaultMaxValidityDays || got.URIPrefixes == nil {
			t.Fatalf("defaults = %+v", got)
		}

		o.Name = "ACME Corporation"
		o.DNSSuffixes = models.StringList{".acme.example"}
		o.MaxValidityDays = 30
		if err := s.UpdateOrg(ctx, admin, o); err != nil {
			t.Fatal(err)
		}
		ev = wantLastAudit(t, s, "org.update", admin, "acme")
		if !strings.Contains(ev.Detail, `"before":{`) || !strings.Contains(ev.Detail, `"name":"acme Ltd"`) || !strings.Contains(ev.Detail, `"name":"ACME Corporation"`) {
			t.Fatalf("update detail lacks before/after: %s", ev.Detail)
		}
		got, err := s.GetOrg(ctx, "acme")
		if err != nil || got.Name != "ACME Corporation" || got.MaxValidityDays != 30 || len(got.DNSSuffixes) != 1 || len(got.URIPrefixes) != 1 {
			t.Fatalf("updated = %+v, %v", got, err)
		}
		wantErr(t, s.UpdateOrg(ctx, admin, &models.Organization{Slug: "nope", Name: "x"}), models.ErrNotFound)
		_, err = s.GetOrg(ctx, "nope")
		wantErr(t, err, models.ErrNotFound)
		all, err := s.ListOrgs(ctx)
		if err != nil || len(all) != 2 || all[0].Slug != "acme" {
			t.Fatalf("orgs = %+v, %v", all, err)
		}
	})
}

func TestOpen_BadConfig_IsInvalidAndNamesTheField(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		cfg   models.Config
		field string
	}{
		{"unknown driver", models.Config{Driver: "mysql", DSN: "x"}, "database.driver"},
		{"no driver", models.Config{DSN: "x"}, "database.driver"},
		{"no dsn", models.Config{Driver: "sqlite"}, "database.dsn"},
		{"dsn and dsn_file", models.Config{Driver: "sqlite", DSN: "x", DSNFile: empty}, "not both"},
		{"empty dsn_file", models.Config{Driver: "sqlite", DSNFile: empty}, "database.dsn_file"},
		{"missing dsn_file", models.Config{Driver: "sqlite", DSNFile: filepath.Join(dir, "nope")}, "database.dsn_file"},
		{"one connection", models.Config{Driver: "postgres", DSN: "postgres://x", MaxConnections: 1}, "database.max_connections"},
		{"negative connections", models.Config{Driver: "postgres", DSN: "postgres://x", MaxConnections: -1}, "database.max_connections"},
		{"connections for sqlite", models.Config{Driver: "sqlite", DSN: "x", MaxConnections: 4}, "database.max_connections"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := models.Open(ctx, c.cfg)
			wantErr(t, err, models.ErrInvalid)
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %v does not name %s", err, c.field)
			}
		})
	}
}

func TestOpen_DSNFile_IsRead(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "dsn")
	if err := os.WriteFile(f, []byte(filepath.Join(dir, "certdesk.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(ctx, models.Config{DSNFile: f}.WithDefaults())
	if err != nil {
		t.Fatalf("Open with dsn_file: %v", err)
	}
	defer s.Close()
	if s.Driver() != models.DriverSQLite {
		t.Fatalf("driver %q, want the default sqlite", s.Driver())
	}
	if _, err := os.Stat(filepath.Join(dir, "certdesk.db")); err != nil {
		t.Fatalf("the database named in the file was not created: %v", err)
	}
}
