package models

import (
	"bytes"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scan targets for the statements the store sends itself. Each wraps a
// pointer to a model's field and reads a column as gorm reads it into that
// field: NULL as the zero value (nil for a pointer), a JSON column
// (gorm's serializer:json) decoded, and a time that SQLite returns as text
// (a computed column has no declared type) parsed as its driver parses
// DATETIME columns. Each is one pointer, so passing it as an interface
// allocates nothing.

// strCol scans a text column into a string.
type strCol struct{ p *string }

// Scan implements sql.Scanner.
func (d strCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = ""
	case string:
		*d.p = v
	case []byte:
		*d.p = string(v)
	default:
		return fmt.Errorf("scanning %T into a string", src)
	}
	return nil
}

// intCol scans an integer column into an int.
type intCol struct{ p *int }

// Scan implements sql.Scanner.
func (d intCol) Scan(src any) error {
	var n int64
	if err := (int64Col{&n}).Scan(src); err != nil {
		return err
	}
	*d.p = int(n)
	return nil
}

// uintCol scans an integer column (an ID) into a uint.
type uintCol struct{ p *uint }

// Scan implements sql.Scanner.
func (d uintCol) Scan(src any) error {
	var n int64
	if err := (int64Col{&n}).Scan(src); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("scanning %d into an unsigned integer", n)
	}
	*d.p = uint(n)
	return nil
}

// int64Col scans an integer column into an int64.
type int64Col struct{ p *int64 }

// Scan implements sql.Scanner.
func (d int64Col) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = 0
	case int64:
		*d.p = v
	case int32:
		*d.p = int64(v)
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("scanning %T into an integer", src)
	}
	return nil
}

func (d int64Col) parse(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("scanning %q into an integer: %w", v, err)
	}
	*d.p = n
	return nil
}

// boolCol scans a boolean (SQLite: an integer) column into a bool.
type boolCol struct{ p *bool }

// Scan implements sql.Scanner.
func (d boolCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = false
	case bool:
		*d.p = v
	case int64:
		*d.p = v != 0
	default:
		b, err := driver.Bool.ConvertValue(src)
		if err != nil {
			return fmt.Errorf("scanning %T into a bool: %w", src, err)
		}
		*d.p = b.(bool)
	}
	return nil
}

// bytesCol scans a binary column into a []byte (a copy: the driver reuses
// its buffer).
type bytesCol struct{ p *[]byte }

// Scan implements sql.Scanner.
func (d bytesCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = nil
	case []byte:
		*d.p = bytes.Clone(v)
	case string:
		*d.p = []byte(v)
	default:
		return fmt.Errorf("scanning %T into bytes", src)
	}
	return nil
}

// timeCol scans a time column into a time.Time.
type timeCol struct{ p *time.Time }

// Scan implements sql.Scanner.
func (d timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = time.Time{}
	case time.Time:
		*d.p = v
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("scanning %T into a time", src)
	}
	return nil
}

// sqliteTimeFormats are the forms SQLite's driver reads a DATETIME in
// (it writes the first).
var sqliteTimeFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

func (d timeCol) parse(v string) error {
	ts := strings.TrimSuffix(v, "Z")
	for _, f := range sqliteTimeFormats {
		if t, err := time.ParseInLocation(f, ts, time.UTC); err == nil {
			*d.p = t
			return nil
		}
	}
	return fmt.Errorf("scanning %q into a time: not a time", v)
}

// optCol scans a nullable column into a *T: NULL as nil, any other value
// through the scanner of T that col gives.
type optCol[T any] struct {
	p   **T
	col func(*T) sql.Scanner
}

// Scan implements sql.Scanner.
func (d optCol[T]) Scan(src any) error {
	if src == nil {
		*d.p = nil
		return nil
	}
	var v T
	if err := d.col(&v).Scan(src); err != nil {
		return err
	}
	*d.p = &v
	return nil
}

// optStr scans a nullable text column into a *string.
func optStr(p **string) optCol[string] {
	return optCol[string]{p, func(v *string) sql.Scanner { return strCol{v} }}
}

// optInt scans a nullable integer column into an *int.
func optInt(p **int) optCol[int] {
	return optCol[int]{p, func(v *int) sql.Scanner { return intCol{v} }}
}

// optTime scans a nullable time column into a *time.Time.
func optTime(p **time.Time) optCol[time.Time] {
	return optCol[time.Time]{p, func(v *time.Time) sql.Scanner { return timeCol{v} }}
}

// jsonCol scans a JSON column (gorm's serializer:json) into a value of
// type T: NULL or empty as T's zero value.
type jsonCol[T any] struct{ p *T }

// Scan implements sql.Scanner.
func (d jsonCol[T]) Scan(src any) error {
	var zero T
	*d.p = zero
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scanning %T into JSON", src)
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, d.p)
}

// jsonValue is how gorm's serializer:json stores a list: its JSON text,
// or NULL for a nil list. (A list of strings or ints always encodes.)
func jsonValue[T ~[]E, E string | int](l T) any {
	if l == nil {
		return nil
	}
	b, _ := json.Marshal(l)
	return string(b)
}
