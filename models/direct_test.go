package models_test

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// storedText returns the columns of one row of table as the database
// stores them, as text (SQLite's quote(), PostgreSQL's ::text; NULL as
// !Valid), so that two rows written by different code can be compared byte
// for byte.
func storedText(t *testing.T, s *models.Store, table, id string, cols ...string) []sql.NullString {
	t.Helper()
	exprs := make([]string, len(cols))
	for i, c := range cols {
		if s.Driver() == models.DriverSQLite {
			exprs[i] = "quote(" + c + ")"
		} else {
			exprs[i] = c + "::text"
		}
	}
	out := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range out {
		dest[i] = &out[i]
	}
	if err := s.DB().Raw("SELECT "+strings.Join(exprs, ", ")+" FROM "+table+" WHERE id = ?", id).Row().Scan(dest...); err != nil {
		t.Fatalf("reading %s %s as stored: %v", table, id, err)
	}
	return out
}

// sameStored fails unless rows a and b of table store the same in every
// column but id.
func sameStored(t *testing.T, s *models.Store, table, a, b string, cols []string) {
	t.Helper()
	cols = cols[1:] // id
	ra, rb := storedText(t, s, table, a, cols...), storedText(t, s, table, b, cols...)
	for i, c := range cols {
		if ra[i] != rb[i] {
			t.Errorf("%s.%s: gorm stores %v, the store's own statement %v", table, c, ra[i], rb[i])
		}
	}
}

// sameValue fails unless got equals want, field by field, times compared
// as instants.
func sameValue(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := 0; i < g.NumField(); i++ {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if !equalValue(gf, wf) {
			t.Errorf("%s.%s = %#v, want %#v", what, g.Type().Field(i).Name, gf, wf)
		}
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		return x.Equal(b.(time.Time))
	case *time.Time:
		y := b.(*time.Time)
		return x == nil && y == nil || x != nil && y != nil && x.Equal(*y)
	}
	return reflect.DeepEqual(a, b)
}

func TestAPIToken_WrittenByGormReadByTheStore_AndBack(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := newClock()
		s.Now = clock.Now
		parent := &models.APIToken{Name: "parent", Subject: partner.Subject, Role: models.RolePartner, Org: "acme",
			Hash: strings.Repeat("a", 64), ExpiresAt: clock.Now().Add(48 * time.Hour)}
		if err := s.CreateToken(ctx, partner, parent); err != nil {
			t.Fatal(err)
		}
		child := &models.APIToken{Name: "child", Subject: partner.Subject, Role: models.RolePartner, Org: "acme",
			Hash: strings.Repeat("b", 64), ParentID: &parent.ID, ExpiresAt: clock.Now().Add(24 * time.Hour)}
		if err := s.CreateToken(ctx, partner, child); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		got, err := s.LookupToken(ctx, child.Hash)
		if err != nil {
			t.Fatal(err)
		}
		used := clock.Now().UTC()
		want := *child
		want.LastUsedAt = &used
		sameValue(t, "looked up", got, &want)
		// Read back by gorm: what the store's statement wrote of its use.
		var viaGorm models.APIToken
		if err := s.DB().Where("id = ?", child.ID).Take(&viaGorm).Error; err != nil {
			t.Fatal(err)
		}
		sameValue(t, "read by gorm", &viaGorm, &want)
		// The store's UPDATE writes the time as gorm's does.
		if err := s.DB().Model(&models.APIToken{}).Where("id = ?", parent.ID).Update("last_used_at", used).Error; err != nil {
			t.Fatal(err)
		}
		p, c := storedText(t, s, "api_tokens", parent.ID, "last_used_at"), storedText(t, s, "api_tokens", child.ID, "last_used_at")
		if p[0] != c[0] || !p[0].Valid {
			t.Errorf("last_used_at: gorm stores %v, the store's own statement %v", p[0], c[0])
		}
	})
}
