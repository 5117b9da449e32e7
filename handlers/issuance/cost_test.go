package issuance_test

import (
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"gorm.io/gorm"
)

// sqlCost counts the statements a store runs and the transactions that
// write: statements inside one *sql.Tx are one transaction, and a write
// outside a transaction commits on its own.
type sqlCost struct {
	mu         sync.Mutex
	on         bool
	statements int
	writeTx    map[any]bool
	autoWrites int
	loneBegins int // BEGINs the store sent in a round trip of their own
}

func (c *sqlCost) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.statements, c.writeTx, c.autoWrites, c.loneBegins = true, 0, map[any]bool{}, 0, 0
}

// stop returns the statements, the committed write transactions and the
// BEGINs sent in a round trip of their own since start.
func (c *sqlCost) stop() (statements, writes, loneBegins int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	return c.statements, len(c.writeTx) + c.autoWrites, c.loneBegins
}

func (c *sqlCost) count(write bool) func(db *gorm.DB) {
	return func(db *gorm.DB) {
		c.add(db.Statement.ConnPool, db.Statement.SQL.String(), write)
	}
}

// add counts one statement sent on pool; write says it writes whatever
// its text.
func (c *sqlCost) add(pool gorm.ConnPool, query string, write bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return
	}
	if query == "BEGIN" {
		c.loneBegins++
		return
	}
	c.statements++
	if !write && !writesRows(query) {
		return
	}
	// On the pool a write commits on its own; anything else is a
	// transaction (a *sql.Tx, or the connection of one that sends its
	// audit append with its COMMIT).
	if _, onPool := pool.(*sql.DB); onPool {
		c.autoWrites++
		return
	}
	c.writeTx[pool] = true
}

// writesRows reports whether a statement changes rows (INSERT, UPDATE,
// DELETE, also with RETURNING, or a data-modifying WITH): for those gorm
// reads back with Raw(…).Scan and those the store sends itself.
func writesRows(sql string) bool {
	up := strings.ToUpper(strings.TrimSpace(sql))
	for _, verb := range []string{"UPDATE", "INSERT", "DELETE"} {
		if strings.HasPrefix(up, verb) || strings.HasPrefix(up, "WITH") && strings.Contains(up, "("+verb+" ") {
			return true
		}
	}
	return false
}

