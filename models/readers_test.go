package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// On SQLite the reads outside a transaction go to read-only connections:
// while a write transaction is open on the one writer, they are answered at
// once, see what was committed before it and not what it has written, and
// see it once it commits.
func TestSQLite_ReadsDoNotWaitForAnOpenWriteTransaction(t *testing.T) {
	s := modelstest.SQLite(t)
	newOrg(t, s, "acme", false)
	r := submit(t, s)
	tok := &models.APIToken{Name: "ci", Hash: strings.Repeat("ab", 32), Subject: partner.Subject, Role: models.RolePartner,
		Org: "acme", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateToken(ctx, admin, tok); err != nil {
		t.Fatal(err)
	}
	// Used once now, so that the lookup below has no use to record (a
	// write, which waits for the writer).
	if _, err := s.LookupToken(ctx, tok.Hash); err != nil {
		t.Fatal(err)
	}

	commit := holdWriteTx(t, s, `UPDATE organizations SET name = ? WHERE slug = ?`, "Acme Renamed", "acme")
	defer commit()

	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if got, err := s.GetRequest(rctx, r.ID); err != nil || got.ID != r.ID {
		t.Fatalf("GetRequest while a write transaction is open: %v, %v", got, err)
	}
	if _, err := s.LookupToken(rctx, tok.Hash); err != nil {
		t.Fatalf("LookupToken while a write transaction is open: %v", err)
	}
	org, err := s.GetOrg(rctx, "acme")
	if err != nil {
		t.Fatalf("GetOrg while a write transaction is open: %v", err)
	}
	if org.Name == "Acme Renamed" {
		t.Error("a reader saw the open transaction's uncommitted write")
	}

	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if org, err := s.GetOrg(ctx, "acme"); err != nil || org.Name != "Acme Renamed" {
		t.Fatalf("GetOrg after the commit: %+v, %v; want the new name", org, err)
	}
}

// Readiness covers the read-only connections: when they cannot answer,
// Ping fails, not only the reads.
func TestSQLite_PingCoversTheReaders(t *testing.T) {
	s := modelstest.SQLite(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.CloseReaders(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping answered nil with the read-only connections closed")
	}
	if _, err := s.GetOrg(ctx, "acme"); err == nil {
		t.Fatal("a read answered with the read-only connections closed")
	}
}
