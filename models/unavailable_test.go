package models_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// TestOpen_NoPostgresListening_IsUnavailable: a PostgreSQL that refuses
// connections is ErrUnavailable, which the web layer answers with 503.
func TestOpen_NoPostgresListening_IsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = models.Open(ctx, models.Config{Driver: models.DriverPostgres, DSN: fmt.Sprintf("postgres://certdesk@%s/certdesk?sslmode=disable&connect_timeout=2", addr)})
	if !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("Open with nothing listening: %v, want ErrUnavailable", err)
	}
}

// TestStore_MissingRow_IsNotFoundNotUnavailable: a
// statement's own error (a missing row) keeps its kind and is not taken for
// an outage.
func TestStore_MissingRow_IsNotFoundNotUnavailable(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		_, err := s.GetRequest(context.Background(), "no-such-request")
		if !errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrUnavailable) {
			t.Fatalf("GetRequest of a missing id: %v, want ErrNotFound only", err)
		}
	})
}
