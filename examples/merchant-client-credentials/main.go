// Command merchant-client-credentials is a merchant's integration with its
// ucpbridge store: it gets a token bound to its store with the OAuth
// client_credentials grant (golang.org/x/oauth2/clientcredentials),
// registers where the store's order events go
// (PUT /s/:slug/settings/webhooks), receives each signed "order created"
// webhook, verifies it (RFC 9421 with the store's key from
// /s/:slug/.well-known/ucp, the Content-Digest recomputed over the raw
// body) and then reads the order with its own token. On exit it puts the
// previous webhook setting back.
//
// A webhook that does not verify is answered 401 and never acted on: its
// body could say anything.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Defaults match `go run ./cmd/ucpbridge dev`.
const (
	defaultURL    = "http://127.0.0.1:8080"
	defaultID     = "demo-merchant"
	defaultSecret = "ucpb_cs_demo-merchant-secret-for-local-development-only"
	defaultStore  = "flower-shop"
)

// maxWebhookBody bounds what the receiver reads; an order is a few KB.
const maxWebhookBody = 1 << 20

// maxWebhookAge refuses signatures created longer ago than this: a
// captured delivery cannot be replayed later. The platform signs each
// attempt afresh, so its retries pass.
const maxWebhookAge = 5 * time.Minute

// config is what one run needs.
type config struct {
	BaseURL      string // the platform API (issuer and stores)
	ClientID     string // the merchant's confidential client
	ClientSecret string
	Store        string // the store the client is bound to
	// Listen is the receiver's address; PublicURL, when set, is the URL
	// registered instead of http://<Listen>/orders (a tunnel or reverse
	// proxy in front). Signatures cover the URL the platform called, so
	// they are checked against PublicURL's authority and path.
	Listen    string
	PublicURL string
	// AgentProfile, when set, is a UCP profile URL sent in UCP-Agent when
	// reading orders; "" sends none (a merchant's reads need none).
	AgentProfile string
	// OnReady, when set, is called once the webhook URL is registered,
	// with the receiver's listening address.
	OnReady func(addr, webhookURL string)
}

