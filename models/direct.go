package models

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// The busiest statements of issuance (a token lookup, a request's and a
// certificate's INSERT, the approval, the recording of a signed certificate,
// the reads a decision needs, the audit append) are sent by the store
// itself rather than built by gorm: the same SQL, on the same connection or
// transaction, with explicit column lists and scan targets, without gorm's
// reflection per statement. Everything else goes through gorm.

// stmt is one SQL statement the store sends itself, written once with ?
// placeholders and kept in the form of each dialect: SQLite takes ?,
// PostgreSQL (pgx) $1, $2, ….
type stmt struct{ sqlite, postgres string }

// newStmt returns q in both forms. q holds no ? but its placeholders.
func newStmt(q string) stmt { return stmt{sqlite: q, postgres: dollarPlaceholders(q)} }

// dollarPlaceholders numbers the ? placeholders of q as $1, $2, ….
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// sqlConn is where a statement goes: a gorm handle's connection or
// transaction (what gorm's callbacks see as Statement.ConnPool: the pool, a
// *sql.Tx, or the *sql.Conn of txAppendAtCommit), and its context.
type sqlConn struct {
	ctx  context.Context
	pool gorm.ConnPool
}

// on is the connection or transaction that tx sends its statements on.
func on(tx *gorm.DB) sqlConn { return sqlConn{ctx: tx.Statement.Context, pool: tx.Statement.ConnPool} }

// onPool is the store's pool, for a statement outside a transaction.
func (s *Store) onPool(ctx context.Context) sqlConn { return sqlConn{ctx: ctx, pool: s.sqlDB} }

// onReaders is the pool for a read outside a transaction: on SQLite the
// read-only connections (Store.readDB), elsewhere onPool.
func (s *Store) onReaders(ctx context.Context) sqlConn { return sqlConn{ctx: ctx, pool: s.readDB} }

// dialect is st in the store's dialect.
func (s *Store) dialect(st stmt) string {
	if s.driver == DriverPostgres {
		return st.postgres
	}
	return st.sqlite
}

// observe passes a statement about to be sent to OnStatement.
func (s *Store) observe(c sqlConn, q string) {
	if s.OnStatement != nil {
		s.OnStatement(c.pool, q)
	}
}

// beginning is the transaction whose BEGIN a statement sent on c takes
// along, if any (txConn).
func beginning(c sqlConn) (*txConn, bool) {
	tc, ok := c.pool.(*txConn)
	return tc, ok && !tc.begun
}

// exec runs a statement that returns no rows and reports the rows it
// changed.
func (s *Store) exec(c sqlConn, st stmt, args ...any) (int64, error) {
	return s.execText(c, s.dialect(st), args...)
}

// execText is exec of a statement built for this call, in the store's
// dialect.
func (s *Store) execText(c sqlConn, q string, args ...any) (int64, error) {
	s.observe(c, q)
	if tc, ok := beginning(c); ok {
		var n int64
		err := tc.send(c.ctx, []queued{{q, args}}, func(br pgx.BatchResults) error {
			tag, err := br.Exec()
			n = tag.RowsAffected()
			return err
		})
		return n, s.sqlErr(err)
	}
	res, err := c.pool.ExecContext(c.ctx, q, args...)
	if err != nil {
		return 0, s.sqlErr(err)
	}
	n, err := res.RowsAffected()
	return n, s.sqlErr(err)
}

// queryRow runs a statement that returns at most one row and scans it into
// dest: gorm.ErrRecordNotFound when there is none, as gorm's Take says it.
func (s *Store) queryRow(c sqlConn, st stmt, dest []any, args ...any) error {
	q := s.dialect(st)
	s.observe(c, q)
	var err error
	if tc, ok := beginning(c); ok {
		err = tc.send(c.ctx, []queued{{q, args}}, func(br pgx.BatchResults) error { return br.QueryRow().Scan(dest...) })
	} else {
		err = c.pool.QueryRowContext(c.ctx, q, args...).Scan(dest...)
	}
	return s.rowErr(err)
}

// batchStmt is one statement of a batch (Store.batch): with scan set, it
// returns at most one row, scanned there; without, it returns none.
type batchStmt struct {
	st   stmt
	args []any
	scan []any
}

// batch runs stmts in order. On the connection of a transaction that sends
// its BEGIN with its first statement (txConn) they go out together, in one
// round trip, BEGIN in front if not sent yet; each runs after the one
// before it has finished. Elsewhere they run one after another, stopping
// at the first error. It returns the first error, gorm.ErrRecordNotFound
// for a statement with scan targets that found no row. The caller must
// roll back on any error and send nothing more on the transaction (after a
// failed statement PostgreSQL refuses the rest of it). In one round trip
// the statements after one that found no row still run: batch only
// statements that are right to run whatever those before them found (a
// lock and a read; two INSERTs), and write one statement where a later
// one must depend on an earlier one's rows (approveAndReserve).
func (s *Store) batch(c sqlConn, stmts ...batchStmt) error {
	tc, ok := c.pool.(*txConn)
	if !ok {
		for _, b := range stmts {
			var err error
			if b.scan != nil {
				err = s.queryRow(c, b.st, b.scan, b.args...)
			} else {
				_, err = s.exec(c, b.st, b.args...)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	qs := make([]queued, len(stmts))
	for i, b := range stmts {
		qs[i] = queued{s.dialect(b.st), b.args}
		s.observe(c, qs[i].q)
	}
	var first error
	err := tc.send(c.ctx, qs, func(br pgx.BatchResults) error {
		for _, b := range stmts {
			var err error
			if b.scan != nil {
				err = br.QueryRow().Scan(b.scan...)
			} else {
				_, err = br.Exec()
			}
			if first == nil && err != nil {
				first = err
			}
		}
		return nil
	})
	if first != nil {
		err = first
	}
	return s.rowErr(err)
}

// rowErr is sqlErr for a statement that reads a row: no row is
// gorm.ErrRecordNotFound, as gorm's Take says it.
func (s *Store) rowErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return gorm.ErrRecordNotFound
	}
	return s.sqlErr(err)
}

// sqlErr translates a driver's error as gorm does for its own statements
// (a duplicate is gorm.ErrDuplicatedKey, a dangling reference
// gorm.ErrForeignKeyViolated) and marks a failed connection ErrUnavailable.
func (s *Store) sqlErr(err error) error {
	if err == nil {
		return nil
	}
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok {
		err = t.Translate(err)
	}
	return unavailable(err)
}
