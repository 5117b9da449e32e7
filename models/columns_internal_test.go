package models

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/schema"
)

// columnsFixtures are a row of each model the store reads or writes itself,
// every field set and no two of the same type alike, with the column list,
// scan targets and values of that model.
func columnsFixtures() []struct {
	name   string
	model  any
	cols   []string
	dest   func() []any
	values func() []any
} {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d int) *time.Time { v := t0.Add(time.Duration(d) * time.Hour); return &v }
	str := func(s string) *string { return &s }
	reason := 4
	r := &Request{ID: "r-id", State: StateApproved, Org: "acme", Identities: StringList{"spiffe://a"}, CSRPEM: "csr",
		KeyType: "ECDSA P-256", ValidityDays: 30, Note: "note", RequestedBy: "carol", RequesterEmail: "c@example.org",
		RenewalOf: str("renewed-id"), KeySHA256: "key", DecidedBy: "alice", DecisionReason: "ok", DecidedAt: at(1),
		CertificateID: str("cert-id"), FailureReason: "fail", Via: ViaRenew, ViaRef: "ref", CreatedAt: *at(2), UpdatedAt: *at(3)}
	c := &Certificate{ID: "c-id", Serial: "0A", RequestID: "r-id", Org: "acme", Identities: StringList{"spiffe://b"},
		KeyType: "Ed25519", NotBefore: *at(4), NotAfter: *at(5), State: CertRevoked, PrecertDER: []byte{1}, DER: []byte{2},
		RevokedAt: at(6), RevocationReason: &reason, RevokedBy: "bob", IssuerKeyID: "kid", CRLPartition: 7,
		ClaimedBy: "claim", LeaseUntil: at(7), CreatedAt: *at(8), UpdatedAt: *at(9)}
	tk := &APIToken{ID: "t-id", Name: "name", Subject: "sub", Role: RolePartner, Org: "acme", Hash: "hash",
		ParentID: str("parent"), ExpiresAt: *at(10), RevokedAt: at(11), LastUsedAt: at(12), CreatedAt: *at(13)}
	o := &Organization{ID: 3, Slug: "acme", Name: "Acme", URIPrefixes: StringList{"u"}, DNSSuffixes: StringList{"d"},
		EmailDomains: StringList{"e"}, MaxValidityDays: 90, AutoApproveRenewals: true, ContactEmails: StringList{"c"},
		ExpiryNoticeDays: []int{5}, CreatedAt: *at(14), UpdatedAt: *at(15)}
	e := &AuditEvent{Seq: 8, Time: *at(16), Actor: "actor", Role: "role", Org: "org", Action: "action",
		ObjectType: "type", ObjectID: "oid", Source: "src", Detail: "{}", PrevHash: "prev", Hash: "hash"}
	return []struct {
		name   string
		model  any
		cols   []string
		dest   func() []any
		values func() []any
	}{
		{"Request", r, requestCols, r.scanDest, r.values},
		{"Certificate", c, certificateCols, c.scanDest, c.values},
		{"APIToken", tk, apiTokenCols, tk.scanDest, nil},
		{"Organization", o, organizationCols, o.scanDest, nil},
		{"AuditEvent", e, auditEventCols, nil, e.values},
	}
}

func TestColumns_MatchGormSchema_InOrder(t *testing.T) {
	for _, tc := range columnsFixtures() {
		t.Run(tc.name, func(t *testing.T) {
			sch, err := schema.Parse(tc.model, &sync.Map{}, schema.NamingStrategy{})
			if err != nil {
				t.Fatal(err)
			}
			cols := make([]string, len(tc.cols))
			for i, c := range tc.cols {
				cols[i] = strings.Trim(c, `"`)
			}
			if !reflect.DeepEqual(cols, sch.DBNames) {
				t.Fatalf("columns\n %v, gorm maps\n %v", cols, sch.DBNames)
			}
			rv := reflect.ValueOf(tc.model).Elem()
			if tc.dest != nil {
				dest := tc.dest()
				if len(dest) != len(cols) {
					t.Fatalf("%d scan targets for %d columns", len(dest), len(cols))
				}
				for i, d := range dest {
					f := sch.LookUpField(cols[i])
					got := reflect.ValueOf(d).Field(0).Pointer()
					want := f.ReflectValueOf(context.Background(), rv).Addr().Pointer()
					if got != want {
						t.Errorf("column %s scans into another field than %s", cols[i], f.Name)
					}
				}
			}
			if tc.values != nil {
				vals := tc.values()
				if len(vals) != len(cols) {
					t.Fatalf("%d values for %d columns", len(vals), len(cols))
				}
				for i, v := range vals {
					f := sch.LookUpField(cols[i])
					want := f.ReflectValueOf(context.Background(), rv).Interface()
					if f.Serializer != nil {
						want = jsonValue(want.(StringList))
					}
					if !reflect.DeepEqual(v, want) {
						t.Errorf("column %s gets %#v, want the value of %s, %#v", cols[i], v, f.Name, want)
					}
				}
			}
		})
	}
}