func main() {
	var cfg config
	flag.StringVar(&cfg.BaseURL, "url", envOr("UCPBRIDGE_URL", defaultURL), "platform API URL (env UCPBRIDGE_URL)")
	flag.StringVar(&cfg.ClientID, "client-id", envOr("UCPBRIDGE_MERCHANT_ID", defaultID), "merchant client id (env UCPBRIDGE_MERCHANT_ID)")
	flag.StringVar(&cfg.ClientSecret, "client-secret", envOr("UCPBRIDGE_MERCHANT_SECRET", defaultSecret), "merchant client secret (env UCPBRIDGE_MERCHANT_SECRET)")
	flag.StringVar(&cfg.Store, "store", defaultStore, "the merchant's store slug")
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:9999", "webhook receiver address")
	flag.StringVar(&cfg.AgentProfile, "profile", "", "UCP profile URL to send in UCP-Agent when reading orders (default: none; a merchant needs none)")
	flag.StringVar(&cfg.PublicURL, "public-url", "", "URL to register when a tunnel or proxy fronts the receiver (default http://<listen>/orders)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "merchant-client-credentials:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run registers the receiver and serves it until ctx ends.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	base := strings.TrimRight(cfg.BaseURL, "/")
	storeURL := base + "/s/" + url.PathEscape(cfg.Store)
	md, err := ucpclient.DiscoverAuthServer(ctx, http.DefaultClient, base, "")
	if err != nil {
		return err
	}
	// The token is bound to the merchant's store by the authorization
	// server; the client refetches it when it expires.
	cc := &clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: md.TokenEndpoint,
		Scopes: []string{"orders:read"}}
	api := cc.Client(ctx)
	if _, err := cc.Token(ctx); err != nil {
		return fmt.Errorf("merchant token: %w", err)
	}

	keys := &storeKeys{profileURL: storeURL + "/.well-known/ucp"}
	if err := keys.refresh(ctx); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	hookURL := "http://" + ln.Addr().String() + "/orders"
	if cfg.PublicURL != "" {
		hookURL = cfg.PublicURL
	}
	pu, err := url.Parse(hookURL)
	if err != nil || pu.Host == "" {
		ln.Close()
		return fmt.Errorf("bad webhook URL %q", hookURL)
	}

	settings := storeURL + "/settings/webhooks"
	prev, err := getWebhook(ctx, api, settings)
	if err != nil {
		ln.Close()
		return err
	}
	if err := putWebhook(ctx, api, settings, &hookURL); err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "webhook %s registered for %s (was %s)\n", hookURL, cfg.Store, orNone(prev))
	// Put the previous setting back whatever happens next.
	defer func() {
		restore, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := putWebhook(restore, api, settings, prev); err != nil {
			fmt.Fprintf(stdout, "could not restore the webhook setting: %v\n", err)
		}
	}()

	rcv := &receiver{keys: keys, api: api, storeURL: storeURL, public: pu, agentProfile: cfg.AgentProfile, out: stdout, seen: map[string]bool{}}
	mux := http.NewServeMux()
	mux.Handle("POST "+pathOr(pu.Path), rcv)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if cfg.OnReady != nil {
		cfg.OnReady(ln.Addr().String(), hookURL)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func orNone(s *string) string {
	if s == nil {
		return "unset"
	}
	return *s
}

// webhookSetting is the settings document's body.
type webhookSetting struct {
	OrderEventsURL *string `json:"order_events_url"`
}

func getWebhook(ctx context.Context, api *http.Client, u string) (*string, error) {
	var s webhookSetting
	if err := doJSON(ctx, api, http.MethodGet, u, nil, &s); err != nil {
		return nil, fmt.Errorf("read webhook setting: %w", err)
	}
	return s.OrderEventsURL, nil
}

func putWebhook(ctx context.Context, api *http.Client, u string, to *string) error {
	if err := doJSON(ctx, api, http.MethodPut, u, &webhookSetting{OrderEventsURL: to}, nil); err != nil {
		return fmt.Errorf("set webhook: %w", err)
	}
	return nil
}

// apiError is a refusal from the platform: its status and the UCP or
// OAuth error it sent.
type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

func doJSON(ctx context.Context, api *http.Client, method, u string, in, out any, header ...string) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := api.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxWebhookBody))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return &apiError{Status: res.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// storeKeys holds the store profile's keys. An unknown key id refetches
// the profile (the store rotated its key), at most once a minute.
type storeKeys struct {
	profileURL string
	mu         sync.Mutex
	set        *mandate.KeySet
	fetched    time.Time
}

func (k *storeKeys) refresh(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.profileURL, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("store profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("store profile: HTTP %d", res.StatusCode)
	}
	var p ucp.Profile
	if err := json.NewDecoder(io.LimitReader(res.Body, maxWebhookBody)).Decode(&p); err != nil {
		return fmt.Errorf("store profile: %w", err)
	}
	set, err := ucpclient.ProfileKeys(&p)
	if err != nil || set.Len() == 0 {
		return fmt.Errorf("store profile %s publishes no usable signing key (%v)", k.profileURL, err)
	}
	k.mu.Lock()
	k.set, k.fetched = set, time.Now()
	k.mu.Unlock()
	return nil
}

func (k *storeKeys) current() *mandate.KeySet {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.set
}

// stale reports whether a refetch is allowed now.
func (k *storeKeys) stale() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return time.Since(k.fetched) > time.Minute
}

