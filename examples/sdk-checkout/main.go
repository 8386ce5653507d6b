// Command sdk-checkout buys something at a ucpbridge store through the Go
// SDK (package ucpclient): it searches the store's catalog, puts the first
// match in a cart, turns the cart into a checkout shipped to an address,
// and completes it with ConfirmPurchase on the card rail. The cart and the
// checkout are made with the platform's API key; the payment is the
// buyer's, so the example signs the demo buyer in first (loopback OAuth
// with PKCE, as a CLI agent does) and the buyer's saved card pays within
// the spending limit the buyer allowed on the consent page.
//
// With -key-only there is no buyer: the platform key alone cannot pay (no
// card is on the platform's side), so the store answers with a hosted page
// where a person finishes the payment, and the example prints its URL.
//
// The AP2 mandates ConfirmPurchase signs are verified by the store with
// the key the agent's UCP profile publishes; the example serves that
// profile itself on a loopback port with a fresh key (dev mode accepts
// plain-http loopback profiles; a real agent publishes it over https).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Defaults match `go run ./cmd/ucpbridge dev`.
const (
	defaultURL      = "http://127.0.0.1:8080"
	defaultAPIKey   = "demo-platform.ucpb_cs_demo-platform-key-for-local-development-only"
	defaultClientID = "demo-agent"
)

// config is what one run needs. OpenBrowser shows the buyer the sign-in
// page; tests replace it with a scripted consent.
type config struct {
	BaseURL   string // the platform API (issuer and stores)
	APIKey    string // the platform's X-API-Key
	ClientID  string // the OAuth client the buyer signs in through
	Store     string // store slug
	Query     string // catalog search
	Quantity  int64
	Ship      ucp.PostalAddress
	TokenFile string // where the buyer's tokens are kept between runs; "" keeps them in memory
	KeyOnly   bool   // no buyer: show the hosted-payment escalation
	// OpenBrowser shows the buyer the authorization URL; it must not block.
	OpenBrowser func(authURL string) error
}

func main() {
	cfg := config{OpenBrowser: openBrowser}
	flag.StringVar(&cfg.BaseURL, "url", envOr("UCPBRIDGE_URL", defaultURL), "platform API URL (env UCPBRIDGE_URL)")
	flag.StringVar(&cfg.APIKey, "api-key", envOr("UCPBRIDGE_API_KEY", defaultAPIKey), "platform API key (env UCPBRIDGE_API_KEY)")
	flag.StringVar(&cfg.ClientID, "client-id", defaultClientID, "OAuth client the buyer signs in through")
	flag.StringVar(&cfg.Store, "store", "flower-shop", "store slug")
	flag.StringVar(&cfg.Query, "query", "roses", "catalog search")
	flag.Int64Var(&cfg.Quantity, "quantity", 1, "how many")
	flag.StringVar(&cfg.Ship.StreetAddress, "street", "10 Rue de Rivoli", "shipping address: street")
	flag.StringVar(&cfg.Ship.AddressLocality, "city", "Paris", "shipping address: city")
	flag.StringVar(&cfg.Ship.PostalCode, "postal-code", "75001", "shipping address: postal code")
	flag.StringVar(&cfg.Ship.AddressRegion, "region", "", "shipping address: region or state")
	flag.StringVar(&cfg.Ship.AddressCountry, "country", "FR", "shipping address: country (ISO 3166-1 alpha-2)")
	flag.StringVar(&cfg.TokenFile, "token-file", "", "keep the buyer's tokens in this file between runs (default: memory only)")
	flag.BoolVar(&cfg.KeyOnly, "key-only", false, "no buyer sign-in: the platform key alone gets the hosted payment page")
	flag.Parse()
	cfg.Ship.FirstName, cfg.Ship.LastName = "Ada", "Lovelace"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sdk-checkout:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// openBrowser prints the URL and, when $BROWSER names a program, runs it.
func openBrowser(authURL string) error {
	fmt.Fprintf(os.Stderr, "Sign the buyer in (ada@example.com / ucpbridge-demo) and allow:\n  %s\n", authURL)
	if b := os.Getenv("BROWSER"); b != "" {
		cmd := exec.Command(b, authURL)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { _ = cmd.Wait() }()
	}
	return nil
}

// run is the whole example: sign-in, search, cart, checkout, purchase.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	if cfg.Quantity < 1 {
		return errors.New("quantity must be at least 1")
	}
	key, profileURL, stopProfile, err := serveAgentProfile()
	if err != nil {
		return err
	}
	defer stopProfile()

	var buyer ucpclient.BuyerTokens
	if !cfg.KeyOnly {
		if buyer, err = signIn(ctx, cfg); err != nil {
			return err
		}
	}
	signer, err := ucpclient.NewAp2Signer(key)
	if err != nil {
		return err
	}
	// The same key signs every request (RFC 9421): kyoto-tea completes
	// only signed requests, and the others accept them.
	reqSigner, err := httpsig.NewSigner(key.PrivateKey(), key.KeyID(), nil)
	if err != nil {
		return err
	}
	c, err := ucpclient.New(ucpclient.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, AgentProfile: profileURL, Buyer: buyer,
		Signer: reqSigner, VerifyResponses: ucpclient.VerifyResponsesRequired})
	if err != nil {
		return err
	}

	found, err := c.SearchCatalog(ctx, cfg.Store, &ucp.SearchRequest{Query: cfg.Query})
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	if len(found.Products) == 0 || len(found.Products[0].Variants) == 0 {
		return fmt.Errorf("search: nothing matches %q at %s", cfg.Query, cfg.Store)
	}
	p := found.Products[0]
	v := p.Variants[0]
	fmt.Fprintf(stdout, "found   %s %q at %s\n", v.ID, p.Title, money(v.Price.Amount, v.Price.Currency))

	cart, err := c.CreateCart(ctx, cfg.Store, &ucpclient.CartInput{LineItems: []ucpclient.LineItemInput{ucpclient.Line(v.ID, cfg.Quantity)}})
	if err != nil {
		return fmt.Errorf("cart: %w", err)
	}
	fmt.Fprintf(stdout, "cart    %s\n", cart.ID)

	co, err := c.CreateCheckout(ctx, cfg.Store, &ucpclient.CheckoutInput{CartID: cart.ID,
		// line_item_ids is required by the tool's schema; empty means
		// every line (ucp.FulfillmentMethod sends nil as null).
		Fulfillment: &ucp.Fulfillment{Methods: []ucp.FulfillmentMethod{{Type: "shipping", LineItemIDs: []string{},
			Destinations: []ucp.Destination{{PostalAddress: cfg.Ship}}}}}})
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	fmt.Fprintf(stdout, "checkout %s: %s, %s\n", co.ID, co.Status, money(ucpclient.GrandTotal(co), ucpclient.CurrencyOf(co)))

	o, err := c.ConfirmPurchase(ctx, ucpclient.ConfirmInput{Store: cfg.Store, CheckoutID: co.ID, Signer: signer, PaymentMethod: "artos.card"})
	if err != nil {
		return fmt.Errorf("purchase: %w", err)
	}
	switch o.Kind {
	case ucpclient.OutcomeCompleted:
		total, cur := ucpclient.GrandTotal(co), ucpclient.CurrencyOf(co)
		if o.Checkout != nil {
			total, cur = ucpclient.GrandTotal(o.Checkout), ucpclient.CurrencyOf(o.Checkout)
		}
		fmt.Fprintf(stdout, "order   %s: %s\n", o.Order.ID, money(total, cur))
		return nil
	case ucpclient.OutcomeEscalationRequired:
		fmt.Fprintf(stdout, "pay at  %s\n", o.ContinueURL)
		if cfg.KeyOnly {
			return nil // what -key-only shows
		}
		return fmt.Errorf("purchase: the buyer must finish in a browser: %s", o.Message)
	case ucpclient.OutcomeAllowanceRefused:
		r := o.Refusal
		return fmt.Errorf("purchase: refused by the buyer's spending limit (%s, at most %s): %s", r.Limit, money(r.Max, r.Currency), r.Message)
	default:
		return fmt.Errorf("purchase: %s: %s %s", o.Kind, o.Code, o.Message)
	}
}

