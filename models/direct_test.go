package models_test

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/google/uuid"
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

// sameStored fails unless rows a and b of table store the same in each of
// cols.
func sameStored(t *testing.T, s *models.Store, table, a, b string, cols ...string) {
	t.Helper()
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

// allColumns are the columns of table, as the database has them.
func allColumns(t *testing.T, s *models.Store, table string) []string {
	t.Helper()
	cols, err := s.DB().Migrator().ColumnTypes(table)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name()
	}
	return names
}

// except is cols without the names given.
func except(cols []string, names ...string) []string {
	var out []string
	for _, c := range cols {
		if !slices.Contains(names, c) {
			out = append(out, c)
		}
	}
	return out
}

// TestRowsWrittenByGormAndByTheStore_StoreAlikeAndReadBack writes each
// model's row twice, with gorm and with the store's own INSERT, then
// compares what the database stores of the two (every column but those
// that must differ) and reads each back with the other code.
func TestRowsWrittenByGormAndByTheStore_StoreAlikeAndReadBack(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
		at := func(h int) *time.Time { v := t0.Add(time.Duration(h) * time.Hour); return &v }
		str := func(v string) *string { return &v }
		reason := 1
		requests := map[string]func(id string) *models.Request{
			"every field": func(id string) *models.Request {
				return &models.Request{ID: id, State: models.StateIssued, Org: "acme", Identities: models.StringList{"spiffe://a", "é"},
					CSRPEM: "csr", KeyType: "ECDSA P-256", ValidityDays: 30, Note: "note 'quoted'", RequestedBy: "carol",
					RequesterEmail: "c@example.org", RenewalOf: str("renewed"), KeySHA256: strings.Repeat("c", 64),
					DecidedBy: "alice", DecisionReason: "ok", DecidedAt: at(1), CertificateID: str("cert"),
					FailureReason: "failed once", Via: models.ViaRenew, ViaRef: "ref", CreatedAt: *at(2), UpdatedAt: *at(3)}
			},
			"nothing optional": func(id string) *models.Request {
				return &models.Request{ID: id, State: models.StateSubmitted, Org: "acme", CSRPEM: "csr", RequestedBy: "carol",
					CreatedAt: *at(2), UpdatedAt: *at(2)}
			},
		}
		for name, fixture := range requests {
			byGorm, byStore := fixture(uuid.NewString()), fixture(uuid.NewString())
			if err := s.DB().Create(byGorm).Error; err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRequestRow(ctx, byStore); err != nil {
				t.Fatal(err)
			}
			sameStored(t, s, "requests", byGorm.ID, byStore.ID, except(allColumns(t, s, "requests"), "id")...)
			got, err := s.ReadRequestRow(ctx, byGorm.ID)
			if err != nil {
				t.Fatal(err)
			}
			sameValue(t, name+": request written by gorm, read by the store", got, byGorm)
			var viaGorm models.Request
			if err := s.DB().Where("id = ?", byStore.ID).Take(&viaGorm).Error; err != nil {
				t.Fatal(err)
			}
			sameValue(t, name+": request written by the store, read by gorm", &viaGorm, byStore)
		}

		req := submit(t, s)
		certs := map[string]func(id, serial string) *models.Certificate{
			"every field": func(id, serial string) *models.Certificate {
				return &models.Certificate{ID: id, Serial: serial, RequestID: req.ID, Org: "acme", Identities: models.StringList{"spiffe://b"},
					KeyType: "Ed25519", NotBefore: *at(4), NotAfter: *at(5), State: models.CertFailed, PrecertDER: []byte{0, 1, 2},
					DER: []byte{3, 4}, RevokedAt: at(6), RevocationReason: &reason, RevokedBy: "bob", IssuerKeyID: "kid",
					CRLPartition: 3, ClaimedBy: "claim", LeaseUntil: at(7), CreatedAt: *at(8), UpdatedAt: *at(9)}
			},
			"nothing optional": func(id, serial string) *models.Certificate {
				return &models.Certificate{ID: id, Serial: serial, RequestID: req.ID, Org: "acme", NotBefore: *at(4), NotAfter: *at(5),
					State: models.CertFailed, CRLPartition: -1, CreatedAt: *at(8), UpdatedAt: *at(8)}
			},
		}
		n := 0
		for name, fixture := range certs {
			n += 2
			byGorm, byStore := fixture(uuid.NewString(), fmt.Sprintf("%02X", n)), fixture(uuid.NewString(), fmt.Sprintf("%02X", n+1))
			if err := s.DB().Create(byGorm).Error; err != nil {
				t.Fatal(err)
			}
			if err := s.InsertCertificateRow(ctx, byStore); err != nil {
				t.Fatal(err)
			}
			sameStored(t, s, "certificates", byGorm.ID, byStore.ID, except(allColumns(t, s, "certificates"), "id", "serial")...)
			got, err := s.ReadCertificateRow(ctx, byGorm.ID)
			if err != nil {
				t.Fatal(err)
			}
			sameValue(t, name+": certificate written by gorm, read by the store", got, byGorm)
			var viaGorm models.Certificate
			if err := s.DB().Where("id = ?", byStore.ID).Take(&viaGorm).Error; err != nil {
				t.Fatal(err)
			}
			sameValue(t, name+": certificate written by the store, read by gorm", &viaGorm, byStore)
		}
	})
}

