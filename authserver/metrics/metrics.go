// Package metrics counts what operators watch on the platform API, on a
// Prometheus registry the caller owns (one per server, never the global
// default registry, so two servers in one process or test do not share
// counters):
//
//   - ucpbridge_http_requests_total and ucpbridge_http_request_duration_seconds,
//     by method, route pattern and status class (a pattern, never a raw
//     path: the label set stays bounded whatever URLs clients send);
//   - ucpbridge_tokens_issued_total by grant type;
//   - ucpbridge_checkout_completions_total by outcome;
//   - ucpbridge_allowance_refusals_total by code;
//   - ucpbridge_webhook_deliveries_total by result;
//   - ucpbridge_sweep_deleted_rows_total by table and
//     ucpbridge_sweep_duration_seconds by sweep and result: what the
//     retention sweeps (OAuth records; the stores' idempotency records,
//     sessions and spend holds) delete, and how long they take.
//
// A nil *Metrics is valid and records nothing, so the parts that count
// (oauth, shop) need no configuration in tests and tools.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Completion outcomes (CheckoutCompleted).
const (
	OutcomeCompleted  = "completed"           // an order was placed
	OutcomeEscalation = "requires_escalation" // the buyer must act (3-D Secure, a hosted page)
	OutcomeRefused    = "refused"             // a business refusal: declined, allowance, stock, terms
	OutcomeError      = "error"               // a protocol or transport-level error
)

// Webhook delivery results (WebhookDelivered).
const (
	WebhookDelivered = "delivered"
	WebhookRetry     = "retry"     // failed, rescheduled
	WebhookAbandoned = "abandoned" // failed for the last time
)

// Sweeps (SweepDone) and their results.
const (
	SweepOAuth = "oauth" // expired tokens, codes, ended and revoked refresh families
	SweepShop  = "shop"  // idempotency records, ended sessions, old spend holds

	SweepOK    = "ok"
	SweepMore  = "more"  // stopped at its batch bound; a backlog remains
	SweepBusy  = "busy"  // another instance was sweeping (PostgreSQL)
	SweepError = "error" // failed or was canceled part way
)

// Metrics records the platform's counters. Build it with New.
type Metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	tokens      *prometheus.CounterVec
	completions *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	swept       *prometheus.CounterVec
	sweeps      *prometheus.HistogramVec
}

// Options configures New.
type Options struct {
	// ProcessCollectors adds the Go runtime and process collectors
	// (memory, goroutines, open files) to the registry.
	ProcessCollectors bool
}

// New registers the platform's metrics on reg.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ucpbridge_http_requests_total", Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ucpbridge_http_request_duration_seconds", Help: "HTTP request latency, by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ucpbridge_tokens_issued_total", Help: "Token responses issued by the token endpoint, by grant type.",
		}, []string{"grant_type"}),
		completions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ucpbridge_checkout_completions_total", Help: "Checkout completion attempts, by outcome.",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ucpbridge_allowance_refusals_total", Help: "Buyer-bound payments refused by the buyer's spend allowance, by code.",
		}, []string{"code"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ucpbridge_webhook_deliveries_total", Help: "Order webhook delivery attempts, by result.",
		}, []string{"result"}),
	}
	m.swept = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ucpbridge_sweep_deleted_rows_total", Help: "Rows deleted by the retention sweeps, by table.",
	}, []string{"table"})
	m.sweeps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ucpbridge_sweep_duration_seconds", Help: "Duration of retention sweeps, by sweep (oauth, shop) and result (ok, more, busy, error).",
		Buckets: []float64{.001, .01, .1, .5, 1, 5, 10, 30, 60, 300},
	}, []string{"sweep", "result"})
	cs := []prometheus.Collector{m.requests, m.latency, m.tokens, m.completions, m.refusals, m.webhooks, m.swept, m.sweeps}
	if opts.ProcessCollectors {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveRequest records one served request. route is the pattern that
// matched ("" when none did).
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	method = boundedMethod(method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}

// TokenIssued counts a token response of the given grant type.
func (m *Metrics) TokenIssued(grantType string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(grantType).Inc()
}

// CheckoutCompleted counts a completion attempt by outcome (Outcome*).
func (m *Metrics) CheckoutCompleted(outcome string) {
	if m == nil {
		return
	}
	m.completions.WithLabelValues(outcome).Inc()
}

// AllowanceRefused counts a payment the spend allowance refused; code is
// the refusal's UCP message code.
func (m *Metrics) AllowanceRefused(code string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(code).Inc()
}

// WebhookDelivered counts a webhook delivery attempt by result (Webhook*).
func (m *Metrics) WebhookDelivered(result string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(result).Inc()
}

// RowsSwept counts n rows a retention sweep deleted from table (one of
// the stores' table names, never caller input).
func (m *Metrics) RowsSwept(table string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.swept.WithLabelValues(table).Add(float64(n))
}

// SweepDone records one sweep's duration; sweep is Sweep* (the kind),
// result is SweepOK, SweepMore, SweepBusy or SweepError.
func (m *Metrics) SweepDone(sweep, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.sweeps.WithLabelValues(sweep, result).Observe(d.Seconds())
}

// boundedMethod keeps the method label to the standard methods: a client
// may send any token as a method.
func boundedMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "other"
}
