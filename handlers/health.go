package handlers

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Health serves /healthz (the process is alive) and /readyz (the database
// answers and the HSM signs). Sign-in is reported by /readyz but does not
// make it fail: CRL, OCSP, CA files and API tokens need no identity
// provider, so an IdP outage must not take every replica out of the load
// balancer. /readyz?check=sign_in is the probe that fails with sign-in.
type Health struct {
	DBPing func(ctx context.Context) error
	// SignIn, when set, says why sign-in is not available (the OpenID
	// provider was not discovered yet), or nil.
	SignIn func() error
	// HSMCheck makes a test signature; its result is cached for CacheFor so
	// that probes do not become HSM load.
	HSMCheck func(ctx context.Context) error
	CacheFor time.Duration

	mu      sync.Mutex
	checked time.Time
	hsmErr  error
}

// Healthz is GET /healthz.
func (h *Health) Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ReadyzCheckSignIn is the value of /readyz's check parameter that makes
// the probe also fail (503) while sign-in is unavailable.
const ReadyzCheckSignIn = "sign_in"

// Readyz is GET /readyz: 200 when the database answers and the HSM signs,
// else 503. The body also says whether sign-in is available and, if not,
// why; only with ?check=sign_in does an unavailable sign-in make it 503.
func (h *Health) Readyz(c echo.Context) error {
	check := c.QueryParam("check")
	if check != "" && check != ReadyzCheckSignIn {
		return echo.NewHTTPError(http.StatusBadRequest, "check must be "+ReadyzCheckSignIn+" or absent")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	status := map[string]string{"database": "ok", "hsm": "ok"}
	code := http.StatusOK
	if err := h.DBPing(ctx); err != nil {
		status["database"], code = "unavailable", http.StatusServiceUnavailable
	}
	if err := h.hsm(ctx); err != nil {
		status["hsm"], code = "unavailable", http.StatusServiceUnavailable
	}
	if h.SignIn != nil {
		status["sign_in"] = "ok"
		if err := h.SignIn(); err != nil {
			status["sign_in"], status["sign_in_reason"] = "unavailable", err.Error()
			if check == ReadyzCheckSignIn {
				code = http.StatusServiceUnavailable
			}
		}
	} else if check == ReadyzCheckSignIn {
		status["sign_in"] = "ok"
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(code, status)
}

// HSMHealthy reports the cached HSM state (for metrics).
func (h *Health) HSMHealthy(ctx context.Context) bool { return h.hsm(ctx) == nil }

func (h *Health) hsm(ctx context.Context) error {
	if h.HSMCheck == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cache := h.CacheFor
	if cache == 0 {
		cache = 5 * time.Second
	}
	if time.Since(h.checked) < cache {
		return h.hsmErr
	}
	h.hsmErr = h.HSMCheck(ctx)
	h.checked = time.Now()
	return h.hsmErr
}
