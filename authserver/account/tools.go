package account

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
)

// ToolError is a refusal the agent or the buyer can act on (an unknown
// order, a raise that needs the consent page, a bad cursor). It is
// answered as a tool result with isError, whose text is "code: message".
type ToolError struct {
	Code    string
	Message string
}

func (e *ToolError) Error() string { return e.Code + ": " + e.Message }

// Tool error codes.
const (
	CodeInvalidArgument = "invalid_argument"
	CodeNotFound        = "not_found"
	// CodeNoAllowance: the agent has no spending allowance to change.
	CodeNoAllowance = "no_allowance"
	// CodeRaiseNeedsConsent: a limit would go up; only the consent page,
	// where the buyer signs in, raises one.
	CodeRaiseNeedsConsent = "raise_needs_consent"
)

func invalidArgument(msg string) *ToolError {
	return &ToolError{Code: CodeInvalidArgument, Message: msg}
}

// hints are a tool's annotations. Every tool works on the buyer's own
// account on this platform, so none reaches an open world.
type hints struct {
	readOnly, destructive, idempotent bool
}

var reads = hints{readOnly: true, idempotent: true}

// toolDef is one tool: its operation in the guard's table, what it says
// about itself, and its exact schemas (schemas.go).
type toolDef struct {
	op          guard.Operation
	title       string
	description string
	input       string
	output      string
	hints       hints
}

func (d toolDef) tool() mcp.Tool {
	t := mcp.NewToolWithRawSchema(string(d.op), d.description, json.RawMessage(d.input))
	for _, o := range []mcp.ToolOption{
		mcp.WithToolTitle(d.title),
		mcp.WithRawOutputSchema(json.RawMessage(d.output)),
		mcp.WithReadOnlyHintAnnotation(d.hints.readOnly),
		mcp.WithDestructiveHintAnnotation(d.hints.destructive),
		mcp.WithIdempotentHintAnnotation(d.hints.idempotent),
		mcp.WithOpenWorldHintAnnotation(false),
	} {
		o(&t)
	}
	return t
}

// toolFunc runs one tool for the buyer p. A *ToolError is the agent's to
// act on; any other error is a failure of the platform.
type toolFunc[In, Out any] func(ctx context.Context, p *guard.Principal, in *In) (*Out, error)

// addTool registers fn under d: the guard decides the operation for the
// request's principal, the arguments are decoded strictly (after mcp-go
// has checked them against d.input), and the result is the structured
// content d.output describes, with its JSON as the text mirror.
func addTool[In, Out any](s *Server, srv *server.MCPServer, d toolDef, fn toolFunc[In, Out]) {
	srv.AddTool(d.tool(), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c := callFrom(ctx)
		if c == nil || c.principal == nil {
			// Only serveMCP reaches the tools, and it always sets
			// the call; refuse rather than run for nobody.
			return s.fail(c, &rpcwire.Error{Status: http.StatusUnauthorized, RPCCode: rpcRefused, Code: "identity_required",
				Content: "no buyer identified"})
		}
		if err := guard.Authorize(c.principal, d.op, ""); err != nil {
			return s.fail(c, s.refusal(err))
		}
		var in In
		if err := decodeArgs(req, &in); err != nil {
			return toolError(invalidArgument("arguments: " + err.Error())), nil
		}
		out, err := fn(ctx, c.principal, &in)
		var te *ToolError
		switch {
		case errors.As(err, &te):
			return toolError(te), nil
		case err != nil:
			s.log.ErrorContext(ctx, "account: tool failed", "tool", d.op, "err", err)
			return s.fail(c, unavailable())
		}
		text, err := json.Marshal(out)
		if err != nil {
			s.log.ErrorContext(ctx, "account: encode result", "tool", d.op, "err", err)
			return s.fail(c, unavailable())
		}
		return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(string(text))},
			StructuredContent: out}, nil
	})
}

// fail records a protocol error for serveMCP to answer with, and returns
// it to mcp-go, which answers with a generic error first.
func (s *Server) fail(c *call, e *rpcwire.Error) (*mcp.CallToolResult, error) {
	if c != nil {
		c.err = e
	}
	return nil, e
}

