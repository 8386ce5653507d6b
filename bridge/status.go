package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// ConnectionStatus is get_connection_status's structured content.
type ConnectionStatus struct {
	// PlatformKey reports whether the bridge holds a platform API key
	// (catalog, carts and checkouts work without the buyer).
	PlatformKey bool `json:"platform_key"`
	// BuyerConnected reports whether this request carries the buyer's
	// account (needed for account tools, crypto, the saved card).
	BuyerConnected bool   `json:"buyer_connected"`
	Transport      string `json:"transport"`
	HowToConnect   string `json:"how_to_connect,omitempty"`
	// Buyer is the connected buyer's context (profile and the spending
	// caps this agent has), when it could be read.
	Buyer      *ucpclient.BuyerContext `json:"buyer,omitempty"`
	BuyerError string                  `json:"buyer_error,omitempty"`
}

func (b *Bridge) statusTools() {
	b.add(newTool("get_connection_status", "Connection status",
		"Who is connected: whether the bridge holds the platform key, whether the buyer's account is connected for this session "+
			"(and then the buyer's spending caps for this agent), and how to connect when it is not. Call it first when unsure.",
		object(obj{}),
		openObject(obj{"platform_key": obj{"type": "boolean"}, "buyer_connected": obj{"type": "boolean"},
			"transport": obj{"type": "string", "enum": []string{"stdio", "http"}}, "how_to_connect": obj{"type": "string"},
			"buyer": obj{"type": "object"}, "buyer_error": obj{"type": "string"}}, "platform_key", "buyer_connected", "transport"),
		annotations("Connection status", true, false, true, true)),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			st := &ConnectionStatus{PlatformKey: b.cfg.APIKey != "", Transport: "http"}
			if isStdio(ctx) {
				st.Transport = "stdio"
			}
			if buyer := b.buyer(ctx); buyer != nil {
				st.BuyerConnected = true
				bc, err := b.c.WithBuyer(buyer).GetBuyerContext(ctx)
				if err != nil {
					te := b.toolError(ctx, "get_buyer_context", err)
					st.BuyerError = te.Message
					if te.Code == "sign_in_required" {
						st.HowToConnect = te.NextStep
					}
				} else {
					st.Buyer = bc
				}
			} else {
				st.HowToConnect = connectHint(ctx)
			}
			summary := "Buyer account not connected."
			if st.BuyerConnected {
				summary = "Buyer account connected."
			}
			return structResult(st, summary)
		})

	b.add(newTool("connect_account", "Connect the buyer's account",
		"Sign the buyer in (stdio only): opens the platform's sign-in page in the browser (the URL is also printed), where the buyer signs in "+
			"and sets this agent's spending allowance. Waits until they finish, then stores the tokens so later runs stay connected. "+
			"After it, account tools (get_buyer_context, list_my_orders, …), crypto payments and the saved card work.",
		object(obj{}),
		openObject(obj{"connected": obj{"type": "boolean"}, "scope": obj{"type": "string"}}, "connected"),
		annotations("Connect the buyer's account", false, false, true, true)),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if !isStdio(ctx) {
				return nil, badInput("connect_account works over stdio only; over HTTP your MCP client signs the buyer in (reconnect the server)")
			}
			scope, err := b.connect(ctx)
			if err != nil {
				return nil, err
			}
			b.discoverAccountTools(ctx, true)
			return structResult(map[string]any{"connected": true, "scope": scope},
				"The buyer's account is connected. Account tools are now listed (tools/list).")
		})
}

// connect runs the loopback PKCE sign-in and installs the buyer.
func (b *Bridge) connect(ctx context.Context) (string, error) {
	if b.cfg.ClientID == "" || b.cfg.TokenFile == "" {
		return "", badInput("this bridge has no OAuth client id or token file configured, so it cannot sign the buyer in")
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	store := &ucpclient.FileTokenStore{Path: b.cfg.TokenFile}
	open := b.cfg.OpenBrowser
	if open == nil {
		open = func(u string) error {
			// stdout carries MCP: the URL goes to stderr.
			fmt.Fprintf(os.Stderr, "ucpbridge: open this URL to connect the buyer's account:\n%s\n", u)
			return nil
		}
	}
	tok, err := ucpclient.Connect(ctx, ucpclient.ConnectOptions{ClientID: b.cfg.ClientID, Issuer: b.cfg.PlatformURL,
		Scopes: b.cfg.Scopes, OpenBrowser: open, HTTPClient: b.cfg.HTTPClient, AllowLoopback: b.platformLoopback(), Store: store})
	if err != nil {
		var ce *ucpclient.ConnectError
		if errors.As(err, &ce) {
			return "", &ucpclient.AuthChallengeError{Op: "connect_account", Challenge: &ucpclient.Challenge{Error: ce.Code, ErrorDescription: ce.Description}}
		}
		return "", err
	}
	if err := b.loadStdioBuyer(ctx); err != nil {
		return "", err
	}
	scope, _ := tok.Extra("scope").(string)
	return scope, nil
}

func (b *Bridge) platformLoopback() bool {
	u, err := url.Parse(b.cfg.PlatformURL)
	return err == nil && netguard.IsLoopbackHost(u.Hostname())
}

// loadStdioBuyer installs the buyer stored in TokenFile (a source that
// refreshes on expiry and saves every rotation). No file is no buyer.
func (b *Bridge) loadStdioBuyer(ctx context.Context) error {
	if b.cfg.TokenFile == "" || b.cfg.ClientID == "" {
		return nil
	}
	hc := b.cfg.HTTPClient
	if hc == nil {
		hc = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: b.platformLoopback()})
	}
	md, err := ucpclient.DiscoverAuthServer(ctx, hc, b.cfg.PlatformURL, "")
	if err != nil {
		return err
	}
	src, err := ucpclient.NewBuyerTokenSource(ctx, md.OAuth2Config(b.cfg.ClientID, "", b.cfg.Scopes...),
		&ucpclient.FileTokenStore{Path: b.cfg.TokenFile}, &ucpclient.BuyerTokenOptions{HTTPClient: hc})
	if errors.Is(err, ucpclient.ErrNoStoredToken) {
		return nil
	}
	if err != nil {
		return err
	}
	b.stdioMu.Lock()
	b.stdioBuyer = src
	b.stdioMu.Unlock()
	return nil
}
