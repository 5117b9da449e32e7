package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// zeroHash is PrevHash of the first audit event.
var zeroHash = strings.Repeat("0", 64)

// auditHashVersion separates this hash format from any later one.
const auditHashVersion = "certdesk-audit-v1"

// auditHead is the single row of audit_heads: the last appended event.
type auditHead struct {
	ID   int    `gorm:"primaryKey"`
	Seq  int64  `gorm:"not null"`
	Hash string `gorm:"size:64;not null"`
}

// TableName is the table of the chain head.
func (auditHead) TableName() string { return "audit_heads" }

// AuditFilter selects audit events. Empty fields match everything; From is
// inclusive and To exclusive.
type AuditFilter struct {
	Actor    string
	Org      string
	Action   string
	ObjectID string
	From     *time.Time
	To       *time.Time
	Cursor   string // from a previous ListAudit; ignored by StreamAudit
	Limit    int    // ListAudit page size: default 50, max 500
}

// AuditVerification is the result of walking the audit chain.
type AuditVerification struct {
	OK          bool   `json:"ok"`
	Events      int64  `json:"events"`                  // events checked
	FirstBadSeq int64  `json:"first_bad_seq,omitempty"` // 0 when OK
	Problem     string `json:"problem,omitempty"`       // e.g. "event 17 was altered"
	HeadHash    string `json:"head_hash"`               // hash of the last event (the chain head)

	Checkpoints       int64 `json:"checkpoints"`         // signed checkpoints checked
	LastCheckpointSeq int64 `json:"last_checkpoint_seq"` // event of the last one checked, 0 if none
}

// Audit field limits (the column sizes); longer values are cut before
// hashing so that what is stored is what was hashed.
const (
	maxActor      = 255
	maxRole       = 16
	maxOrg        = 64
	maxAction     = 64
	maxObjectType = 32
	maxObjectID   = 64
	maxSource     = 64
)

// Record appends a standalone audit event (sign-in, failed sign-in, HSM
// signature, configuration change) in its own transaction. ev is one of the
// event structs of audit_events.go, or a VariableEvent; its detail is stored
// with sorted keys.
func (s *Store) Record(ctx context.Context, a Actor, objectType, objectID string, ev Event) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		return s.appendAudit(tx, a, a.Org, objectType, objectID, ev)
	})
	if err != nil {
		return fmt.Errorf("recording audit event %q: %w", actionOf(ev), err)
	}
	return nil
}

// actionOf is ev's action, "" for a nil event.
func actionOf(ev Event) string {
	if ev == nil {
		return ""
	}
	return ev.Action()
}

// appendAudit adds one event to the chain inside tx, the transaction of the
// change it records; see appendAudits.
func (s *Store) appendAudit(tx *gorm.DB, a Actor, org, objectType, objectID string, event Event) error {
	return s.appendAudits(tx, auditEntry{Actor: a, Org: org, ObjectType: objectType, ObjectID: objectID, Event: event})
}

// auditEntry is one event to append: who, in which organisation, about
// which object.
type auditEntry struct {
	Actor      Actor
	Org        string
	ObjectType string
	ObjectID   string
	Event      Event
}

