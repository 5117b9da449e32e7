package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certdesk/certdesk/models"
)

// MetricsSource is what the metrics read from the store at scrape time.
type MetricsSource interface {
	RequestsByState(ctx context.Context) ([]models.StateCount, error)
	SoonestExpiries(ctx context.Context, now time.Time) ([]models.OrgExpiry, error)
	LatestCRLInfo(ctx context.Context, issuer, keyID string) (*models.CRL, error)
}

// Metrics are certdesk's Prometheus metrics. It implements the observer
// interfaces of the issuance workflow and the revocation service.
type Metrics struct {
	reg *prometheus.Registry

	issued          *prometheus.CounterVec
	revoked         *prometheus.CounterVec
	issuanceSeconds prometheus.Histogram
	hsmSeconds      prometheus.Histogram
	hsmErrors       prometheus.Counter
	ocspResponses   *prometheus.CounterVec
	revokeToPublish prometheus.Histogram
	crlSeconds      *prometheus.HistogramVec
	crlEntries      *prometheus.GaugeVec
	httpRequests    *prometheus.CounterVec
	httpSeconds     *prometheus.HistogramVec
	authFailures    *prometheus.CounterVec
}

// NewMetrics registers every metric. hsmUp reports the (cached) HSM health.
func NewMetrics(src MetricsSource, hsmUp func(context.Context) bool, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := promauto{m.reg}
	m.issued = f.counterVec("certdesk_certificates_issued_total", "Certificates issued, by organisation.", "org")
	m.revoked = f.counterVec("certdesk_certificates_revoked_total", "Certificates revoked, by organisation and reason.", "org", "reason")
	m.issuanceSeconds = f.histogram("certdesk_issuance_duration_seconds", "Time from approval to a recorded certificate (lint, record, HSM signature, record).", prometheus.ExponentialBuckets(0.001, 2, 14))
	m.hsmSeconds = f.histogram("certdesk_hsm_sign_duration_seconds", "Time the HSM took to sign a certificate.", prometheus.ExponentialBuckets(0.0005, 2, 14))
	m.hsmErrors = f.counter("certdesk_hsm_sign_errors_total", "HSM signatures that failed.")
	m.ocspResponses = f.counterVec("certdesk_ocsp_responses_total", "OCSP responses, by status (good, revoked, unknown, unauthorized, malformed…) and whether pre-signed.", "status", "presigned")
	m.crlSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "certdesk_crl_generation_duration_seconds", Help: "Time to build, lint and sign a CRL, by CA.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"ca"})
	m.crlEntries = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "certdesk_crl_entries", Help: "Entries in the latest CRL this replica generated, by CA."}, []string{"ca"})
	m.reg.MustRegister(m.crlSeconds, m.crlEntries)
	m.revokeToPublish = f.histogram("certdesk_revoke_to_publish_seconds", "Time from a revocation to a published CRL and OCSP answer.", prometheus.ExponentialBuckets(0.01, 2, 12))
	m.httpRequests = f.counterVec("certdesk_http_requests_total", "HTTP requests, by route and status code.", "method", "route", "code")
	m.httpSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "certdesk_http_request_duration_seconds", Help: "HTTP request latency, by route.", Buckets: prometheus.DefBuckets}, []string{"method", "route"})
	m.authFailures = f.counterVec("certdesk_auth_failures_total", "Failed authentication, by kind: bearer (an API token that authenticates nobody), cookie (a session cookie that matches no session), callback (a sign-in callback that signed nobody in).", "kind")
	for _, k := range failureKinds {
		m.authFailures.WithLabelValues(k) // every kind is exported from the start, at 0
	}
	m.reg.MustRegister(m.httpSeconds, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(&storeCollector{src: src, hsmUp: hsmUp, log: log})
	return m
}

type promauto struct{ reg *prometheus.Registry }

func (p promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	p.reg.MustRegister(c)
	return c
}

func (p promauto) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	p.reg.MustRegister(c)
	return c
}

func (p promauto) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	p.reg.MustRegister(h)
	return h
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Issued records an issuance (issuance.Observer).
func (m *Metrics) Issued(org string, total, hsm time.Duration) {
	m.issued.WithLabelValues(org).Inc()
	m.issuanceSeconds.Observe(total.Seconds())
	m.hsmSeconds.Observe(hsm.Seconds())
}

// HSMError records a failed HSM signature (issuance.Observer).
func (m *Metrics) HSMError() { m.hsmErrors.Inc() }

// Revoked records a revocation.
func (m *Metrics) Revoked(org, reason string) { m.revoked.WithLabelValues(org, reason).Inc() }

// OCSPAnswered records an OCSP answer by status (revocation.Observer).
func (m *Metrics) OCSPAnswered(status string, presigned bool) {
	m.ocspResponses.WithLabelValues(status, strconv.FormatBool(presigned)).Inc()
}

