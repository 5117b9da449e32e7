package modelstest

import (
	"context"
	"encoding/binary"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

// RoundTrips is a loopback proxy in front of PostgreSQL that reads the
// frontend protocol its clients send and counts their round trips: a round
// trip is what a client sends between two answers of the server (pgx sends
// a batch at once, then reads). A round trip that runs a statement (a
// simple Query or an extended Execute) is counted in RoundTrips, any other
// in Prepares: pgx preparing a statement the first time a connection runs
// it (Parse, Describe, Sync, before it runs it), or a connection's start-up
// and end.
type RoundTrips struct {
	ln     net.Listener
	target string

	mu         sync.Mutex
	statements int // round trips that ran at least one statement
	executes   int // statements run (Query and Execute messages)
	prepares   int // round trips that ran no statement
	dials      int // connections opened through the proxy
	conns      []net.Conn
}

// Counts are what a RoundTrips counted.
type Counts struct {
	RoundTrips int // round trips that ran at least one statement
	Statements int // statements run, in those round trips
	Prepares   int // round trips that ran no statement (preparing one, start-up)
	Dials      int // connections opened
}

// Counts returns the counts so far; subtract two to count what happened
// between them.
func (p *RoundTrips) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Counts{RoundTrips: p.statements, Statements: p.executes, Prepares: p.prepares, Dials: p.dials}
}

// Sub is c minus an earlier b.
func (c Counts) Sub(b Counts) Counts {
	return Counts{RoundTrips: c.RoundTrips - b.RoundTrips, Statements: c.Statements - b.Statements,
		Prepares: c.Prepares - b.Prepares, Dials: c.Dials - b.Dials}
}

// PostgresCountingRoundTrips is Postgres with every connection of the
// store through a RoundTrips proxy.
func PostgresCountingRoundTrips(t testing.TB) (*models.Store, *RoundTrips) {
	t.Helper()
	u, err := url.Parse(PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &RoundTrips{ln: ln, target: u.Host}
	t.Cleanup(p.close)
	go p.accept()
	u.Host = ln.Addr().String()
	return open(t, models.Config{Driver: models.DriverPostgres, DSN: u.String()}), p
}

func (p *RoundTrips) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *RoundTrips) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(context.Background(), "tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.dials++
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.relay(client, server)
	}
}

// relay copies both ways between a client and the server, reading the
// client's messages. The server's answer is noted before it is passed on,
// so what the client sends in reply to it starts a new round trip; each
// round trip is counted as its bytes arrive.
func (p *RoundTrips) relay(client, server net.Conn) {
	var mu sync.Mutex
	answered := true // the next client bytes start a round trip
	go func() {
		defer client.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				mu.Lock()
				answered = true
				mu.Unlock()
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer server.Close()
	r := &frontendReader{}
	ranStatement := false // in this round trip
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			mu.Lock()
			p.mu.Lock()
			if answered {
				answered, ranStatement = false, false
				p.prepares++ // until it runs a statement
			}
			r.feed(buf[:n], func(kind byte) {
				if kind != 'Q' && kind != 'E' {
					return
				}
				p.executes++
				if !ranStatement {
					ranStatement = true
					p.prepares--
					p.statements++
				}
			})
			p.mu.Unlock()
			mu.Unlock()
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// frontendReader splits what a client sends into the frontend protocol's
// messages: first the start-up message (a length, no type), then messages
// of one type byte and a length that counts itself.
type frontendReader struct {
	started bool
	pending []byte
}

// feed takes the next bytes and calls msg with the type of each whole
// message they complete (0 for the start-up message).
func (r *frontendReader) feed(b []byte, msg func(kind byte)) {
	r.pending = append(r.pending, b...)
	for {
		if !r.started {
			if len(r.pending) < 4 {
				return
			}
			n := int(binary.BigEndian.Uint32(r.pending))
			if len(r.pending) < n {
				return
			}
			r.pending, r.started = r.pending[n:], true
			msg(0)
			continue
		}
		if len(r.pending) < 5 {
			return
		}
		n := 1 + int(binary.BigEndian.Uint32(r.pending[1:]))
		if len(r.pending) < n {
			return
		}
		kind := r.pending[0]
		r.pending = r.pending[n:]
		msg(kind)
	}
}
