package bridge

import (
	"context"
	"encoding/json"
	"regexp"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// accountTools is the cache of the buyer account tools discovered from
// the platform's /account/mcp (Artos re-exposes them so that new account
// tools appear without a bridge release).
type accountTools struct {
	ttl     time.Duration
	mu      sync.Mutex // held while listing: one discovery at a time
	fetched time.Time
	names   map[string]bool // discovered tools now registered
}

// toolName is what a re-exposed tool may be called (MCP's recommended
// charset; anything else is skipped rather than trusted).
var toolName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// discoverAccountTools lists the account tools with the request's buyer
// token when the cached list is older than the TTL (or force), and
// registers what changed: added tools, removed tools. mcp-go then
// notifies clients that the tool list changed, and the tools are on the
// next tools/list. Without a buyer it does nothing: the list needs the
// buyer's bearer, and the bridge never lists them with the platform key.
func (b *Bridge) discoverAccountTools(ctx context.Context, force bool) {
	buyer := b.buyer(ctx)
	if buyer == nil {
		return
	}
	a := &b.account
	if !a.mu.TryLock() {
		return // another request is listing; serve the current list
	}
	defer a.mu.Unlock()
	if !force && !a.fetched.IsZero() && time.Since(a.fetched) < a.ttl {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tools, err := b.c.WithBuyer(buyer).ListAccountTools(lctx)
	if err != nil {
		b.log.Warn("bridge: account tools not listed", "err", err)
		return
	}
	a.fetched = time.Now()
	seen := map[string]bool{}
	var add []server.ServerTool
	for _, t := range tools {
		if !toolName.MatchString(t.Name) || b.static[t.Name] || seen[t.Name] {
			continue
		}
		seen[t.Name] = true
		add = append(add, server.ServerTool{Tool: accountTool(t), Handler: b.accountHandler(t.Name)})
	}
	var gone []string
	for n := range a.names {
		if !seen[n] {
			gone = append(gone, n)
		}
	}
	if len(gone) > 0 {
		b.srv.DeleteTools(gone...)
	}
	if len(add) > 0 && !b.addTools(add) {
		return
	}
	a.names = seen
}

// addTools registers tools, refusing (not crashing on) a definition
// mcp-go rejects.
func (b *Bridge) addTools(tools []server.ServerTool) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Warn("bridge: account tool definitions refused", "err", r)
			ok = false
		}
	}()
	b.srv.AddTools(tools...)
	return true
}

// accountTool is the re-exposed definition: the account server's name,
// schemas and annotations, described as needing the buyer's account.
func accountTool(t ucpclient.Tool) mcp.Tool {
	in := t.InputSchema
	if len(in) == 0 || !json.Valid(in) {
		in = json.RawMessage(`{"type":"object"}`)
	}
	tool := mcp.Tool{Name: t.Name, Title: t.Title, RawInputSchema: in,
		Description: t.Description + " (Buyer account tool: needs the buyer's connected account.)"}
	if len(t.OutputSchema) > 0 && json.Valid(t.OutputSchema) {
		tool.RawOutputSchema = t.OutputSchema
	}
	if len(t.Annotations) > 0 {
		_ = json.Unmarshal(t.Annotations, &tool.Annotations)
	}
	return tool
}

func (b *Bridge) accountHandler(name string) server.ToolHandlerFunc {
	return b.handle(name, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return b.proxyAccountTool(ctx, name, req.GetArguments())
	})
}

// proxyAccountTool calls an account tool with the buyer's bearer only;
// without a buyer it is a tool error that says how to connect.
func (b *Bridge) proxyAccountTool(ctx context.Context, name string, args map[string]any) (*mcp.CallToolResult, error) {
	buyer := b.buyer(ctx)
	if buyer == nil {
		return nil, &ucpclient.BuyerRequiredError{Op: "account." + name}
	}
	if args == nil {
		args = map[string]any{}
	}
	raw, err := b.c.WithBuyer(buyer).CallAccountTool(ctx, name, args)
	if err != nil {
		return nil, err
	}
	if err := ucpEnvelopeError("account."+name, raw, false); err != nil {
		return nil, err
	}
	return rawResult(raw, ""), nil
}
