package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// maxJSONBody bounds a JSON request body; a CSR is at most 64 KiB.
const maxJSONBody = 256 << 10

// bindJSON decodes a JSON request body strictly into v: the content type
// must be application/json, unknown fields and trailing data are refused.
func bindJSON(c echo.Context, v any) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "the request body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, maxJSONBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return echo.NewHTTPError(http.StatusBadRequest, "the request body is empty")
		case errors.As(err, &syn):
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
		case errors.As(err, &typ):
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("field %q must be of type %s", typ.Field, typ.Type))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return echo.NewHTTPError(http.StatusBadRequest, "the JSON body is truncated or larger than 256 KiB")
		default:
			return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
		}
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "unexpected data after the JSON object")
	}
	return nil
}

// actor returns the authenticated caller, set by the web layer.
func actor(c echo.Context) models.Actor {
	a, _ := models.ActorFrom(c.Request().Context())
	return a
}

// page reads the pagination parameters cursor and limit.
func page(c echo.Context) (cursor string, limit int, err error) {
	cursor = c.QueryParam("cursor")
	if s := c.QueryParam("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit < 1 || limit > 500 {
			return "", 0, echo.NewHTTPError(http.StatusBadRequest, "limit must be a number from 1 to 500")
		}
	}
	return cursor, limit, nil
}

// list is the shape of every list answer.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func listOf[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, Next: next}
}
