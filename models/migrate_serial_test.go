package models_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// TestMigration6_RewritesSerialsToTheOpenSSLForm fills a version-5 database
// with serials in the old form (lower case, no leading zero digit) and checks
// that version 6 rewrites every serial column to the form openssl prints,
// and that lookups by either form then find the row.
func TestMigration6_RewritesSerialsToTheOpenSSLForm(t *testing.T) {
	configs := map[string]models.Config{
		"sqlite":   {Driver: models.DriverSQLite, DSN: filepath.Join(t.TempDir(), "certdesk.db")},
		"postgres": {Driver: models.DriverPostgres, DSN: modelstest.PostgresDSN(t)},
	}
	tests := []struct{ old, want string }{
		{"89cfedd90a1b2c3d4e5f60718293a4b", "089CFEDD90A1B2C3D4E5F60718293A4B"}, // a leading zero nibble
		{"c0ffee", "C0FFEE"},
		{"123", "0123"}, // digits only, odd length
		{"42", "42"},    // unchanged
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			s, err := models.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.MigrateTo(ctx, 5); err != nil {
				t.Fatalf("migrating to 5: %v", err)
			}
			// Rows as versions before 6 stored them, written as raw SQL so
			// that columns added by later versions do not matter here.
			db := s.DB().WithContext(ctx)
			now := time.Now().UTC().Truncate(time.Second)
			exec := func(q string, args ...any) {
				t.Helper()
				if err := db.Exec(q, args...).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec("INSERT INTO organizations (slug, name, max_validity_days, created_at, updated_at) VALUES ('acme', 'Acme', 90, ?, ?)", now, now)
			certIDs := make([]string, len(tests))
			for i, tt := range tests {
				reqID, certID := fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("00000000-0000-4000-9000-%012d", i)
				certIDs[i] = certID
				exec("INSERT INTO requests (id, state, org, csrpem, validity_days, requested_by, certificate_id, created_at, updated_at) VALUES (?, 'issued', 'acme', 'x', 30, 'p', ?, ?, ?)",
					reqID, certID, now, now)
				exec("INSERT INTO certificates (id, serial, request_id, org, not_before, not_after, state, der, created_at, updated_at) VALUES (?, ?, ?, 'acme', ?, ?, 'issued', ?, ?, ?)",
					certID, tt.old, reqID, now, now.Add(time.Hour), []byte{1}, now, now)
				exec("INSERT INTO ocsp_responders (issuer, key_id, key_label, serial, cert_der, not_before, not_after, created_at) VALUES ('issuing', 'k', ?, ?, ?, ?, ?, ?)",
					"ocsp-"+tt.old, tt.old, []byte{1}, now, now.Add(time.Hour), now)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrating to 6: %v", err)
			}
			if v, err := s.AppliedVersion(ctx); err != nil || v < 6 {
				t.Fatalf("applied version %d, %v", v, err)
			}
			for i, tt := range tests {
				var got []string
				if err := s.DB().WithContext(ctx).Raw("SELECT serial FROM certificates WHERE id = ?", certIDs[i]).Scan(&got).Error; err != nil || len(got) != 1 || got[0] != tt.want {
					t.Errorf("certificate serial %s became %v (%v), want %s", tt.old, got, err, tt.want)
				}
				got = nil
				if err := s.DB().WithContext(ctx).Raw("SELECT serial FROM ocsp_responders WHERE key_label = ?", "ocsp-"+tt.old).Scan(&got).Error; err != nil || len(got) != 1 || got[0] != tt.want {
					t.Errorf("responder serial %s became %v (%v), want %s", tt.old, got, err, tt.want)
				}
				for _, form := range []string{tt.old, tt.want} {
					c, err := s.GetCertificateBySerial(ctx, form)
					if err != nil || c.ID != certIDs[i] {
						t.Errorf("GetCertificateBySerial(%q) = %v, %v; want certificate %s", form, c, err, certIDs[i])
					}
				}
			}
		})
	}
}
