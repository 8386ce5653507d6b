package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ucpbridge/ucpbridge/authserver/metrics"
)

func TestCounters(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.TokenIssued("client_credentials")
	m.TokenIssued("client_credentials")
	m.CheckoutCompleted(metrics.OutcomeCompleted)
	m.AllowanceRefused("allowance_exceeded")
	m.WebhookDelivered(metrics.WebhookRetry)
	m.ObserveRequest("POST", "POST /s/{slug}/checkout-sessions", 201, 3*time.Millisecond)
	m.ObserveRequest("BREW", "", 404, time.Millisecond)
	want := `
# HELP ucpbridge_tokens_issued_total Token responses issued by the token endpoint, by grant type.
# TYPE ucpbridge_tokens_issued_total counter
ucpbridge_tokens_issued_total{grant_type="client_credentials"} 2
# HELP ucpbridge_http_requests_total HTTP requests served, by method, route pattern and status code.
# TYPE ucpbridge_http_requests_total counter
ucpbridge_http_requests_total{code="201",method="POST",route="POST /s/{slug}/checkout-sessions"} 1
ucpbridge_http_requests_total{code="404",method="other",route="unmatched"} 1
# HELP ucpbridge_checkout_completions_total Checkout completion attempts, by outcome.
# TYPE ucpbridge_checkout_completions_total counter
ucpbridge_checkout_completions_total{outcome="completed"} 1
# HELP ucpbridge_allowance_refusals_total Buyer-bound payments refused by the buyer's spend allowance, by code.
# TYPE ucpbridge_allowance_refusals_total counter
ucpbridge_allowance_refusals_total{code="allowance_exceeded"} 1
# HELP ucpbridge_webhook_deliveries_total Order webhook delivery attempts, by result.
# TYPE ucpbridge_webhook_deliveries_total counter
ucpbridge_webhook_deliveries_total{result="retry"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ucpbridge_tokens_issued_total", "ucpbridge_http_requests_total",
		"ucpbridge_checkout_completions_total", "ucpbridge_allowance_refusals_total", "ucpbridge_webhook_deliveries_total"); err != nil {
		t.Fatal(err)
	}
	// A second server in the same process has its own registry.
	if _, err := metrics.New(prometheus.NewRegistry(), metrics.Options{ProcessCollectors: true}); err != nil {
		t.Fatal(err)
	}
}

// TestNil: a nil *Metrics records nothing and does not panic.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.TokenIssued("x")
	m.CheckoutCompleted("x")
	m.AllowanceRefused("x")
	m.WebhookDelivered("x")
	m.ObserveRequest("GET", "/", 200, 0)
	m.RowsSwept("codes", 3)
	m.SweepDone(metrics.SweepOAuth, metrics.SweepOK, time.Second)
}

// TestSweeps: rows deleted add up per table (zero adds no series); each
// sweep is one observation under its kind and result.
func TestSweeps(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.RowsSwept("access_tokens", 50)
	m.RowsSwept("access_tokens", 7)
	m.RowsSwept("codes", 0)
	m.SweepDone(metrics.SweepOAuth, metrics.SweepMore, 2*time.Second)
	m.SweepDone(metrics.SweepOAuth, metrics.SweepOK, 20*time.Millisecond)
	m.SweepDone(metrics.SweepShop, metrics.SweepError, time.Millisecond)
	want := `
# HELP ucpbridge_sweep_deleted_rows_total Rows deleted by the retention sweeps, by table.
# TYPE ucpbridge_sweep_deleted_rows_total counter
ucpbridge_sweep_deleted_rows_total{table="access_tokens"} 57
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ucpbridge_sweep_deleted_rows_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "ucpbridge_sweep_duration_seconds"); err != nil || n != 3 {
		t.Fatalf("duration series: %d (%v)", n, err)
	}
}
