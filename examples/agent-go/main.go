// Command agent-go is an agent built on the official MCP Go SDK
// (github.com/modelcontextprotocol/go-sdk) that shops through the
// ucpbridge bridge: it lists the tools, searches, puts the first match in
// a cart, makes a checkout shipped to an address, and calls
// confirm_purchase, one tool call per step, as an LLM agent would.
//
// Over streamable HTTP (the default, the bridge that `ucpbridge dev`
// serves) the bridge is an OAuth-protected resource: its first answer is
// a 401 naming its RFC 9728 metadata, and the SDK's authorization code
// handler signs the buyer in (PKCE, a loopback redirect, the resource
// parameter) against the platform's authorization server. The buyer's
// token is for the bridge only; the bridge exchanges it for the platform.
// With -stdio the example spawns a bridge command instead (for example
// `ucpbridge bridge --stdio`), which holds the buyer's tokens itself.
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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Defaults match `go run ./cmd/ucpbridge dev`.
const (
	defaultMCPURL   = "http://127.0.0.1:8081/mcp"
	defaultClientID = "demo-agent"
)

// config is what one run needs.
type config struct {
	// MCPURL is the bridge's streamable HTTP endpoint; Command, when set,
	// is a bridge spawned over stdio instead.
	MCPURL  string
	Command []string
	// ClientID is the OAuth client the buyer signs in through over HTTP:
	// a preregistered public client (the demo agent), or "" to register
	// one dynamically (RFC 7591).
	ClientID string

	Store, Query  string
	Quantity      int
	Ship          map[string]string // shipping_address
	PaymentMethod string            // a rail id, e.g. artos.card

	// OpenBrowser shows the buyer the authorization URL; it must not
	// block. Transport, when set, replaces MCPURL and Command (tests).
	OpenBrowser func(authURL string) error
	Transport   mcp.Transport
}

