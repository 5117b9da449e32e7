package models

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// ErrUnavailable means the database could not be reached or dropped the
// connection: the operation may have not happened, and the caller should try
// again shortly. Every store error caused by the connection rather than by
// the statement wraps it.
var ErrUnavailable = errors.New("the database is unavailable")

// unavailable wraps err with ErrUnavailable when the connection, not the
// statement, failed: PostgreSQL connect errors and network errors, a
// connection the driver found bad or closed, the server shutting down or
// refusing connections (SQLSTATE class 08, 57P01-57P03, 53300), and SQLite
// busy or locked.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !connectionFailed(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func connectionFailed(err error) bool {
	var (
		connect *pgconn.ConnectError
		netErr  net.Error
		pgErr   *pgconn.PgError
		coded   interface{ Code() int }
	)
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &connect), errors.As(err, &netErr):
		return true
	case errors.As(err, &pgErr):
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "53300"
	case errors.As(err, &coded):
		// SQLite result codes: SQLITE_BUSY 5, SQLITE_LOCKED 6 (low byte of
		// extended codes).
		code := coded.Code() & 0xff
		return code == 5 || code == 6
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "failed to connect to")
}

// registerUnavailable makes every statement's connection failure wrap
// ErrUnavailable, after gorm's own error translation.
func registerUnavailable(db *gorm.DB) error {
	mark := func(tx *gorm.DB) {
		if tx.Error != nil {
			tx.Error = unavailable(tx.Error)
		}
	}
	cb := db.Callback()
	for name, p := range map[string]interface {
		Register(string, func(*gorm.DB)) error
	}{
		"create": cb.Create().After("*"), "query": cb.Query().After("*"), "update": cb.Update().After("*"),
		"delete": cb.Delete().After("*"), "row": cb.Row().After("*"), "raw": cb.Raw().After("*"),
	} {
		if err := p.Register("certdesk:unavailable", mark); err != nil {
			return fmt.Errorf("registering the %s callback: %w", name, err)
		}
	}
	return nil
}