func toolError(e *ToolError) *mcp.CallToolResult {
	return mcp.NewToolResultError(e.Error())
}

// decodeArgs decodes the call's arguments into v, refusing members v does
// not have (the schemas say additionalProperties: false, and this holds
// even if a schema and its struct ever drift apart).
func decodeArgs(req mcp.CallToolRequest, v any) error {
	var raw []byte
	switch a := req.GetRawArguments().(type) {
	case nil:
		raw = []byte("{}")
	case json.RawMessage:
		raw = a
	default:
		b, err := json.Marshal(a)
		if err != nil {
			return errors.New("not JSON")
		}
		raw = b
	}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// addTools registers the account tools.
func (s *Server) addTools(srv *server.MCPServer) {
	addTool(s, srv, toolDef{op: guard.OpGetBuyerContext, title: "Buyer context", hints: reads,
		input: noInput, output: buyerContextSchema,
		description: "Who you are shopping for, and what you may spend: the buyer's profile, default shipping address, " +
			"the labels of their other saved addresses, their saved card (brand and last four digits), and your own " +
			"authorization: hasAgentAuthorization and spendingCaps (maxPerOrderAmount, dailyCapAmount, spentTodayAmount " +
			"including payments in flight, remainingTodayAmount, currency, expiresAt). Amounts are integer minor units; " +
			"the day is the calendar day in UTC. Call this first, before shopping."}, s.buyerContext)
	addTool(s, srv, toolDef{op: guard.OpListMyAddresses, title: "Saved addresses", hints: reads,
		input: noInput, output: addressesSchema,
		description: "The buyer's address book: each address with its label and whether it is the default. " +
			"Addresses are UCP postal addresses, ready for a checkout's fulfillment destination."}, s.listAddresses)
	addTool(s, srv, toolDef{op: guard.OpListMyOrders, title: "My orders", hints: reads,
		input: listOrdersInput, output: orderListSchema,
		description: "The buyer's orders at every store, newest first: store, order id, when, total (integer minor units) " +
			"and items. Pages of limit orders (1-50, default 20); pass next_cursor back as cursor for the next page. " +
			"orderRef names an order for get_my_order."}, s.listOrders)
	addTool(s, srv, toolDef{op: guard.OpGetMyOrder, title: "One of my orders", hints: reads,
		input: getOrderInput, output: orderDetailSchema,
		description: "One of the buyer's orders with its items, totals, shipping address and fulfillment (tracking) events. " +
			"order_id is the orderRef from list_my_orders (\"store/order id\") or the bare order id."}, s.getOrder)
	addTool(s, srv, toolDef{op: guard.OpListMyAgentAuthorizations, title: "Authorized agents", hints: reads,
		input: noInput, output: authorizationsSchema,
		description: "Every agent the buyer authorized: its client id and name, the scopes it holds, its spending caps " +
			"with today's spend, and whether it is you (isCaller)."}, s.listAuthorizations)
	addTool(s, srv, toolDef{op: guard.OpRevokeAgentAuthorization, title: "Revoke an agent",
		hints: hints{destructive: true, idempotent: true}, input: revokeInput, output: revokeSchema,
		description: "End an agent's authorization: its spending allowance is removed and every token the buyer gave it " +
			"is revoked at once. Revoking yourself (your own client_id) ends this session: your next call is refused. " +
			"Authorizing the agent again needs the buyer on the consent page."}, s.revoke)
	// Lowering narrows what an agent may do and deletes nothing (the
	// consent page restores any limit), so it is not marked destructive;
	// setting the same limits twice changes nothing the second time.
	addTool(s, srv, toolDef{op: guard.OpUpdateSpendingLimits, title: "Lower an agent's spending limits",
		hints: hints{idempotent: true}, input: updateLimitsInput, output: limitsSchema,
		description: "Lower an agent's spending limits: max_per_order_amount and daily_cap_amount (integer minor units of " +
			"the allowance's currency) and expires_at (RFC 3339, no later than the current expiry). Omitted limits stay as they are. " +
			"Limits can only go down here: raising one needs the buyer on the consent page. To stop an agent spending " +
			"altogether, revoke it."}, s.updateLimits)
}
