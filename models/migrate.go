package models

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migrationFiles holds the versioned schema, one directory per dialect. A
// file is named NNNN_description.sql; NNNN is its version. Files are never
// edited once released: a change is a new file (miniflux
// internal/database/migrations.go, memos store/migration).
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one numbered schema step.
type migration struct {
	Version int
	Name    string
	SQL     string
}

// migrationLockKey is the PostgreSQL advisory lock that serialises replicas
// migrating at the same start-up ("certdesk" in ASCII).
const migrationLockKey int64 = 0x6365727464657368

// migrations returns the embedded steps for a driver, in version order.
func migrations(driver string) ([]migration, error) {
	dir := path.Join("migrations", driver)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations for %s: %w", driver, err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s: name must start with a positive number and '_'", dir, name)
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	// Versions are unique and increasing; a gap is allowed, because
	// numbers are handed out to branches before they merge. Each step is
	// applied by its own version, so one merged later below an applied
	// version is still applied.
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations for %s: version %d is used by both %s and %s", driver, out[i].Version, out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// SchemaVersion is the version the embedded migrations bring a database
// to: the highest one.
func (s *Store) SchemaVersion() int {
	ms, err := migrations(s.driver)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// SchemaSteps is the number of embedded migrations.
func (s *Store) SchemaSteps() int {
	ms, _ := migrations(s.driver)
	return len(ms)
}

// Migrate brings the schema up to date. Each step runs in its own
// transaction together with its row in schema_migrations, so a failed step
// leaves the database at the previous version. It is idempotent, and on
// PostgreSQL several replicas may call it at once (each step takes a
// transaction-scoped advisory lock and re-checks the version).
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrateTo(ctx, 0)
}

// migrateTo applies the steps up to version upTo (all of them when upTo is
// 0), as Migrate describes.
func (s *Store) migrateTo(ctx context.Context, upTo int) error {
	steps, err := migrations(s.driver)
	if err != nil {
		return err
	}
	if upTo > 0 {
		kept := steps[:0:0]
		for _, m := range steps {
			if m.Version <= upTo {
				kept = append(kept, m)
			}
		}
		steps = kept
	}
	db := s.db.WithContext(ctx)
	createTable := `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR(200) NOT NULL,
    applied_at VARCHAR(40)  NOT NULL
)`
	if s.driver == DriverPostgres {
		// Two replicas creating the table at once can collide in the
		// catalogue; the advisory lock serialises them.
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockKey).Error; err != nil {
				return err
			}
			return tx.Exec(createTable).Error
		})
	} else {
		err = db.Exec(createTable).Error
	}
	if err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for _, m := range steps {
		err := db.Transaction(func(tx *gorm.DB) error {
			if s.driver == DriverPostgres {
				if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockKey).Error; err != nil {
					return err
				}
			}
			var n int64
			if err := tx.Table("schema_migrations").Where("version = ?", m.Version).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for i, stmt := range splitSQL(m.SQL) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("statement %d: %w", i+1, err)
				}
			}
			return tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, m.Name, s.now().Format(time.RFC3339Nano)).Error
		})
		if err != nil {
			return fmt.Errorf("applying migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// AppliedVersion returns the highest migration version recorded in the
// database (0 when none is).
func (s *Store) AppliedVersion(ctx context.Context) (int, error) {
	var v *int
	err := s.db.WithContext(ctx).Raw("SELECT MAX(version) FROM schema_migrations").Scan(&v).Error
	if err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// splitSQL splits a migration file into statements at semicolons that end a
// line, dropping comment-only lines. Migration files keep one statement per
// such semicolon and no semicolons inside string literals at line ends.
func splitSQL(src string) []string {
	var (
		out []string
		cur strings.Builder
	)
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			if stmt := strings.TrimSpace(cur.String()); stmt != ";" {
				out = append(out, strings.TrimSuffix(stmt, ";"))
			}
			cur.Reset()
		}
	}
	if stmt := strings.TrimSpace(cur.String()); stmt != "" {
		out = append(out, stmt)
	}
	return out
}
