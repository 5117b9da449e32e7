package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/signer/crlreason"
)

// RevocationReasons is GET /revocation/reasons: every revocation reason
// certdesk accepts, with its RFC 5280 §5.3.1 code, a label and the roles
// that may give it, so that the revoke dialog offers what Revoke accepts.
func RevocationReasons(c echo.Context) error {
	return c.JSON(http.StatusOK, listOf(crlreason.All(), ""))
}
