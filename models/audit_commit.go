package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// txAppendAtCommit is tx for the busiest transactions (a submission, an
// approval with its reservation, the recording of a signed certificate). On
// PostgreSQL their audit events are appended by the last statement of the
// transaction, sent together with the COMMIT in one round trip
// (appendAndCommit), so the chain head's row lock is held only while
// PostgreSQL runs the two, not across a round trip to this process and
// back. fn must be safe to run twice: when the head moved meanwhile (another
// replica appended), the transaction is rolled back and run again as tx
// runs it, linking its events to the head read under its lock, and for
// atCommitPause all of them run as tx does. Elsewhere it is tx.
func (s *Store) txAppendAtCommit(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.driver != DriverPostgres || s.now().UnixNano() < s.atCommitPausedUntil.Load() {
		return s.tx(ctx, fn)
	}
	st := &txAudit{atCommit: true}
	err := s.runAppendingAtCommit(context.WithValue(ctx, committedEventsKey{}, st), st, fn)
	if errors.Is(err, errHeadMoved) {
		// Another replica appends too: while it does, the ordinary way
		// (relinking under the lock, one statement more) is cheaper than
		// running transactions twice.
		s.atCommitPausedUntil.Store(s.now().Add(atCommitPause).UnixNano())
		return s.tx(ctx, fn)
	}
	if err != nil {
		return unavailable(err)
	}
	s.sink(ctx, st)
	return nil
}

// atCommitPause is how long after a head moved by another replica the
// busiest transactions append the ordinary way.
const atCommitPause = 10 * time.Second

// runAppendingAtCommit runs fn on a connection of its own inside BEGIN …
// COMMIT; the audit entries fn appends are kept (appendAudits) and written
// by appendAndCommit. The BEGIN goes out with the transaction's first
// statement (txConn). It returns errHeadMoved, having rolled back, when the
// head the events were linked to was not the stored one.
func (s *Store) runAppendingAtCommit(ctx context.Context, st *txAudit, fn func(tx *gorm.DB) error) (err error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := &txConn{Conn: conn, s: s}
	done := false
	defer func() {
		if done || !tc.begun {
			return
		}
		// Roll back even when ctx is done; a connection that cannot is
		// discarded, so no open transaction returns to the pool.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
			tc.discard()
		}
	}()
	tx := s.db.Session(&gorm.Session{Context: ctx, NewDB: true})
	tx.Statement.ConnPool = tc
	err = fn(tx)
	if tc.beginErr != nil {
		return tc.beginErr
	}
	if err != nil {
		return err
	}
	if len(st.pending) == 0 {
		if !tc.begun {
			done = true // nothing was sent: nothing to commit
			return nil
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return err
		}
		done = true
		return nil
	}
	if err := tc.begin(ctx); err != nil {
		return err
	}
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("appending audit events: the connection is a %T, not pgx's", dc)
		}
		committed, err := s.appendAndCommit(ctx, c.Conn(), st)
		done = committed
		return err
	})
}

// txConn is the connection of a transaction that runAppendingAtCommit runs,
// before and after its BEGIN is sent. The BEGIN costs no round trip of its
// own: the first statement the store sends itself takes it along
// (send), and a statement sent through gorm first is preceded by it
// (begin). It is the ConnPool of the transaction's gorm handle.
type txConn struct {
	*sql.Conn
	s        *Store
	begun    bool  // BEGIN was sent (perhaps failed): ROLLBACK when not committed
	beginErr error // why BEGIN failed, if it did
}

// begin sends BEGIN on its own, unless it was sent. When it fails, the
// connection is discarded, so that no statement after it runs outside a
// transaction.
func (c *txConn) begin(ctx context.Context) error {
	if c.begun {
		return c.beginErr
	}
	c.begun = true
	if c.s.OnStatement != nil {
		c.s.OnStatement(c, "BEGIN")
	}
	if _, err := c.Conn.ExecContext(ctx, "BEGIN"); err != nil {
		c.failed(err)
	}
	return c.beginErr
}

// errNestedTx refuses a transaction inside a txConn's.
var errNestedTx = errors.New("models: a transaction begun inside another")

// BeginTx refuses: gorm would begin a transaction inside this one.
func (c *txConn) BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error) { return nil, errNestedTx }

// failed records that BEGIN failed with err and discards the connection.
func (c *txConn) failed(err error) {
	c.beginErr = fmt.Errorf("beginning a transaction: %w", err)
	c.discard()
}

// discard closes the connection instead of returning it to the pool:
// database/sql answers any statement on it with sql.ErrConnDone.
func (c *txConn) discard() { _ = c.Conn.Raw(func(any) error { return driver.ErrBadConn }) }

// ExecContext implements gorm.ConnPool, after BEGIN.
func (c *txConn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	return c.Conn.ExecContext(ctx, q, args...)
}

// QueryContext implements gorm.ConnPool, after BEGIN.
func (c *txConn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	return c.Conn.QueryContext(ctx, q, args...)
}

// QueryRowContext implements gorm.ConnPool, after BEGIN. When BEGIN failed
// the row is the discarded connection's: its error is sql.ErrConnDone, and
// q is not sent.
func (c *txConn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	_ = c.begin(ctx)
	return c.Conn.QueryRowContext(ctx, q, args...)
}

// PrepareContext implements gorm.ConnPool, after BEGIN.
func (c *txConn) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	return c.Conn.PrepareContext(ctx, q)
}

