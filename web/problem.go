package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// Problem types (RFC 9457 §3.1.1). "about:blank" means the status code says
// it all; the others name certdesk-specific kinds that clients may branch on.
const (
	ProblemTypeDefault        = "about:blank"
	ProblemTypePolicy         = "urn:certdesk:problem:policy"
	ProblemTypeHSMUnavailable = "urn:certdesk:problem:hsm-unavailable"
	ProblemTypeDBUnavailable  = "urn:certdesk:problem:database-unavailable"
	ProblemTypeRateLimited    = "urn:certdesk:problem:rate-limited"
)

// RetryAfterSeconds is the Retry-After (RFC 9110 §10.2.3) of a 503 for an
// unavailable HSM or database: about one recovery pass.
const RetryAfterSeconds = 10

// ContentTypeProblem is the media type of problem details (RFC 9457 §3).
const ContentTypeProblem = "application/problem+json"

// genericDetail is all a client learns about an unexpected error; the error
// itself is logged with the request id.
const genericDetail = "An internal error occurred. Quote the request id to the operator."

// Problem is an RFC 9457 problem details object. It is also an error, so a
// handler may return one directly; NewProblem builds the common case.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Rule      string `json:"rule,omitempty"` // the policy rule that refused (signer.PolicyError)
	RequestID string `json:"request_id,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header when set.
	RetryAfter int `json:"-"`
}

// Error implements error.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Title)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// NewProblem returns an error that ErrorHandler renders with status and
// detail, e.g. NewProblem(http.StatusBadRequest, "validity_days must be positive").
// The detail is shown to the client: put nothing secret or internal in it.
func NewProblem(status int, detail string) error {
	return &Problem{Type: ProblemTypeDefault, Title: http.StatusText(status), Status: status, Detail: detail}
}

// ErrorHandler is the single mapping from errors to HTTP answers. Known
// error kinds become their status with the
// error's message as detail; anything else is a 500 whose detail is generic
// and whose real error is logged with the request id, never sent.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	if log == nil {
		log = slog.Default()
	}
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		req := c.Request()
		p := problemFor(err)
		p.Instance = req.URL.Path
		p.RequestID = requestID(c)
		if p.Status >= http.StatusInternalServerError {
			log.ErrorContext(req.Context(), "request failed",
				"request_id", p.RequestID, "method", req.Method, "path", req.URL.Path,
				"status", p.Status, "err", err)
		}
		if p.Status == http.StatusUnauthorized && c.Response().Header().Get(echo.HeaderWWWAuthenticate) == "" {
			// RFC 9110 §11.6.1: a 401 carries a challenge.
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="certdesk"`)
		}
		if err := writeProblem(c, p); err != nil {
			log.WarnContext(req.Context(), "writing problem response", "request_id", p.RequestID, "err", err)
		}
	}
}

// problemFor maps err to a problem without request-specific fields.
func problemFor(err error) *Problem {
	var (
		p      *Problem
		he     *echo.HTTPError
		policy *signer.PolicyError
		rl     *RateLimitedError
	)
	switch {
	case errors.As(err, &p):
		out := *p
		if out.Status == 0 {
			out.Status = http.StatusInternalServerError
		}
		if out.Type == "" {
			out.Type = ProblemTypeDefault
		}
		if out.Title == "" {
			out.Title = http.StatusText(out.Status)
		}
		return &out
	case errors.As(err, &he):
		return fromHTTPError(he)
	case errors.As(err, &rl):
		return rateLimitedProblem(rl.RetryAfter)
	case errors.As(err, &policy):
		return &Problem{Type: ProblemTypePolicy, Title: "Refused by policy", Status: http.StatusUnprocessableEntity, Detail: policy.Reason, Rule: policy.Rule}
	case errors.Is(err, signer.ErrPolicy):
		return &Problem{Type: ProblemTypePolicy, Title: "Refused by policy", Status: http.StatusUnprocessableEntity, Detail: err.Error()}
	case errors.Is(err, signer.ErrHSMUnavailable):
		// Retry-able; the message may name the token but never its PIN.
		return &Problem{Type: ProblemTypeHSMUnavailable, Title: "Signing key unavailable", Status: http.StatusServiceUnavailable,
			Detail: "The signing key's HSM is unavailable. Try again shortly.", RetryAfter: RetryAfterSeconds}
	case errors.Is(err, models.ErrUnavailable):
		// Nothing about the connection (host, user) reaches the client.
		return &Problem{Type: ProblemTypeDBUnavailable, Title: "Database unavailable", Status: http.StatusServiceUnavailable,
			Detail: "The database is unavailable. Try again shortly.", RetryAfter: RetryAfterSeconds}
	case errors.Is(err, models.ErrNotFound):
		return simple(http.StatusNotFound, err.Error())
	case errors.Is(err, models.ErrConflict):
		return simple(http.StatusConflict, err.Error())
	case errors.Is(err, models.ErrForbidden):
		return simple(http.StatusForbidden, err.Error())
	case errors.Is(err, models.ErrInvalid):
		return simple(http.StatusBadRequest, err.Error())
	}
	return simple(http.StatusInternalServerError, genericDetail)
}

// fromHTTPError maps echo's own errors (404 route, 405, 413 body limit,
// bind errors...). Their messages are echo's and safe to show; an internal
// error attached to them is only logged.
func fromHTTPError(he *echo.HTTPError) *Problem {
	status := he.Code
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if status >= http.StatusInternalServerError {
		return simple(status, genericDetail)
	}
	detail := ""
	switch m := he.Message.(type) {
	case string:
		detail = m
	case error:
		detail = m.Error()
	case nil:
	default:
		detail = fmt.Sprint(m)
	}
	if detail == http.StatusText(status) {
		detail = ""
	}
	return simple(status, detail)
}

func simple(status int, detail string) *Problem {
	return &Problem{Type: ProblemTypeDefault, Title: http.StatusText(status), Status: status, Detail: detail}
}

// writeProblem sends p as application/problem+json (no body for HEAD).
func writeProblem(c echo.Context, p *Problem) error {
	resp := c.Response()
	resp.Header().Set(echo.HeaderContentType, ContentTypeProblem)
	resp.Header().Set(echo.HeaderCacheControl, "no-store")
	if p.RetryAfter > 0 {
		resp.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	resp.WriteHeader(p.Status)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	return json.NewEncoder(resp).Encode(p)
}

// requestID is the id echo's RequestID middleware put on the response (or
// the one the client sent), for logs and for the problem's request_id.
func requestID(c echo.Context) string {
	if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" {
		return id
	}
	return c.Request().Header.Get(echo.HeaderXRequestID)
}
