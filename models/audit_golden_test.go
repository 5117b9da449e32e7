package models_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/serial"
)

// goldenChain reads testdata/audit_chain_v1.json: a chain of one event of
// every kind (33 events, ending with a checkpoint event), exported with its
// hashes from a store that still wrote audit details as map literals.
func goldenChain(t *testing.T) []models.AuditEvent {
	t.Helper()
	b, err := os.ReadFile("testdata/audit_chain_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var evs []models.AuditEvent
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("testdata/audit_chain_v1.json: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("testdata/audit_chain_v1.json holds no events")
	}
	return evs
}

// insertChain stores evs as they are, rows and head, bypassing the recorder.
func insertChain(t *testing.T, s *models.Store, evs []models.AuditEvent) {
	t.Helper()
	if err := s.DB().CreateInBatches(evs, 100).Error; err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	exec(t, s, "UPDATE audit_heads SET seq = ?, hash = ? WHERE id = 1", last.Seq, last.Hash)
}

func TestAuditChain_WrittenByEarlierRelease_StillVerifies(t *testing.T) {
	evs := goldenChain(t)
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		insertChain(t, s, evs)
		v := mustVerify(t, s)
		if v.Events != int64(len(evs)) || v.HeadHash != evs[len(evs)-1].Hash {
			t.Fatalf("verification = %+v, want %d events ending in %s", v, len(evs), evs[len(evs)-1].Hash)
		}
		got, _, err := s.ListAudit(ctx, models.AuditFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			want := evs[e.Seq-1]
			if e.Detail != want.Detail || e.Hash != want.Hash || models.AuditHash(&e) != want.Hash {
				t.Fatalf("event %d read back as %s (hash %s), stored %s (hash %s)", e.Seq, e.Detail, models.AuditHash(&e), want.Detail, want.Hash)
			}
		}
	})
}

// webActor and the others below are the actors of the sign-in events in
// auditScenario and the golden chain.
var (
	webActor  = models.Actor{Subject: "carol-partner", Role: models.RolePartner, Org: "acme", Source: "198.51.100.7"}
	anonActor = models.Actor{Subject: "anonymous", Source: "203.0.113.9"}
)