// send sends stmts in one round trip (a pgx batch), with the BEGIN in
// front when it was not sent yet (PostgreSQL runs nothing in a batch after
// a failed BEGIN), and hands their results to read, on pgx's side of the
// connection. In a batch each statement runs after the one before it has
// finished, with a snapshot of its own: a lock taken by one holds for those
// after it.
func (c *txConn) send(ctx context.Context, stmts []queued, read func(pgx.BatchResults) error) error {
	begin := !c.begun
	c.begun = true
	var sent bool
	err := c.Conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the connection is a %T, not pgx's", dc)
		}
		b := &pgx.Batch{}
		if begin {
			b.Queue("BEGIN")
		}
		for _, st := range stmts {
			b.Queue(st.q, st.args...)
		}
		br := pc.Conn().SendBatch(ctx, b)
		if begin {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
		}
		sent = true
		err := read(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil && begin && !sent {
		c.failed(err)
		return c.beginErr
	}
	return err
}

// queued is one statement of a batch, in PostgreSQL's dialect, with its
// arguments.
type queued struct {
	q    string
	args []any
}

// appendAndCommit links the transaction's pending audit events to the head
// this process last wrote and sends, in one round trip, the statement that
// locks the head row, checks it is still that head, advances it and
// inserts the events, and the COMMIT. The head mutex is held until
// PostgreSQL has run the statement, so this process's appends reach the row
// in chain order. When the head is not known (a rolled-back append forgot
// it), it is first read under its lock on this transaction. It reports
// whether the transaction committed; errHeadMoved (rolled back) when the
// stored head was another.
func (s *Store) appendAndCommit(ctx context.Context, conn *pgx.Conn, st *txAudit) (bool, error) {
	s.headMu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			s.headMu.Unlock()
		}
	}
	defer unlock()
	if !s.headKnown {
		var head auditHead
		head.ID = 1
		if err := conn.QueryRow(ctx, "SELECT seq, hash FROM audit_heads WHERE id = 1 FOR UPDATE").Scan(&head.Seq, &head.Hash); err != nil {
			return false, fmt.Errorf("locking audit head: %w", err)
		}
		s.head, s.headKnown = head, true
	}
	evs := s.linkEvents(s.head, st.pending, st.pendingDetails)
	b := &pgx.Batch{}
	q, args := headAppendSQL(s.head, evs, true)
	b.Queue(q, args...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		s.head = evs[len(evs)-1].head()
	} else {
		s.headKnown = false
	}
	unlock()
	tag, cerr := br.Exec()
	if closeErr := br.Close(); cerr == nil {
		cerr = closeErr
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "22012":
		// The guard's division by zero: the head had moved. The
		// transaction is aborted, and the COMMIT rolled it back.
		return false, errHeadMoved
	case err != nil:
		return false, fmt.Errorf("appending audit event: %w", err)
	case cerr != nil || tag.String() != "COMMIT":
		s.forgetHead()
		if cerr == nil {
			cerr = fmt.Errorf("the transaction ended with %q", tag.String())
		}
		return false, fmt.Errorf("committing: %w", cerr)
	}
	st.events = append(st.events, evs...)
	s.appendsAtCommit.Add(1)
	return true, nil
}

// AppendsSentWithCommit counts the audit appends this Store sent together
// with their transaction's COMMIT (txAppendAtCommit): statements that do not
// pass through gorm, for those who count the statements an operation costs.
func (s *Store) AppendsSentWithCommit() int64 { return s.appendsAtCommit.Load() }

// headAppendSQL is the one statement that appends evs after head on
// PostgreSQL (pgx's $n placeholders): it locks the head row, compares it
// with head, advances it and inserts the events. Sent by writeEvents, it
// inserts nothing when the stored head is another. Sent with the COMMIT
// (withCommit), it fails instead (division by zero, SQLSTATE 22012), so
// that the transaction is aborted rather than committed without its
// events.
func headAppendSQL(head auditHead, evs []AuditEvent, withCommit bool) (string, []any) {
	last := evs[len(evs)-1]
	var b strings.Builder
	args := make([]any, 0, 4+12*len(evs))
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`WITH cur AS (SELECT seq, hash FROM audit_heads WHERE id = 1 FOR UPDATE), ` +
		`h AS (UPDATE audit_heads SET seq = ` + arg(last.Seq) + `, hash = ` + arg(last.Hash) +
		` FROM cur WHERE audit_heads.id = 1 AND cur.seq = ` + arg(head.Seq) + ` AND cur.hash = ` + arg(head.Hash) + ` RETURNING 1) ` +
		`INSERT INTO audit_events (seq, "time", actor, role, org, action, object_type, object_id, source, detail, prev_hash, hash) ` +
		`SELECT v.* FROM (VALUES `)
	for i, e := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + arg(e.Seq) + "::bigint, " + arg(e.Time) + "::timestamptz, " + arg(e.Actor) + "::text, " +
			arg(e.Role) + "::text, " + arg(e.Org) + "::text, " + arg(e.Action) + "::text, " + arg(e.ObjectType) + "::text, " +
			arg(e.ObjectID) + "::text, " + arg(e.Source) + "::text, " + arg(e.Detail) + "::text, " +
			arg(e.PrevHash) + "::text, " + arg(e.Hash) + "::text)")
	}
	if withCommit {
		b.WriteString(`) AS v WHERE 1 / (SELECT count(*)::int FROM h) = 1`)
	} else {
		b.WriteString(`) AS v WHERE EXISTS (SELECT 1 FROM h)`)
	}
	return b.String(), args
}
