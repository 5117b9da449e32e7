package models

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// encodeCursor makes an opaque page cursor from a kind tag and the key of
// the last row returned.
func encodeCursor(kind string, parts ...string) string {
	b, _ := json.Marshal(append([]string{kind}, parts...))
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reverses encodeCursor, checking the kind and the number of
// parts; anything else is ErrInvalid.
func decodeCursor(c, kind string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	var parts []string
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != n+1 || parts[0] != kind {
		return nil, fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	return parts[1:], nil
}

// jsonList encodes a list as the JSON text stored in its column, for
// map-based updates that bypass gorm's serializer. nil is "[]".
func jsonList(l StringList) string {
	if l == nil {
		return "[]"
	}
	b, _ := json.Marshal([]string(l))
	return string(b)
}