// TestApproveAndComplete_RowsReadBackAsGormReadsThem checks what the
// approval's and the completion's UPDATE … RETURNING read back (SQLite
// returns computed times as text) against gorm's reading of the same rows.
func TestApproveAndComplete_RowsReadBackAsGormReadsThem(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := newClock()
		s.Now = clock.Now
		newOrg(t, s, "acme", false)
		r := submit(t, s)
		clock.Advance(time.Second)
		now := clock.Now()
		c := &models.Certificate{Serial: randSerial(t), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), PrecertDER: []byte("tbs"),
			Org: r.Org, Identities: r.Identities, KeyType: r.KeyType}
		approved, err := s.ApproveAndReserve(ctx, admin, r.ID, "fine", c)
		if err != nil {
			t.Fatal(err)
		}
		if approved.State != models.StateApproved || approved.DecidedAt == nil || !approved.DecidedAt.Equal(now) {
			t.Errorf("approved request read back as %+v", approved)
		}
		got, err := s.GetRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameValue(t, "approved request", approved, got)
		clock.Advance(time.Second)
		issued, err := s.CompleteIssuance(ctx, system, c.ID, []byte("der"))
		if err != nil {
			t.Fatal(err)
		}
		if issued.State != models.StateIssued || issued.CertificateID == nil || *issued.CertificateID != c.ID {
			t.Errorf("issued request read back as %+v", issued)
		}
		if got, err = s.GetRequest(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		sameValue(t, "issued request", issued, got)
		ev := lastEvent(t, s)
		if ev.Action != "certificate.issue" || !strings.Contains(ev.Detail, c.Serial) ||
			!strings.Contains(ev.Detail, c.NotAfter.UTC().Format(time.RFC3339)) {
			t.Errorf("last event %s %s, want certificate.issue naming serial %s and not_after %s", ev.Action, ev.Detail, c.Serial, c.NotAfter)
		}
		mustVerify(t, s)
	})
}

// TestDecisionReads_ReadWhatGormReads checks the store's own reads of a
// request with its organisation, and of an organisation with the
// certificate a renewal names, against gorm's reading of the same rows.
func TestDecisionReads_ReadWhatGormReads(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		o := &models.Organization{Slug: "acme", Name: "Acme Ltd", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"},
			DNSSuffixes: models.StringList{"acme.example"}, EmailDomains: models.StringList{"acme.example"}, MaxValidityDays: 90,
			AutoApproveRenewals: true, ContactEmails: models.StringList{"ops@acme.example"}, ExpiryNoticeDays: []int{10, 2}}
		if err := s.CreateOrg(ctx, admin, o); err != nil {
			t.Fatal(err)
		}
		bare := &models.Organization{Slug: "bare", Name: "Bare", MaxValidityDays: 30}
		if err := s.CreateOrg(ctx, admin, bare); err != nil {
			t.Fatal(err)
		}
		for _, slug := range []string{"acme", "bare"} {
			want, err := s.GetOrg(ctx, slug)
			if err != nil {
				t.Fatal(err)
			}
			got, renewed, err := s.GetOrgForRenewal(ctx, slug, "no-such-certificate")
			if err != nil {
				t.Fatal(err)
			}
			sameValue(t, slug+" for a renewal", got, want)
			if renewed != nil {
				t.Errorf("%s: a missing certificate read as %+v", slug, renewed)
			}
		}
		c := issue(t, s)
		want, err := s.GetCertificate(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, renewed, err := s.GetOrgForRenewal(ctx, "acme", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if renewed == nil || renewed.ID != want.ID || renewed.Org != want.Org || renewed.State != want.State ||
			!renewed.NotAfter.Equal(want.NotAfter) || !reflect.DeepEqual(renewed.Identities, want.Identities) {
			t.Errorf("renewed certificate read as %+v, want %+v", renewed, want)
		}
		r := submit(t, s)
		d, err := s.GetRequestToDecide(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantReq, err := s.GetRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantOrg, err := s.GetOrg(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		sameValue(t, "request to decide", &d.Request, wantReq)
		sameValue(t, "its organisation", &d.Organization, wantOrg)
		if d.KeyBlocked {
			t.Error("an unblocked key reads as blocked")
		}
		if _, err := s.GetRequestToDecide(ctx, "no-such-request"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("a missing request: %v, want ErrNotFound", err)
		}
	})
}