// appendAudits adds events to the chain inside tx, the transaction of the
// change they record, in order, with one update of the chain head for all of
// them. Callers make it the last statement of their transaction, so the head
// lock is always taken after any row locks (no lock-order cycles) and held
// only for writing the events and the commit.
//
// The process's appends are ordered by the Store's head mutex, held only
// while the statement that writes the events runs, not until the commit.
// The events are linked to the head this process last wrote — committed, or
// about to be by a transaction that holds the head row — and written by one
// statement that locks the head row (waiting for that transaction's commit)
// and advances it only if it is still that head (… AND seq = … AND hash =
// …). When it is not (another process appended, or the transaction that
// wrote it rolled back), the head is read with SELECT … FOR UPDATE and the
// events linked to it. Either way, concurrent appends get contiguous
// sequence numbers and each links to its predecessor. A further append in
// the same transaction links to the transaction's own last event.
func (s *Store) appendAudits(tx *gorm.DB, entries ...auditEntry) error {
	details := make([]string, len(entries))
	for i, e := range entries {
		action := actionOf(e.Event)
		if strings.TrimSpace(e.Actor.Subject) == "" {
			return fmt.Errorf("%w: audit event %q needs an actor", ErrInvalid, action)
		}
		if strings.TrimSpace(action) == "" {
			return fmt.Errorf("%w: audit event needs an action", ErrInvalid)
		}
		d, err := canonicalDetail(e.Event)
		if err != nil {
			return err
		}
		details[i] = d
	}
	st, _ := tx.Statement.Context.Value(committedEventsKey{}).(*txAudit)
	if st != nil && st.atCommit {
		st.pending = append(st.pending, entries...)
		st.pendingDetails = append(st.pendingDetails, details...)
		return nil
	}
	var evs []AuditEvent
	switch {
	case st != nil && len(st.events) > 0:
		// This transaction already holds the head.
		head := st.events[len(st.events)-1].head()
		evs = s.linkEvents(head, entries, details)
		if err := s.writeEvents(tx, head, evs); err != nil {
			return err
		}
		// Remember the head moved on, unless another append holds the
		// mutex: it waits for this transaction's commit, which must not
		// wait for it; it will find the head moved and read it.
		if s.headMu.TryLock() {
			if s.headKnown && s.head == head {
				s.head = evs[len(evs)-1].head()
			}
			s.headMu.Unlock()
		}
	case st != nil:
		var err error
		if evs, err = s.appendAtHead(tx, entries, details); err != nil {
			return err
		}
		st.advancedHead = true
	default:
		// Not a Store.tx transaction: lock the head row and read it.
		var err error
		if evs, err = s.appendAtLockedHead(tx, entries, details); err != nil {
			return err
		}
		s.forgetHead()
	}
	if st != nil {
		st.events = append(st.events, evs...)
	}
	return nil
}

// head is the chain head that e leads to.
func (e *AuditEvent) head() auditHead { return auditHead{ID: 1, Seq: e.Seq, Hash: e.Hash} }

// appendAtHead links the events to the head this process last wrote and
// writes them if that is the stored head once locked; otherwise it reads the
// stored head under its lock and links them to it. It remembers the head it
// wrote.
func (s *Store) appendAtHead(tx *gorm.DB, entries []auditEntry, details []string) ([]AuditEvent, error) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	var evs []AuditEvent
	err := errHeadMoved
	if s.headKnown {
		evs = s.linkEvents(s.head, entries, details)
		err = s.writeEvents(tx, s.head, evs)
	}
	if errors.Is(err, errHeadMoved) {
		evs, err = s.appendAtLockedHead(tx, entries, details)
	}
	if err != nil {
		s.headKnown = false
		return nil, err
	}
	s.head, s.headKnown = evs[len(evs)-1].head(), true
	return evs, nil
}

// appendAtLockedHead reads the head with SELECT … FOR UPDATE and writes the
// events linked to it.
func (s *Store) appendAtLockedHead(tx *gorm.DB, entries []auditEntry, details []string) ([]AuditEvent, error) {
	head := auditHead{ID: 1}
	if err := s.queryRow(on(tx), lockAuditHead, []any{int64Col{&head.Seq}, strCol{&head.Hash}}); err != nil {
		return nil, fmt.Errorf("locking audit head: %w", err)
	}
	evs := s.linkEvents(head, entries, details)
	if err := s.writeEvents(tx, head, evs); err != nil {
		if errors.Is(err, errHeadMoved) {
			return nil, fmt.Errorf("advancing audit head: %w: head moved concurrently", ErrConflict)
		}
		return nil, err
	}
	return evs, nil
}

// forgetHead drops the remembered head; the next append reads it.
func (s *Store) forgetHead() {
	s.headMu.Lock()
	s.headKnown = false
	s.headMu.Unlock()
}

// errHeadMoved means the stored chain head is not the one expected.
var errHeadMoved = errors.New("the audit chain head moved")

// linkEvents makes the events that follow head, each linked to the one
// before.
func (s *Store) linkEvents(head auditHead, entries []auditEntry, details []string) []AuditEvent {
	evs := make([]AuditEvent, len(entries))
	now := s.now()
	prev := head
	for i, e := range entries {
		evs[i] = AuditEvent{
			Seq:        prev.Seq + 1,
			Time:       now,
			Actor:      cut(e.Actor.Subject, maxActor),
			Role:       cut(e.Actor.Role, maxRole),
			Org:        cut(e.Org, maxOrg),
			Action:     cut(actionOf(e.Event), maxAction),
			ObjectType: cut(e.ObjectType, maxObjectType),
			ObjectID:   cut(e.ObjectID, maxObjectID),
			Source:     cut(e.Actor.Source, maxSource),
			Detail:     details[i],
			PrevHash:   prev.Hash,
		}
		evs[i].Hash = AuditHash(&evs[i])
		prev = evs[i].head()
	}
	return evs
}