// receiver verifies order webhooks and reads each order once.
type receiver struct {
	keys     *storeKeys
	api      *http.Client
	storeURL string
	public   *url.URL
	// agentProfile, when set, is sent in UCP-Agent when reading an
	// order. A merchant's own reads need none (it is not a platform).
	agentProfile string
	out          io.Writer

	mu   sync.Mutex
	seen map[string]bool // order ids handled: a retried delivery is acknowledged, not handled twice
}

// refusal answers a webhook that is not acted on.
func refusal(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		refusal(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is over 1 MiB")
		return
	}
	if err := rv.verify(r, body); err != nil {
		fmt.Fprintf(rv.out, "refused webhook %s: %v\n", r.Header.Get("Webhook-Id"), err)
		code := "signature_invalid"
		var he *httpsig.Error
		if errors.As(err, &he) {
			code = string(he.Code)
		}
		refusal(w, http.StatusUnauthorized, code, err.Error())
		return
	}
	// Verified: the body is the store's. Read the order it announces with
	// our own token (the webhook says what happened; the API is the
	// record).
	var ev ucp.Order
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		refusal(w, http.StatusBadRequest, "invalid_request", "the body is not an order")
		return
	}
	rv.mu.Lock()
	dup := rv.seen[ev.ID]
	rv.mu.Unlock()
	if dup {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var order ucp.Order
	var hdr []string
	if rv.agentProfile != "" {
		hdr = []string{"UCP-Agent", `profile="` + rv.agentProfile + `"`}
	}
	if err := doJSON(r.Context(), rv.api, http.MethodGet, rv.storeURL+"/orders/"+url.PathEscape(ev.ID), nil, &order, hdr...); err != nil {
		// Not acknowledged: the platform delivers it again later.
		fmt.Fprintf(rv.out, "order %s: could not read it: %v\n", ev.ID, err)
		refusal(w, http.StatusServiceUnavailable, "temporarily_unavailable", "could not read the order yet")
		return
	}
	rv.mu.Lock()
	dup = rv.seen[ev.ID]
	rv.seen[ev.ID] = true
	rv.mu.Unlock()
	if !dup {
		fmt.Fprintf(rv.out, "order %s verified (webhook %s): %d line(s), %s\n", order.ID, r.Header.Get("Webhook-Id"),
			len(order.LineItems), money(total(order.Totals), order.Currency))
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the RFC 9421 signature with the store's key over the URL
// the platform called, with the Content-Digest recomputed over body, a
// fresh created, and the UCP-Agent naming our store.
func (rv *receiver) verify(r *http.Request, body []byte) error {
	if got := r.Header.Get("UCP-Agent"); got != `profile="`+rv.keys.profileURL+`"` {
		return fmt.Errorf("UCP-Agent %q does not name the store's profile", got)
	}
	if len(body) == 0 || r.Header.Get("Content-Digest") == "" {
		return errors.New("no body or no Content-Digest")
	}
	// The signature covers @authority and @path as the platform sent
	// them: the public URL when a proxy or tunnel fronts us.
	c := r.Clone(r.Context())
	c.Host = rv.public.Host
	c.URL.Path, c.URL.RawPath = rv.public.Path, rv.public.RawPath
	v := &httpsig.Verifier{Keys: rv.keys.current(), RequireCreated: true, MaxAge: maxWebhookAge}
	_, err := v.VerifyRequest(r.Context(), c, body)
	var he *httpsig.Error
	if errors.As(err, &he) && he.Code == httpsig.CodeKeyNotFound && rv.keys.stale() {
		if rv.keys.refresh(r.Context()) == nil {
			v.Keys = rv.keys.current()
			_, err = v.VerifyRequest(r.Context(), c, body)
		}
	}
	return err
}

func total(ts []ucp.Total) int64 {
	for _, t := range ts {
		if t.Type == ucp.TotalTotal {
			return t.Amount
		}
	}
	return 0
}

// money formats minor units with the currency's ISO 4217 decimals.
func money(minor int64, currency string) string {
	return ucp.FormatMinor(minor, currency) + " " + currency
}
