// Package modelstest gives tests fresh, migrated certdesk stores on every
// supported database: an SQLite file in a temporary directory and a new
// PostgreSQL database on the server named by DATABASE_URL (which `make test`
// starts). There is no skipping: without DATABASE_URL the test fails.
package modelstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

// Stores returns a fresh migrated store per driver, keyed "sqlite" and
// "postgres". They are closed (and the PostgreSQL database dropped) when the
// test ends.
func Stores(t testing.TB) map[string]*models.Store {
	t.Helper()
	return map[string]*models.Store{
		models.DriverSQLite:   SQLite(t),
		models.DriverPostgres: Postgres(t),
	}
}

// Each runs fn as a subtest named after each driver, with a fresh store.
func Each(t *testing.T, fn func(t *testing.T, s *models.Store)) {
	t.Helper()
	stores := Stores(t)
	names := make([]string, 0, len(stores))
	for name := range stores {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := stores[name]
		t.Run(name, func(t *testing.T) { fn(t, s) })
	}
}

// SQLite returns a fresh migrated store on an SQLite file in t.TempDir().
func SQLite(t testing.TB) *models.Store {
	t.Helper()
	return open(t, models.Config{Driver: models.DriverSQLite, DSN: filepath.Join(t.TempDir(), "certdesk.db")})
}

// Postgres returns a fresh migrated store on a new PostgreSQL database.
func Postgres(t testing.TB) *models.Store {
	t.Helper()
	return open(t, models.Config{Driver: models.DriverPostgres, DSN: PostgresDSN(t)})
}

// PostgresDSN creates an empty database certdesk_t_<random> on the server
// of DATABASE_URL and returns its URL; the database is dropped when the test
// ends. Use it to open several stores (several "replicas") on one database.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		t.Fatal("DATABASE_URL is not set: run make test (it starts PostgreSQL) or set DATABASE_URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := models.Open(ctx, models.Config{Driver: models.DriverPostgres, DSN: base})
	if err != nil {
		t.Fatalf("connecting to DATABASE_URL: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "certdesk_t_" + hex.EncodeToString(b[:])
	if err := admin.DB().WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := models.Open(ctx, models.Config{Driver: models.DriverPostgres, DSN: base})
		if err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
			return
		}
		defer admin.Close()
		if err := admin.DB().WithContext(ctx).Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("DATABASE_URL is not a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// open opens and migrates a store and closes it at cleanup.
func open(t testing.TB, cfg models.Config) *models.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := models.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("opening %s store: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrating %s store: %v", cfg.Driver, err)
	}
	return s
}

// Replicas returns n migrated stores, each with its own connection pool, on
// one fresh PostgreSQL database: what n portal replicas sharing a database
// see (advisory locks, SKIP LOCKED and row locks act between them).
func Replicas(t testing.TB, n int) []*models.Store {
	t.Helper()
	dsn := PostgresDSN(t)
	stores := make([]*models.Store, n)
	for i := range stores {
		stores[i] = open(t, models.Config{Driver: models.DriverPostgres, DSN: dsn})
	}
	return stores
}