// writeEvents moves the stored head from head to the last of evs and
// inserts evs, or does nothing and returns errHeadMoved when the stored head
// is not head. On PostgreSQL it is one statement: the head row is locked
// (SELECT … FOR UPDATE waits for a transaction that holds it and then sees
// the head it committed), compared, advanced and the events inserted, one
// round trip before the commit.
func (s *Store) writeEvents(tx *gorm.DB, head auditHead, evs []AuditEvent) error {
	last := evs[len(evs)-1]
	c := on(tx)
	if s.driver == DriverPostgres {
		q, args := headAppendSQL(head, evs, false)
		n, err := s.execText(c, q, args...)
		if err != nil {
			return fmt.Errorf("appending audit event: %w", err)
		}
		switch n {
		case int64(len(evs)):
			return nil
		case 0:
			return errHeadMoved
		}
		return fmt.Errorf("appending audit event: %d of %d events written", n, len(evs))
	}
	n, err := s.exec(c, advanceAuditHead, last.Seq, last.Hash, head.Seq, head.Hash)
	if err != nil {
		return fmt.Errorf("advancing audit head: %w", err)
	}
	if n != 1 {
		return errHeadMoved
	}
	q := insertAuditEvents
	args := make([]any, 0, len(evs)*len(auditEventCols))
	for i := range evs {
		if i > 0 {
			q += ", " + placeholders(len(auditEventCols))
		}
		args = append(args, evs[i].values()...)
	}
	if _, err := s.execText(c, q, args...); err != nil {
		return fmt.Errorf("appending audit event: %w", err)
	}
	return nil
}

// The statements of an audit append that are not headAppendSQL's: the
// head read under its lock, and on SQLite the head's conditional advance
// and the events' INSERT (one row of values each, the first here).
var (
	lockAuditHead = stmt{sqlite: `SELECT seq, hash FROM audit_heads WHERE id = 1`,
		postgres: `SELECT seq, hash FROM audit_heads WHERE id = 1 FOR UPDATE`}
	advanceAuditHead  = newStmt(`UPDATE audit_heads SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?`)
	insertAuditEvents = `INSERT INTO audit_events (` + columnList("", auditEventCols) + `) VALUES ` + placeholders(len(auditEventCols))
)