// countSQL registers the counter on s: on gorm's callbacks, and on the
// store's hook for the statements it sends itself.
func countSQL(t *testing.T, s *models.Store) *sqlCost {
	t.Helper()
	c := &sqlCost{}
	cb := s.DB().Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("cost:query", c.count(false)),
		cb.Row().After("gorm:row").Register("cost:row", c.count(false)),
		cb.Raw().After("gorm:raw").Register("cost:raw", c.count(true)),
		cb.Create().After("gorm:create").Register("cost:create", c.count(true)),
		cb.Update().After("gorm:update").Register("cost:update", c.count(true)),
		cb.Delete().After("gorm:delete").Register("cost:delete", c.count(true)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.OnStatement = func(pool gorm.ConnPool, query string) { c.add(pool, query, false) }
	return c
}

// maxIssuanceCost is what one issuance through the workflow may cost the
// database, in statements and committed write transactions, for a
// submission and an admin's approval, and for an auto-approved renewal. The
// writes are: the submission; the approval with the reservation of the
// certificate (for a renewal, submission, approval and reservation
// together); and the recording of the signed certificate. The lease taken
// by the reservation is not renewed before the HSM signs, as it was taken a
// moment earlier. PostgreSQL writes the audit events of a transaction and
// advances the chain head in one statement; SQLite takes two. The
// submission checks, in its transaction, the organisation, the blocked keys,
// the key's owner and the renewed certificate in one statement (on
// PostgreSQL after a per-key advisory lock), and a new request's policy is
// checked against that organisation there, so it is read once; the approval
// reads the request with its organisation and whether its key is blocked,
// and approves it with one conditional UPDATE, which on PostgreSQL also
// inserts the reservation (one statement, a data-modifying WITH); a
// renewal reads the
// organisation with the certificate it renews; recording the signed
// certificate changes the certificate and its request with one statement
// on PostgreSQL, two on SQLite. On PostgreSQL the audit append of each of
// these transactions is sent with its COMMIT (it passes outside gorm, and is
// counted from the store's own count), and the BEGIN of each is sent with
// its first statement: none costs a round trip of its own.
var maxIssuanceCost = map[string]map[string]struct{ statements, writes int }{
	models.DriverPostgres: {"submit+approve": {9, 3}, "renewal": {8, 2}},
	models.DriverSQLite:   {"submit+approve": {13, 3}, "renewal": {10, 2}},
}

// issuanceScenario is one way to a certificate through the workflow.
type issuanceScenario struct {
	name  string
	issue func() (*models.Request, error)
}

// issuanceScenarios are a partner's submission and an admin's approval,
// and a partner's renewal of base, which acme approves automatically
// (switched on here).
func issuanceScenarios(t *testing.T, e *env, base *models.Certificate) []issuanceScenario {
	t.Helper()
	org, err := e.store.GetOrg(bg, "acme")
	if err != nil {
		t.Fatal(err)
	}
	org.AutoApproveRenewals = true
	if err := e.store.UpdateOrg(bg, admin, org); err != nil {
		t.Fatal(err)
	}
	return []issuanceScenario{
		{"submit+approve", func() (*models.Request, error) {
			pemText, _ := csr(t, "spiffe://example.org/partners/acme/svc")
			r, err := e.wf.Submit(bg, partner, issuance.Submission{Org: "acme", CSRPEM: pemText, ValidityDays: 30})
			if err != nil {
				return nil, err
			}
			return e.wf.Approve(bg, admin, r.ID, "ok")
		}},
		{"renewal", func() (*models.Request, error) {
			pemText, _ := csr(t, base.Identities...)
			return e.wf.Submit(bg, partner, issuance.Submission{Org: "acme", CSRPEM: pemText, RenewalOf: base.ID})
		}},
	}
}

func TestIssuance_StatementAndCommitBudget(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		base := e.issue("base")
		scenarios := issuanceScenarios(t, e, base)
		cost := countSQL(t, s)
		for _, tc := range scenarios {
			cost.start()
			atCommit := s.AppendsSentWithCommit()
			r, err := tc.issue()
			statements, writes, loneBegins := cost.stop()
			statements += int(s.AppendsSentWithCommit() - atCommit)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if r.State != models.StateIssued {
				t.Fatalf("%s: request is %s, want issued", tc.name, r.State)
			}
			t.Logf("%s on %s: %d statements, %d write transactions, %d BEGINs on their own", tc.name, s.Driver(), statements, writes, loneBegins)
			if s.Driver() == models.DriverPostgres && loneBegins > 0 {
				t.Errorf("%s: %d BEGINs sent in a round trip of their own, want none", tc.name, loneBegins)
			}
			if budget := maxIssuanceCost[s.Driver()][tc.name]; statements > budget.statements || writes > budget.writes {
				t.Errorf("%s: %d statements and %d write transactions, want at most %d and %d",
					tc.name, statements, writes, budget.statements, budget.writes)
			}
		}
	})
}

// maxIssuanceRoundTrips is how many round trips to PostgreSQL that run
// statements one issuance through the workflow may take, counted on the
// wire. A submission takes three: its key's lock with its check, the
// request's INSERT, the audit append with the COMMIT; an approval three:
// the read of the request to decide, the approval with the reservation,
// the append with the COMMIT; the recording of the signed certificate two:
// its UPDATE, the append with the COMMIT. A renewal: the read of the
// certificate renewed, the lock with the check, the request's and the
// reservation's INSERTs, the append with the COMMIT, and the recording.
// Each BEGIN goes with its transaction's first statement.
var maxIssuanceRoundTrips = map[string]int{"submit+approve": 8, "renewal": 6}

// TestIssuance_RoundTripsToPostgres counts on the wire, through a proxy
// that reads the frontend protocol, the round trips an issuance takes and
// the statements they run.
func TestIssuance_RoundTripsToPostgres(t *testing.T) {
	s, wire := modelstest.PostgresCountingRoundTrips(t)
	e := newEnv(t, s)
	base := e.issue("base")
	for _, tc := range issuanceScenarios(t, e, base) {
		// Three times first, so that the connections the issuance uses
		// have prepared its statements (pgx prepares a statement in a
		// round trip of its own the first time a connection runs it).
		for range 3 {
			if _, err := tc.issue(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		before := wire.Counts()
		r, err := tc.issue()
		got := wire.Counts().Sub(before)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.State != models.StateIssued {
			t.Fatalf("%s: request is %s, want issued", tc.name, r.State)
		}
		t.Logf("%s: %d round trips running %d statements (and %d preparing, %d connections opened)",
			tc.name, got.RoundTrips, got.Statements, got.Prepares, got.Dials)
		if got.RoundTrips == 0 || got.Statements < got.RoundTrips {
			t.Fatalf("%s: the proxy counted %+v: it sees no statements", tc.name, got)
		}
		if want := maxIssuanceRoundTrips[tc.name]; got.RoundTrips > want {
			t.Errorf("%s: %d round trips to PostgreSQL, want at most %d", tc.name, got.RoundTrips, want)
		}
	}
}
