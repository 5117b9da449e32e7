package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Drivers Open understands.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Error kinds. Every error the store returns for a caller's mistake wraps one
// of these, so callers test with errors.Is and the web layer maps each kind to
// one HTTP status, mapped once in web/problem.go.
var (
	// ErrNotFound means the object does not exist (or is not visible to the actor).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the object is in the wrong state for the operation, or
	// a unique value is already taken.
	ErrConflict = errors.New("conflict")
	// ErrForbidden means the operation is refused for this actor, e.g.
	// approving one's own request.
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid means an argument is missing or malformed.
	ErrInvalid = errors.New("invalid")
)

// Config selects and addresses the database: the configuration file's
// database section.
type Config struct {
	// Driver is "sqlite" (the embedded default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is a file path for SQLite and a URL for PostgreSQL
	// (postgres://user@host:5432/db?sslmode=verify-full), without a password.
	DSN string `yaml:"dsn"`
	// DSNFile, instead of DSN, is a file holding the DSN, password included.
	DSNFile string `yaml:"dsn_file"`
	// MaxConnections is the most PostgreSQL connections this process opens
	// (default DefaultMaxConnections). More connections than the database
	// server has cores to run them make it slower, not faster: about twice
	// its cores, shared among the replicas, is a good start.
	MaxConnections int `yaml:"max_connections"`
}

// DefaultMaxConnections is Config.MaxConnections when it is not set.
const DefaultMaxConnections = 10

// WithDefaults returns c with the driver defaulted to SQLite.
func (c Config) WithDefaults() Config {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	return c
}

// Validate reports the first problem with the configuration, naming the
// field. The DSN itself is only required by Open, so that commands that
// need no database can load a configuration without one.
func (c Config) Validate() error {
	switch c.Driver {
	case DriverSQLite, DriverPostgres:
	default:
		return fmt.Errorf("database.driver: %w: must be %q or %q, got %q", ErrInvalid, DriverSQLite, DriverPostgres, c.Driver)
	}
	if c.DSN != "" && c.DSNFile != "" {
		return fmt.Errorf("database: %w: set dsn or dsn_file, not both", ErrInvalid)
	}
	if c.MaxConnections != 0 && (c.MaxConnections < 2 || c.MaxConnections > 1000) {
		return fmt.Errorf("database.max_connections: %w: must be between 2 and 1000, got %d", ErrInvalid, c.MaxConnections)
	}
	if c.MaxConnections != 0 && c.Driver == DriverSQLite {
		return fmt.Errorf("database.max_connections: %w: only for postgres (SQLite writes on one connection)", ErrInvalid)
	}
	return nil
}

// dsn returns the DSN, read from DSNFile when that is set. Errors name the
// field and never show the DSN.
func (c Config) dsn() (string, error) {
	if c.DSNFile != "" {
		b, err := os.ReadFile(c.DSNFile)
		if err != nil {
			return "", fmt.Errorf("database.dsn_file: %v (%w)", err, ErrInvalid)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("database.dsn_file: %w: %s is empty", ErrInvalid, c.DSNFile)
	}
	if strings.TrimSpace(c.DSN) == "" {
		return "", fmt.Errorf("database.dsn: %w: required (or dsn_file)", ErrInvalid)
	}
	return c.DSN, nil
}

// Actor is who does something. Every state-changing method takes one and
// writes an audit event naming it in the same transaction as the change.
type Actor struct {
	Subject string // OIDC subject, token subject, or "system:…"
	Role    string // partner, admin, auditor, system
	Org     string // the actor's organisation slug, if any
	Source  string // remote address, or "cli", "startup"
	Email   string // the actor's e-mail address, if known (for notifications)
	TokenID string // the API token the actor authenticated with, if any
}

// Store is certdesk's persistent state: organisations, requests,
// certificates, CRLs, tokens, sessions, memberships and the audit chain.
// It is safe for concurrent use.
type Store struct {
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// AuditSink, when set, receives every audit event once its transaction
	// has committed (certdesk serve writes them to the log for a SIEM).
	AuditSink func(ctx context.Context, e *AuditEvent)
	// OnStatement, when set, is called before each statement the store
	// sends itself rather than through gorm (the busiest of issuance, see
	// stmt), with its SQL and the connection or transaction it goes on:
	// the same ConnPool gorm's callbacks see, so that whoever counts the
	// statements an operation costs with gorm's callbacks counts these too.
	// A BEGIN sent in a round trip of its own is passed as "BEGIN".
	OnStatement func(pool gorm.ConnPool, query string)

	db     *gorm.DB
	sqlDB  *sql.DB // db's pool
	driver string
	// lockDB holds the sessions of WithLock's advisory locks on PostgreSQL,
	// apart from db's bounded pool: a lock holder's work takes connections
	// from db, so lock holders can never use up the pool it waits on.
	lockDB *sql.DB
	// readDB (SQLite, a database file) is a pool of read-only
	// connections to the same file: in WAL mode a reader sees every
	// transaction committed before its own began and waits for no writer,
	// so the reads outside a transaction do not queue behind the writes on
	// db's one connection. Elsewhere it is sqlDB.
	readDB *sql.DB

	lockMu sync.Mutex
	locks  map[int64]*sync.Mutex // SQLite only: in-process stand-in for advisory locks

	// headMu orders this process's audit appends and guards head, the
	// chain head it last wrote (appendAudits links to it).
	headMu    sync.Mutex
	head      auditHead
	headKnown bool
	// appendsAtCommit counts the appends sent with a COMMIT;
	// atCommitPausedUntil (Unix ns, the store's clock) is when they are
	// sent with it again after another replica moved the head.
	appendsAtCommit     atomic.Int64
	atCommitPausedUntil atomic.Int64
}

// Open connects to the database described by cfg (the DSN read from
// cfg.DSNFile when set) and checks that it answers.
// SQLite is opened in WAL mode with a busy timeout, foreign keys on and a
// single connection that writes (one writer), beside read-only ones for the
// reads outside a transaction; PostgreSQL gets a bounded pool. Open does not
// migrate: call Migrate.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dsn, err := cfg.dsn()
	if err != nil {
		return nil, err
	}
	cfg.DSN = dsn
	s := &Store{Now: time.Now, driver: cfg.Driver, locks: map[int64]*sync.Mutex{}}
	gcfg := &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                s.now,
		TranslateError:         true,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
	}
	var dial gorm.Dialector
	switch cfg.Driver {
	case DriverSQLite:
		dial = sqlite.Open(sqliteDSN(cfg.DSN))
	case DriverPostgres:
		dial = postgres.Open(cfg.DSN)
	}
	db, err := gorm.Open(dial, gcfg)
	if err != nil {
		// The DSN may carry a password: do not echo it.
		return nil, fmt.Errorf("opening %s database: %w", cfg.Driver, unavailable(redactErr(err, cfg.DSN)))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", cfg.Driver, err)
	}
	if cfg.Driver == DriverSQLite {
		// One connection: SQLite has one writer anyway, and a single
		// connection makes every transaction serial without SQLITE_BUSY.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
	} else {
		n := cfg.MaxConnections
		if n == 0 {
			n = DefaultMaxConnections
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := registerUnavailable(db); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("opening %s database: %w", cfg.Driver, err)
	}
	s.db, s.sqlDB, s.readDB = db, sqlDB, sqlDB
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("opening %s database: %w", cfg.Driver, redactErr(err, cfg.DSN))
	}
	if cfg.Driver == DriverSQLite && sqliteFile(cfg.DSN) {
		if err := s.openReaders(cfg.DSN); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("opening %s database: %w", cfg.Driver, redactErr(err, cfg.DSN))
		}
	}
	if cfg.Driver == DriverPostgres {
		if s.lockDB, err = sql.Open("pgx", cfg.DSN); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("opening %s database: %w", cfg.Driver, redactErr(err, cfg.DSN))
		}
		s.lockDB.SetMaxIdleConns(2)
		s.lockDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	return s, nil
}

// sqliteReaders is how many read-only connections a SQLite store keeps
// beside its writer.
const sqliteReaders = 4

// sqliteFile reports whether dsn names a database file, which other
// connections can open too (an in-memory database is one connection's).
func sqliteFile(dsn string) bool {
	return !strings.HasPrefix(dsn, ":memory:") && !strings.Contains(dsn, "mode=memory")
}

// openReaders opens readDB on the SQLite file of dsn, its connections
// refusing to write (query_only), and sends the reads that gorm runs
// outside a transaction there: a query or row read whose connection is
// the pool, not a transaction's. Statements gorm runs as Raw (the store's
// UPDATE … RETURNING among them) and everything in a transaction stay on
// the writer.
func (s *Store) openReaders(dsn string) error {
	r, err := sql.Open("sqlite", sqliteDSN(dsn)+"&_pragma=query_only(1)")
	if err != nil {
		return err
	}
	r.SetMaxOpenConns(sqliteReaders)
	r.SetMaxIdleConns(sqliteReaders)
	r.SetConnMaxLifetime(0)
	if err := r.Ping(); err != nil {
		_ = r.Close()
		return unavailable(err)
	}
	toReaders := func(tx *gorm.DB) {
		if tx.Statement.ConnPool == gorm.ConnPool(s.sqlDB) {
			tx.Statement.ConnPool = r
		}
	}
	cb := s.db.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register("certdesk:readers", toReaders),
		cb.Row().Before("gorm:row").Register("certdesk:readers", toReaders),
	} {
		if err != nil {
			_ = r.Close()
			return err
		}
	}
	s.readDB = r
	return nil
}