// cut shortens s to at most n bytes without splitting a UTF-8 sequence
// (invalid UTF-8 is replaced first: PostgreSQL refuses it).
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// canonicalDetail encodes an event's detail as a JSON object with sorted
// keys, numbers kept as written, and no HTML escaping; JSON null becomes
// "{}".
func canonicalDetail(ev Event) (string, error) {
	raw, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("%w: audit detail: %v", ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		if string(raw) == "null" {
			return "{}", nil
		}
		return "", fmt.Errorf("%w: audit detail must be a JSON object", ErrInvalid)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil { // map keys are sorted by encoding/json
		return "", fmt.Errorf("%w: audit detail: %v", ErrInvalid, err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// AuditHash computes an event's hash: hex(SHA-256) over the version tag and
// the fields seq, time (UTC, RFC 3339 with nanoseconds, trailing zeros
// dropped), actor, role, org, action, object_type, object_id, source, detail
// and prev_hash, each written as <decimal byte length>":"<bytes>",", so no
// two different events encode the same. docs/data-model.md specifies it for
// independent verifiers.
func AuditHash(e *AuditEvent) string {
	h := sha256.New()
	field := func(v string) {
		h.Write([]byte(strconv.Itoa(len(v))))
		h.Write([]byte{':'})
		h.Write([]byte(v))
		h.Write([]byte{','})
	}
	field(auditHashVersion)
	field(strconv.FormatInt(e.Seq, 10))
	field(e.Time.UTC().Format(time.RFC3339Nano))
	field(e.Actor)
	field(e.Role)
	field(e.Org)
	field(e.Action)
	field(e.ObjectType)
	field(e.ObjectID)
	field(e.Source)
	field(e.Detail)
	field(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// auditQuery applies the filter's conditions (not cursor or order).
func auditQuery(db *gorm.DB, f AuditFilter) *gorm.DB {
	q := db.Model(&AuditEvent{})
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Org != "" {
		q = q.Where("org = ?", f.Org)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.ObjectID != "" {
		q = q.Where("object_id = ?", f.ObjectID)
	}
	if f.From != nil {
		q = q.Where(`"time" >= ?`, normTime(*f.From))
	}
	if f.To != nil {
		q = q.Where(`"time" < ?`, normTime(*f.To))
	}
	return q
}

// ListAudit returns one page of matching events, newest first, and the
// cursor of the next page ("" on the last page).
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, string, error) {
	limit := pageLimit(f.Limit)
	q := auditQuery(s.db.WithContext(ctx), f)
	if f.Cursor != "" {
		parts, err := decodeCursor(f.Cursor, "audit", 1)
		if err != nil {
			return nil, "", err
		}
		seq, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
		}
		q = q.Where("seq < ?", seq)
	}
	var evs []AuditEvent
	if err := q.Order("seq DESC").Limit(limit + 1).Find(&evs).Error; err != nil {
		return nil, "", fmt.Errorf("listing audit events: %w", err)
	}
	next := ""
	if len(evs) > limit {
		evs = evs[:limit]
		next = encodeCursor("audit", strconv.FormatInt(evs[limit-1].Seq, 10))
	}
	return evs, next, nil
}

// streamBatch is how many events StreamAudit and VerifyAudit hold at once.
const streamBatch = 1000

// StreamAudit calls fn for every matching event, oldest first, reading in
// batches keyed on seq so memory stays constant for any number of events.
// No connection is held while fn runs. An error from fn stops the walk and is
// returned.
func (s *Store) StreamAudit(ctx context.Context, f AuditFilter, fn func(*AuditEvent) error) error {
	var after int64
	for {
		var evs []AuditEvent
		err := auditQuery(s.db.WithContext(ctx), f).Where("seq > ?", after).
			Order("seq ASC").Limit(streamBatch).Find(&evs).Error
		if err != nil {
			return fmt.Errorf("streaming audit events: %w", err)
		}
		for i := range evs {
			if err := fn(&evs[i]); err != nil {
				return err
			}
		}
		if len(evs) < streamBatch {
			return nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// VerifyAudit walks the whole chain in seq order and reports the first event
// that was altered (its hash does not match its contents), removed (a gap in
// seq, or the chain ends before the recorded head) or inserted/reordered (its
// prev_hash is not the hash of its predecessor, or it lies beyond the head).
// It also checks that every stored checkpoint matches the chain, but not the
// checkpoints' signatures: VerifyAuditWith does that.
func (s *Store) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	return s.VerifyAuditWith(ctx, nil)
}

// VerifyAuditWith is VerifyAudit that also checks each signed checkpoint:
// its signature with verifySig (skipped when verifySig is nil) and that the
// event at its seq has its hash. A chain rebuilt by someone who can write
// the database (every later hash and the head recomputed) passes the hash
// checks but not a checkpoint signed before the rewrite.
func (s *Store) VerifyAuditWith(ctx context.Context, verifySig func(cp *AuditCheckpoint) error) (*AuditVerification, error) {
	db := s.db.WithContext(ctx)
	// Checkpoints first, then the head: a checkpoint covers an event that
	// was committed before it, and the head only grows, so every checkpoint
	// read here lies at or below the head read next.
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	var head auditHead
	if err := db.Where("id = ?", 1).Take(&head).Error; err != nil {
		return nil, fmt.Errorf("reading audit head: %w", dbErr(err))
	}
	v := &AuditVerification{HeadHash: head.Hash}
	p, err := walkAudit(db, head, cps, verifySig, v)
	if err == nil && p == nil {
		p, err = checkBeyondHead(db, head, cps)
	}
	if err != nil {
		return nil, err
	}
	if p != nil {
		v.OK, v.FirstBadSeq, v.Problem = false, p.seq, p.problem
		return v, nil
	}
	v.OK = true
	return v, nil
}

// auditProblem is the first bad event a verification found.
type auditProblem struct {
	seq     int64
	problem string
}

// rewrittenAt is the problem of a checkpoint that the chain no longer
// matches.
func rewrittenAt(cp *AuditCheckpoint) *auditProblem {
	return &auditProblem{cp.Seq, fmt.Sprintf("checkpoint %d (event %d) does not match the chain: the log was rewritten", cp.ID, cp.Seq)}
}

// walkAudit checks the events from 1 to head.Seq in order, in batches: each
// present, unaltered and linked to its predecessor, each checkpoint among
// cps at its seq well signed (when verifySig is set) and matching, and the
// last event being the head. It counts what it checked in v.
func walkAudit(db *gorm.DB, head auditHead, cps []AuditCheckpoint, verifySig func(cp *AuditCheckpoint) error, v *AuditVerification) (*auditProblem, error) {
	bySeq := make(map[int64]*AuditCheckpoint, len(cps))
	for i := range cps {
		bySeq[cps[i].Seq] = &cps[i]
	}
	var (
		last     int64
		prevHash = zeroHash
	)
	// Walk only what the head covers: events appended while we walk are not
	// ours to judge (each append moves head and event together).
	for last < head.Seq {
		var evs []AuditEvent
		err := db.Where("seq > ? AND seq <= ?", last, head.Seq).Order("seq ASC").Limit(streamBatch).Find(&evs).Error
		if err != nil {
			return nil, fmt.Errorf("reading audit events: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if p := checkLink(e, last+1, prevHash); p != nil {
				return p, nil
			}
			if cp := bySeq[e.Seq]; cp != nil {
				if verifySig != nil && verifySig(cp) != nil {
					return &auditProblem{cp.Seq, fmt.Sprintf("checkpoint %d has a bad signature", cp.ID)}, nil
				}
				if cp.Hash != e.Hash {
					return rewrittenAt(cp), nil
				}
				v.Checkpoints++
				v.LastCheckpointSeq = cp.Seq
			}
			v.Events++
			last, prevHash = e.Seq, e.Hash
		}
	}
	switch {
	case last < head.Seq:
		return &auditProblem{last + 1, fmt.Sprintf("event %d is missing (removed)", last+1)}, nil
	case prevHash != head.Hash:
		return &auditProblem{last, fmt.Sprintf("event %d was altered", last)}, nil
	}
	return nil, nil
}

// checkLink checks that e is event want, that its hash matches its
// contents, and that it follows the event whose hash is prevHash.
func checkLink(e *AuditEvent, want int64, prevHash string) *auditProblem {
	switch {
	case e.Seq != want:
		return &auditProblem{want, fmt.Sprintf("event %d is missing (removed)", want)}
	case AuditHash(e) != e.Hash:
		return &auditProblem{e.Seq, fmt.Sprintf("event %d was altered", e.Seq)}
	case e.PrevHash != prevHash:
		if e.Seq == 1 {
			return &auditProblem{1, "event 1 does not start the chain (inserted or reordered)"}
		}
		return &auditProblem{e.Seq, fmt.Sprintf("event %d does not follow event %d (inserted or reordered)", e.Seq, e.Seq-1)}
	}
	return nil
}

// checkBeyondHead looks past the head of a chain that verified up to it: a
// checkpoint there covers events that are gone (the log was cut back and
// rebuilt), and an event there was not appended by the store.
func checkBeyondHead(db *gorm.DB, head auditHead, cps []AuditCheckpoint) (*auditProblem, error) {
	for i := range cps {
		if cps[i].Seq > head.Seq {
			return rewrittenAt(&cps[i]), nil
		}
	}
	// An event past the head may have been appended after we read the head:
	// read the first such event, then the head again (the head only grows,
	// so this order has no false alarm).
	var beyond *int64
	if err := db.Model(&AuditEvent{}).Where("seq > ?", head.Seq).Select("MIN(seq)").Scan(&beyond).Error; err != nil {
		return nil, fmt.Errorf("reading audit events: %w", err)
	}
	if beyond == nil {
		return nil, nil
	}
	var now auditHead
	if err := db.Where("id = ?", 1).Take(&now).Error; err != nil {
		return nil, fmt.Errorf("reading audit head: %w", dbErr(err))
	}
	if *beyond > now.Seq {
		return &auditProblem{*beyond, fmt.Sprintf("event %d is beyond the chain head (event %d): inserted", *beyond, now.Seq)}, nil
	}
	return nil, nil
}

// pageLimit applies the list default (50) and maximum (500).
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// errIsNotFound reports whether err is gorm's record-not-found.
func errIsNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }
