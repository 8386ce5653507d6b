package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ucpbridge/ucpbridge/authserver/metrics"
)

// Operational endpoints, beside the platform API on its listener.
const (
	pathHealthz = "/healthz" // the process is up
	pathReadyz  = "/readyz"  // and its database answers
	pathMetrics = "/metrics" // Prometheus
)

// readyTimeout bounds the readiness ping: a database that takes longer is
// not ready, and a load balancer's probe must not hang.
const readyTimeout = 2 * time.Second

// pinger is what readiness needs of the database (*sql.DB).
type pinger interface {
	PingContext(ctx context.Context) error
}

// opsMux serves /healthz, /readyz and, when reg is not nil, /metrics in
// front of api.
func opsMux(api http.Handler, db pinger, reg *prometheus.Registry, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathHealthz, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET "+pathReadyz, readyHandler(db, log))
	if reg != nil {
		mux.Handle("GET "+pathMetrics, metricsHandler(reg))
	}
	mux.Handle("/", api)
	return mux
}

// readyHandler answers 200 when the database answers a ping within
// readyTimeout, else 503 (the reason goes to the log, not the caller).
func readyHandler(db pinger, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		w.Header().Set("Cache-Control", "no-store")
		if err := db.PingContext(ctx); err != nil {
			log.WarnContext(r.Context(), "not ready: database ping failed", "err", err)
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// instrument counts every request in m and logs one access line at Info:
// method, route pattern, status, duration, request id. Never the path's
// query, a header or a body: those carry codes, tokens, keys and
// passwords. The route is the pattern the innermost mux matched (Go's
// ServeMux records it on the request it is given), so labels and log
// lines stay bounded whatever URLs clients send.
func instrument(next http.Handler, log *slog.Logger, m *metrics.Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		m.ObserveRequest(r.Method, r.Pattern, status, d)
		if log.Enabled(r.Context(), slog.LevelInfo) {
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", status), slog.Duration("duration", d), slog.String("request_id", id))
		}
	})
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status written. It passes Flush through
// (the MCP endpoints stream) and unwraps for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // not a 1xx interim response
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