// sqliteDSN adds the pragmas certdesk relies on to a SQLite file path.
func sqliteDSN(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + strings.Join([]string{
		"_pragma=busy_timeout(10000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(NORMAL)",
		"_txlock=immediate",
	}, "&")
}

// redactErr keeps a DSN (which may hold a password) out of an error message.
func redactErr(err error, dsn string) error {
	if err == nil || dsn == "" || !strings.Contains(err.Error(), dsn) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), dsn, "[dsn]"))
}

// Close closes the database connections.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if s.lockDB != nil {
		_ = s.lockDB.Close()
	}
	if s.readDB != sqlDB {
		_ = s.readDB.Close()
	}
	return sqlDB.Close()
}

// Ping checks that the database answers (for /readyz): on SQLite the
// writer and the read-only connections.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	if s.readDB != sqlDB {
		return unavailable(s.readDB.PingContext(ctx))
	}
	return nil
}

// Driver returns "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// DB returns the underlying gorm handle. It is for tests (e.g. tampering with
// an audit row); production code goes through the Store's methods.
func (s *Store) DB() *gorm.DB { return s.db }

// now is the store's clock in UTC, truncated to the microsecond that
// PostgreSQL stores, so a value read back equals the value written (the audit
// hash depends on it) and SQLite's text timestamps sort as times.
func (s *Store) now() time.Time {
	clock := s.Now
	if clock == nil {
		clock = time.Now
	}
	return normTime(clock())
}

// normTime converts t to the form the store writes: UTC, microseconds.
func normTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// normTimePtr is normTime for optional times.
func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

// committedEventsKey carries, through a transaction's context, its
// *txAudit: the audit events it appended, so that they reach AuditSink only
// once committed, and whether it holds the Store's head mutex.
type committedEventsKey struct{}

// txAudit is what a transaction appended to the audit chain.
type txAudit struct {
	events       []AuditEvent
	advancedHead bool // it moved the head the Store remembers
	// atCommit: the entries appended are kept in pending (and their
	// details) and written with the COMMIT (txAppendAtCommit).
	atCommit       bool
	pending        []auditEntry
	pendingDetails []string
}

// tx runs fn in a transaction bound to ctx. After a commit, the audit events
// the transaction appended are passed to AuditSink.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	st := &txAudit{}
	ctx = context.WithValue(ctx, committedEventsKey{}, st)
	if err := s.runTx(ctx, st, fn); err != nil {
		return unavailable(err)
	}
	s.sink(ctx, st)
	return nil
}

// sink passes a committed transaction's audit events to AuditSink.
func (s *Store) sink(ctx context.Context, st *txAudit) {
	if s.AuditSink != nil {
		for i := range st.events {
			s.AuditSink(ctx, &st.events[i])
		}
	}
}

// runTx runs the transaction; when it moved the remembered audit head and
// did not commit, the head is forgotten (the next append reads it).
func (s *Store) runTx(ctx context.Context, st *txAudit, fn func(tx *gorm.DB) error) (err error) {
	committed := false
	defer func() {
		if st.advancedHead && !committed {
			s.forgetHead()
		}
	}()
	if err := s.db.WithContext(ctx).Transaction(fn); err != nil {
		return err
	}
	committed = true
	return nil
}

// forUpdate adds SELECT … FOR UPDATE on PostgreSQL; SQLite transactions are
// already serial (one connection, BEGIN IMMEDIATE).
func (s *Store) forUpdate(tx *gorm.DB) *gorm.DB {
	if s.driver == DriverPostgres {
		return tx.Clauses(lockingUpdate)
	}
	return tx
}

// lockingUpdate is SELECT … FOR UPDATE.
var lockingUpdate = clause.Locking{Strength: "UPDATE"}

// dbErr maps driver errors to the store's kinds: a missing row is
// ErrNotFound, a duplicate ErrConflict, a dangling reference ErrInvalid.
func dbErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: already exists", ErrConflict)
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("%w: refers to something that does not exist", ErrInvalid)
	}
	return err
}