func main() {
	cfg := config{OpenBrowser: openBrowser, Ship: map[string]string{"first_name": "Ada", "last_name": "Lovelace"}}
	var stdio, street, city, postal, region, country string
	flag.StringVar(&cfg.MCPURL, "mcp", envOr("UCPBRIDGE_MCP_URL", defaultMCPURL), "the bridge's MCP endpoint (env UCPBRIDGE_MCP_URL)")
	flag.StringVar(&stdio, "stdio", "", `spawn this bridge command and speak MCP over its stdio, e.g. "ucpbridge bridge --stdio"`)
	flag.StringVar(&cfg.ClientID, "client-id", defaultClientID, `OAuth client the buyer signs in through; "" registers one (RFC 7591)`)
	flag.StringVar(&cfg.Store, "store", "flower-shop", "store slug")
	flag.StringVar(&cfg.Query, "query", "roses", "what to search for")
	flag.IntVar(&cfg.Quantity, "quantity", 1, "how many")
	flag.StringVar(&street, "street", "10 Rue de Rivoli", "shipping address: street")
	flag.StringVar(&city, "city", "Paris", "shipping address: city")
	flag.StringVar(&postal, "postal-code", "75001", "shipping address: postal code")
	flag.StringVar(&region, "region", "", "shipping address: region or state")
	flag.StringVar(&country, "country", "FR", "shipping address: country (ISO 3166-1 alpha-2)")
	flag.StringVar(&cfg.PaymentMethod, "payment-method", "artos.card", "payment rail")
	flag.Parse()
	cfg.Command = strings.Fields(stdio)
	for k, v := range map[string]string{"street_address": street, "address_locality": city, "postal_code": postal,
		"address_region": region, "address_country": country} {
		if v != "" {
			cfg.Ship[k] = v
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent-go:", err)
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

// run connects to the bridge and shops.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	transport := cfg.Transport
	if transport == nil {
		var stop func()
		var err error
		if transport, stop, err = dial(ctx, cfg); err != nil {
			return err
		}
		defer stop()
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "ucpbridge-agent-go", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, transport, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cs.Close()

	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	var names []string
	for _, t := range list.Tools {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	fmt.Fprintf(stdout, "tools    %d: %s\n", len(names), strings.Join(names, " "))
	for _, need := range []string{"search_products", "create_cart", "create_checkout", "confirm_purchase"} {
		if !slices.Contains(names, need) {
			return fmt.Errorf("the bridge has no %s tool", need)
		}
	}

	// Over stdio the bridge holds the buyer's tokens itself: connect the
	// buyer's account first when it is not (the bridge prints the sign-in
	// URL on its stderr and waits). Over HTTP this client signed in.
	if slices.Contains(names, "connect_account") {
		var st struct {
			BuyerConnected bool `json:"buyer_connected"`
		}
		if err := call(ctx, cs, "get_connection_status", map[string]any{}, &st); err != nil {
			return err
		}
		if !st.BuyerConnected {
			var c struct {
				Scope string `json:"scope"`
			}
			if err := call(ctx, cs, "connect_account", map[string]any{}, &c); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "account  connected (%s)\n", c.Scope)
		}
	}

	var found struct {
		Products []struct {
			ID       string `json:"id"`
			Title    string `json:"title"`
			Variants []struct {
				ID    string `json:"id"`
				Price struct {
					Amount   int64  `json:"amount"`
					Currency string `json:"currency"`
				} `json:"price"`
			} `json:"variants"`
		} `json:"products"`
	}
	if err := call(ctx, cs, "search_products", map[string]any{"query": cfg.Query, "store_slug": cfg.Store}, &found); err != nil {
		return err
	}
	if len(found.Products) == 0 || len(found.Products[0].Variants) == 0 {
		return fmt.Errorf("search_products: nothing matches %q at %s", cfg.Query, cfg.Store)
	}
	p, v := found.Products[0], found.Products[0].Variants[0]
	fmt.Fprintf(stdout, "found    %s %q (%d %s in minor units)\n", v.ID, p.Title, v.Price.Amount, v.Price.Currency)

	var cart struct {
		ID string `json:"id"`
	}
	items := []map[string]any{{"id": v.ID, "quantity": cfg.Quantity}}
	if err := call(ctx, cs, "create_cart", map[string]any{"store_slug": cfg.Store, "items": items}, &cart); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cart     %s\n", cart.ID)

	var co struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := call(ctx, cs, "create_checkout", map[string]any{"store_slug": cfg.Store, "cart_id": cart.ID,
		"shipping_address": cfg.Ship}, &co); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checkout %s: %s\n", co.ID, co.Status)

	var pr struct {
		Outcome      string `json:"outcome"`
		OrderID      string `json:"order_id"`
		Total        int64  `json:"total"`
		Currency     string `json:"currency"`
		TotalDisplay string `json:"total_display"`
		NextStep     string `json:"next_step"`
		Message      string `json:"message"`
	}
	err = call(ctx, cs, "confirm_purchase", map[string]any{"store_slug": cfg.Store, "checkout_id": co.ID,
		"payment_method": cfg.PaymentMethod}, &pr)
	var te *toolError
	switch {
	case err == nil && pr.Outcome == "completed":
		fmt.Fprintf(stdout, "order    %s: %s\n", pr.OrderID, pr.TotalDisplay)
		return nil
	case errors.As(err, &te) && te.outcome != "":
		// The bridge says what happened and what to ask the buyer next.
		return fmt.Errorf("confirm_purchase: %s: %s", te.outcome, te.text)
	case err != nil:
		return err
	}
	return fmt.Errorf("confirm_purchase: %s: %s %s", pr.Outcome, pr.Message, pr.NextStep)
}

// toolError is a tool result with isError set: the text is the bridge's
// explanation for the agent.
type toolError struct {
	tool, text, outcome string
}

func (e *toolError) Error() string { return e.tool + ": " + e.text }

// call calls a tool and decodes its structured content into out.
func call(ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any, out any) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if res.IsError {
		var sb strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				sb.WriteString(tc.Text)
			}
		}
		var o struct {
			Outcome string `json:"outcome"`
		}
		_ = json.Unmarshal(b, &o)
		return &toolError{tool: name, text: sb.String(), outcome: o.Outcome}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: structured content: %w", name, err)
	}
	return nil
}

// dial returns the transport to the bridge: a spawned stdio command, or
// streamable HTTP with the SDK's OAuth handler signing the buyer in.
func dial(ctx context.Context, cfg config) (mcp.Transport, func(), error) {
	if len(cfg.Command) > 0 {
		cmd := exec.CommandContext(ctx, cfg.Command[0], cfg.Command[1:]...)
		cmd.Stderr = os.Stderr
		return &mcp.CommandTransport{Command: cmd}, func() {}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	codes := make(chan *auth.AuthorizationResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if e := q.Get("error"); e != "" {
			http.Error(w, "sign-in refused: "+e, http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "Signed in. You can close this window.")
		}
		select {
		case codes <- &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() { _ = srv.Close() }

	redirect := "http://" + ln.Addr().String() + "/callback"
	ac := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL:         redirect,
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			if err := cfg.OpenBrowser(args.URL); err != nil {
				return nil, err
			}
			wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			select {
			case r := <-codes:
				if r.Code == "" {
					return nil, errors.New("the buyer did not allow the agent")
				}
				return r, nil
			case <-wait.Done():
				return nil, fmt.Errorf("waiting for the sign-in: %w", wait.Err())
			}
		},
	}
	if cfg.ClientID != "" {
		ac.PreregisteredClient = &oauthex.ClientCredentials{ClientID: cfg.ClientID}
	} else {
		// RFC 7591: a public native client with this loopback redirect,
		// as mcp-remote and desktop agents register themselves.
		ac.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "ucpbridge agent-go example", RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}}}
	}
	oauth, err := auth.NewAuthorizationCodeHandler(ac)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &mcp.StreamableClientTransport{Endpoint: cfg.MCPURL, OAuthHandler: oauth}, stop, nil
}
