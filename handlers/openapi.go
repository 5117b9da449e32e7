package handlers

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPISpec is the hand-written OpenAPI 3.1 description of certdesk's
// HTTP API. web/openapi_test.go checks that every route the server
// registers is described in it.
//
//go:embed openapi.json
var openAPISpec []byte

// OpenAPISpec returns a copy of the OpenAPI 3.1 document served at
// GET /api/v1/openapi.json.
func OpenAPISpec() []byte {
	return append([]byte(nil), openAPISpec...)
}

// OpenAPI is GET /api/v1/openapi.json: the description of the whole REST
// API, public (no sign-in) and cacheable for five minutes.
func OpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPISpec)
}