// recordAuthEvents records the sign-in events of the golden chain the way
// the web layer does.
func recordAuthEvents(t *testing.T, s *models.Store) {
	t.Helper()
	for _, err := range []error{
		s.Record(ctx, webActor, "user", webActor.Subject, models.AuthLoginEvent{Email: "carol@acme.example", Method: "oidc", Name: "Carol"}),
		s.Record(ctx, anonActor, "user", "", models.AuthLoginFailedEvent{Why: "bad_state"}),
		s.Record(ctx, anonActor, "user", "", models.AuthLoginFailedEvent{Error: "access_denied", Why: "provider_error"}),
		s.Record(ctx, anonActor, "user", "eve", models.AuthLoginFailedEvent{Subject: "eve", Why: "bad_nonce"}),
		s.Record(ctx, models.Actor{Subject: "frank", Source: "203.0.113.10"}, "user", "frank",
			models.AuthLoginDeniedEvent{Claim: "groups", Values: []string{"staff", "<b>"}, Why: "no_role"}),
		s.Record(ctx, models.Actor{Subject: "gina", Source: "203.0.113.11"}, "user", "gina",
			models.AuthLoginDeniedEvent{Claim: "groups", Why: "no_org"}),
		s.Record(ctx, webActor, "user", webActor.Subject, models.AuthLogoutEvent{}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// allEvents returns the whole chain, oldest first.
func allEvents(t *testing.T, s *models.Store) []models.AuditEvent {
	t.Helper()
	var evs []models.AuditEvent
	err := s.StreamAudit(ctx, models.AuditFilter{}, func(e *models.AuditEvent) error {
		evs = append(evs, *e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

var (
	uuidRE           = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	checkpointHashRE = regexp.MustCompile(`"hash":"[0-9a-f]{64}"`)
	serialRE         = regexp.MustCompile(`"serial":"[0-9a-fA-F]+"`)
)

// sansRandomIDs masks what differs between two runs of auditScenario: the
// random UUIDs of requests, certificates and tokens, and so the hash that a
// checkpoint covers. Serials are compared in one spelling: the golden chain
// was written when the store kept them in lower case without a leading
// zero, and now keeps the openssl form.
func sansRandomIDs(s string) string {
	s = serialRE.ReplaceAllStringFunc(s, func(m string) string {
		n, err := serial.Parse(strings.TrimSuffix(strings.TrimPrefix(m, `"serial":"`), `"`))
		if err != nil {
			return m
		}
		return `"serial":"` + n.String() + `"`
	})
	return checkpointHashRE.ReplaceAllString(uuidRE.ReplaceAllString(s, "<uuid>"), `"hash":"<hash>"`)
}

// objectID is an event's object id, an OCSP responder's serial in the
// openssl spelling.
func objectID(e models.AuditEvent) string {
	if e.ObjectType == "ocsp_responder" {
		if n, err := serial.Parse(e.ObjectID); err == nil {
			return n.String()
		}
	}
	return e.ObjectID
}

func TestAuditEvents_SameScenario_WriteWhatTheMapLiteralsWrote(t *testing.T) {
	golden := goldenChain(t)
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		auditScenario(t, s, recordAuthEvents)
		got := allEvents(t, s)
		if len(got) != len(golden) {
			t.Fatalf("scenario recorded %d events, the golden chain has %d", len(got), len(golden))
		}
		for i, g := range got {
			w := golden[i]
			gotLine := fmt.Sprintf("%s %s %s/%s by %s (%s, %s) at %s: %s", g.Action, g.Org, g.ObjectType, sansRandomIDs(objectID(g)),
				g.Actor, g.Role, g.Source, g.Time.UTC().Format(time.RFC3339Nano), sansRandomIDs(g.Detail))
			wantLine := fmt.Sprintf("%s %s %s/%s by %s (%s, %s) at %s: %s", w.Action, w.Org, w.ObjectType, sansRandomIDs(objectID(w)),
				w.Actor, w.Role, w.Source, w.Time.UTC().Format(time.RFC3339Nano), sansRandomIDs(w.Detail))
			if gotLine != wantLine {
				t.Errorf("event %d:\n got %s\nwant %s", g.Seq, gotLine, wantLine)
			}
		}
		mustVerify(t, s)
	})
}

// eventOfAction returns a new, empty typed event for each action of the
// golden chain; the chain holds every kind, and every kind is here.
var eventOfAction = map[string]func() models.Event{
	models.ActionRequestSubmit:           func() models.Event { return &models.RequestSubmitEvent{} },
	models.ActionRequestApprove:          func() models.Event { return &models.RequestApproveEvent{} },
	models.ActionRequestAutoApprove:      func() models.Event { return &models.RequestAutoApproveEvent{} },
	models.ActionRequestReject:           func() models.Event { return &models.RequestRejectEvent{} },
	models.ActionRequestCancel:           func() models.Event { return &models.RequestCancelEvent{} },
	models.ActionCertificateReserve:      func() models.Event { return &models.CertificateReserveEvent{} },
	models.ActionCertificateIssue:        func() models.Event { return &models.CertificateIssueEvent{} },
	models.ActionCertificateFail:         func() models.Event { return &models.CertificateFailEvent{} },
	models.ActionCertificateRevoke:       func() models.Event { return &models.CertificateRevokeEvent{} },
	models.ActionCertificateExpiryNotice: func() models.Event { return &models.CertificateExpiryNoticeEvent{} },
	models.ActionCRLPublish:              func() models.Event { return &models.CRLPublishEvent{} },
	models.ActionOCSPResponderCreate:     func() models.Event { return &models.OCSPResponderCreateEvent{} },
	models.ActionTokenCreate:             func() models.Event { return &models.TokenCreateEvent{} },
	models.ActionTokenRevoke:             func() models.Event { return &models.TokenRevokeEvent{} },
	models.ActionMembershipSet:           func() models.Event { return &models.MembershipSetEvent{} },
	models.ActionOrgCreate:               func() models.Event { return &models.OrgCreateEvent{} },
	models.ActionOrgUpdate:               func() models.Event { return &models.OrgUpdateEvent{} },
	models.ActionAuditCheckpoint:         func() models.Event { return &models.AuditCheckpointEvent{} },
	models.ActionAuthLogin:               func() models.Event { return &models.AuthLoginEvent{} },
	models.ActionAuthLoginFailed:         func() models.Event { return &models.AuthLoginFailedEvent{} },
	models.ActionAuthLoginDenied:         func() models.Event { return &models.AuthLoginDeniedEvent{} },
	models.ActionAuthLogout:              func() models.Event { return &models.AuthLogoutEvent{} },
}

func TestAuditEvents_GoldenDetail_DecodesIntoItsTypeAndIsStoredByteForByte(t *testing.T) {
	golden := goldenChain(t)
	seen := map[string]bool{}
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		for _, w := range golden {
			newEvent, ok := eventOfAction[w.Action]
			if !ok {
				t.Fatalf("event %d: no typed event for action %q", w.Seq, w.Action)
			}
			seen[w.Action] = true
			ev := newEvent()
			dec := json.NewDecoder(strings.NewReader(w.Detail))
			dec.DisallowUnknownFields()
			if err := dec.Decode(ev); err != nil {
				t.Fatalf("event %d (%s): detail %s does not fit %T: %v", w.Seq, w.Action, w.Detail, ev, err)
			}
			if ev.Action() != w.Action {
				t.Fatalf("event %d: %T has action %q, want %q", w.Seq, ev, ev.Action(), w.Action)
			}
			a := models.Actor{Subject: w.Actor, Role: w.Role, Org: w.Org, Source: w.Source}
			if err := s.Record(ctx, a, w.ObjectType, w.ObjectID, ev); err != nil {
				t.Fatal(err)
			}
			if got := lastEvent(t, s); got.Detail != w.Detail {
				t.Errorf("event %d (%s): stored\n %s\nwant\n %s", w.Seq, w.Action, got.Detail, w.Detail)
			}
		}
	})
	for action := range eventOfAction {
		if !seen[action] {
			t.Errorf("the golden chain has no %s event", action)
		}
	}
}
