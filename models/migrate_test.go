package models_test

import (
	"sync"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"gorm.io/gorm/schema"
)

func TestMigrate_SecondRun_ChangesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		want := s.SchemaVersion()
		if want < 1 {
			t.Fatalf("SchemaVersion = %d, want at least 1", want)
		}
		for i := 0; i < 2; i++ {
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate run %d: %v", i+2, err)
			}
			got, err := s.AppliedVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("applied version = %d, want %d", got, want)
			}
		}
		var n int64
		if err := s.DB().Table("schema_migrations").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != int64(s.SchemaSteps()) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, s.SchemaSteps())
		}
		v := mustVerify(t, s)
		if v.Events != 0 {
			t.Fatalf("fresh chain has %d events", v.Events)
		}
	})
}

func TestMigrate_ConcurrentReplicas_ApplyOnce(t *testing.T) {
	dsn := modelstest.PostgresDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := models.Open(ctx, models.Config{Driver: models.DriverPostgres, DSN: dsn})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
}

// Every field of every model must have a column: the SQL migrations and
// the gorm structs must not drift apart.
func TestMigrate_SchemaMatchesModels(t *testing.T) {
	modelsList := []any{&models.Organization{}, &models.Request{}, &models.Certificate{}, &models.AuditEvent{},
		&models.APIToken{}, &models.Session{}, &models.CRL{}, &models.Membership{}, &models.AuditCheckpoint{},
		&models.User{}, &models.Invitation{}}
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		for _, m := range modelsList {
			sch, err := schema.Parse(m, &sync.Map{}, schema.NamingStrategy{})
			if err != nil {
				t.Fatal(err)
			}
			if !s.DB().Migrator().HasTable(sch.Table) {
				t.Errorf("table %s missing", sch.Table)
				continue
			}
			for _, f := range sch.Fields {
				if f.DBName != "" && !s.DB().Migrator().HasColumn(m, f.DBName) {
					t.Errorf("column %s.%s missing", sch.Table, f.DBName)
				}
			}
		}
	})
}