// money formats minor units with the currency's own number of decimals
// (ISO 4217): 3500 EUR is "35.00 EUR", 1500 JPY is "1500 JPY".
func money(minor int64, currency string) string {
	return ucp.FormatMinor(minor, currency) + " " + currency
}

// signIn returns the buyer's token source, running the loopback sign-in
// when no saved token is there.
func signIn(ctx context.Context, cfg config) (ucpclient.BuyerTokens, error) {
	var store ucpclient.TokenStore = &ucpclient.MemoryTokenStore{}
	if cfg.TokenFile != "" {
		store = &ucpclient.FileTokenStore{Path: cfg.TokenFile}
	}
	md, err := ucpclient.DiscoverAuthServer(ctx, http.DefaultClient, cfg.BaseURL, "")
	if err != nil {
		return nil, err
	}
	if tok, err := store.Load(ctx); err != nil || tok == nil || tok.RefreshToken == "" {
		wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if _, err := ucpclient.Connect(wait, ucpclient.ConnectOptions{ClientID: cfg.ClientID, Metadata: md,
			Scopes: []string{"purchase:complete", "offline_access"}, OpenBrowser: cfg.OpenBrowser,
			HTTPClient: http.DefaultClient, Store: store}); err != nil {
			return nil, fmt.Errorf("sign-in: %w", err)
		}
	}
	return ucpclient.NewBuyerTokenSource(ctx, md.OAuth2Config(cfg.ClientID, ""), store, nil)
}

// serveAgentProfile makes a fresh signing key and serves the agent's UCP
// profile publishing it on 127.0.0.1, until stop is called.
func serveAgentProfile() (key *mandate.SigningKey, profileURL string, stop func(), err error) {
	if key, err = mandate.GenerateSigningKey(); err != nil {
		return nil, "", nil, err
	}
	jwk, err := json.Marshal(key.PublicJWK())
	if err != nil {
		return nil, "", nil, err
	}
	ent := func(extends ...string) []ucp.Capability {
		return []ucp.Capability{{Entity: ucp.Entity{Version: ucp.Version, Spec: "https://ucp.dev/spec", Schema: "https://ucp.dev/schema.json"},
			Extends: ucp.Extends(extends)}}
	}
	body, err := json.Marshal(&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version,
		Services: map[string][]ucp.Service{ucp.ServiceShopping: {{Entity: ucp.Entity{Version: ucp.Version,
			Spec: "https://ucp.dev/spec", Schema: "https://ucp.dev/mcp.json"}, Transport: "mcp"}}},
		Capabilities: map[string][]ucp.Capability{
			ucp.CapCheckout: ent(), ucp.CapCart: ent(), ucp.CapOrder: ent(),
			ucp.CapCatalogSearch: ent(), ucp.CapCatalogLookup: ent(),
			ucp.CapFulfillment: ent(ucp.CapCheckout), ucp.CapAP2Mandate: ent(ucp.CapCheckout),
		},
		PaymentHandlers: map[string][]ucp.PaymentHandler{}}, SigningKeys: []json.RawMessage{jwk}})
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ucp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return key, "http://" + ln.Addr().String() + "/.well-known/ucp", func() { _ = srv.Close() }, nil
}