// RevokeToPublish records the time from a revocation to a published CRL and
// OCSP answer (revocation.Observer).
func (m *Metrics) RevokeToPublish(d time.Duration) { m.revokeToPublish.Observe(d.Seconds()) }

// CRLGenerated records a CRL generation (revocation.Observer).
func (m *Metrics) CRLGenerated(issuer string, entries int, took time.Duration) {
	m.crlSeconds.WithLabelValues(issuer).Observe(took.Seconds())
	m.crlEntries.WithLabelValues(issuer).Set(float64(entries))
}

// AuthFailure counts a failed authentication of kind (Auth.ObserveFailures).
func (m *Metrics) AuthFailure(kind string) { m.authFailures.WithLabelValues(kind).Inc() }

// Middleware counts and times requests by route pattern (never the raw
// path, which would make one series per certificate id).
func (m *Metrics) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			code := c.Response().Status
			var he *echo.HTTPError
			if err != nil && errors.As(err, &he) {
				code = he.Code
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			m.httpRequests.WithLabelValues(c.Request().Method, route, strconv.Itoa(code)).Inc()
			m.httpSeconds.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// storeCollector reads gauges from the store at scrape time, at most every
// 15 seconds, so that frequent scrapes do not become database load.
type storeCollector struct {
	src   MetricsSource
	hsmUp func(context.Context) bool
	log   *slog.Logger

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

var (
	descRequests = prometheus.NewDesc("certdesk_requests", "Certificate requests, by state.", []string{"state"}, nil)
	descExpiry   = prometheus.NewDesc("certdesk_org_soonest_expiry_timestamp_seconds", "Per organisation, when its first valid certificate expires (alert when this is less than 30 days away).", []string{"org"}, nil)
	descCRLAge   = prometheus.NewDesc("certdesk_crl_age_seconds", "Age of the latest published CRL, by CA.", []string{"ca"}, nil)
	descCRLNum   = prometheus.NewDesc("certdesk_crl_number", "CRL number of the latest published CRL, by CA.", []string{"ca"}, nil)
	descCRLNext  = prometheus.NewDesc("certdesk_crl_next_update_timestamp_seconds", "nextUpdate of the latest CRL, by CA.", []string{"ca"}, nil)
	descHSMUp    = prometheus.NewDesc("certdesk_hsm_up", "1 when the HSM signs (cached test signature), else 0.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descExpiry, descCRLAge, descCRLNum, descCRLNext, descHSMUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, reading the store at most every
// 15 seconds.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 15*time.Second {
		c.metrics = c.read()
		c.at = time.Now()
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

func (c *storeCollector) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	var out []prometheus.Metric
	if states, err := c.src.RequestsByState(ctx); err == nil {
		for _, s := range states {
			out = append(out, prometheus.MustNewConstMetric(descRequests, prometheus.GaugeValue, float64(s.Count), s.State))
		}
	} else {
		c.log.Warn("metrics: counting requests", "err", err)
	}
	if exp, err := c.src.SoonestExpiries(ctx, now); err == nil {
		for _, e := range exp {
			out = append(out, prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue, float64(e.NotAfter.Unix()), e.Org))
		}
	} else {
		c.log.Warn("metrics: reading expiries", "err", err)
	}
	for _, ca := range []string{"issuing", "root"} {
		crl, err := c.src.LatestCRLInfo(ctx, ca, models.AnyKey)
		if err != nil {
			continue
		}
		out = append(out,
			prometheus.MustNewConstMetric(descCRLAge, prometheus.GaugeValue, now.Sub(crl.ThisUpdate).Seconds(), ca),
			prometheus.MustNewConstMetric(descCRLNum, prometheus.GaugeValue, float64(crl.Number), ca),
			prometheus.MustNewConstMetric(descCRLNext, prometheus.GaugeValue, float64(crl.NextUpdate.Unix()), ca))
	}
	up := 0.0
	if c.hsmUp == nil || c.hsmUp(ctx) {
		up = 1
	}
	return append(out, prometheus.MustNewConstMetric(descHSMUp, prometheus.GaugeValue, up))
}

// requireBearer guards a route with one static bearer token (RFC 6750),
// compared in constant time. An empty token leaves the route open.
func requireBearer(token, realm string) echo.MiddlewareFunc {
	if token == "" {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	want := sha256.Sum256([]byte(token))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			scheme, got, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="`+realm+`"`)
				return NewProblem(http.StatusUnauthorized, "Send the metrics token: Authorization: Bearer <token> (metrics.bearer_token_file).")
			}
			h := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if subtle.ConstantTimeCompare(h[:], want[:]) != 1 {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="`+realm+`", error="invalid_token"`)
				return NewProblem(http.StatusUnauthorized, "The metrics token is wrong.")
			}
			return next(c)
		}
	}
}
