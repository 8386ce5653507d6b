package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// ToolError is the structured content of every expected tool failure
// (isError results): a stable code, a sentence for the model, what to do
// next, and the business's UCP messages when it sent some.
type ToolError struct {
	Code        string        `json:"code"`
	Message     string        `json:"message"`
	NextStep    string        `json:"next_step,omitempty"`
	Messages    []ucp.Message `json:"messages,omitempty"`
	ContinueURL string        `json:"continue_url,omitempty"`
}

// inputError is bad tool input found by the bridge (beyond the schema).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(msg string) error { return &inputError{msg: msg} }

// connectHint says how the buyer connects on this transport.
func connectHint(ctx context.Context) string {
	if isStdio(ctx) {
		return "Call connect_account: the buyer signs in once in the browser (and sets a spending allowance), then retry this tool."
	}
	return "The buyer must sign in: reconnect this MCP server in your client so it runs the OAuth sign-in (and the buyer sets a spending allowance), then retry this tool."
}

// errorResult turns an error into a tool error. Expected failures keep
// their code and text; anything else is logged and reported without
// internals.
func (b *Bridge) errorResult(ctx context.Context, tool string, err error) *mcp.CallToolResult {
	te := b.toolError(ctx, tool, err)
	return toolErrorResult(te)
}

func toolErrorResult(te *ToolError) *mcp.CallToolResult {
	text := te.Message
	if te.NextStep != "" {
		text += "\nNext: " + te.NextStep
	}
	for _, m := range te.Messages {
		if m.Content != "" && !strings.Contains(text, m.Content) {
			text += "\n- " + m.Content
		}
	}
	if te.ContinueURL != "" {
		text += "\nContinue at: " + te.ContinueURL
	}
	res := mcp.NewToolResultError(text)
	res.StructuredContent = te
	return res
}

func (b *Bridge) toolError(ctx context.Context, tool string, err error) *ToolError {
	var (
		in  *inputError
		br  *ucpclient.BuyerRequiredError
		ac  *ucpclient.AuthChallengeError
		ue  *ucpclient.UCPError
		pe  *ucpclient.ProtocolError
		de  *discovery.Error
		ae  *ucp.AmountError
		rse *ucpclient.ResponseSignatureError
		re  *ucpclient.RefreshError
	)
	switch {
	case errors.As(err, &in):
		return &ToolError{Code: "invalid_input", Message: in.msg, NextStep: "Fix the arguments and call the tool again."}
	case errors.As(err, &ae):
		return &ToolError{Code: "invalid_amount", Message: "Invalid amount: " + ae.Reason,
			NextStep: "Give the amount in major units of the currency, as a plain decimal."}
	case errors.As(err, &br), errors.Is(err, ucpclient.ErrNoStoredToken):
		return &ToolError{Code: "buyer_not_connected", Message: tool + " acts for the buyer, and no buyer account is connected.",
			NextStep: connectHint(ctx)}
	case errors.As(err, &re):
		if re.SignInRequired() {
			return &ToolError{Code: "sign_in_required", Message: "The buyer's sign-in has expired or was revoked.", NextStep: connectHint(ctx)}
		}
		b.log.Warn("bridge: buyer token refresh failed", "tool", tool, "err", err)
		return &ToolError{Code: "token_refresh_failed", Message: "The buyer's token could not be refreshed right now.", NextStep: "Retry in a moment."}
	case errors.As(err, &ac):
		code := "sign_in_required"
		if ac.Challenge != nil && ac.Challenge.Error == "insufficient_scope" {
			code = "insufficient_scope"
		}
		return &ToolError{Code: code, Message: "The platform refused the buyer's credentials for " + tool + ".", NextStep: connectHint(ctx)}
	case errors.As(err, &ue):
		te := &ToolError{Code: orDefault(ue.Code(), "ucp_error"), Message: "The store refused " + tool + ".",
			Messages: ue.Messages, ContinueURL: ue.ContinueURL}
		te.NextStep = nextStepForCode(te.Code, ue.ContinueURL)
		return te
	case errors.As(err, &rse):
		b.log.Warn("bridge: response signature refused", "tool", tool, "err", err)
		return &ToolError{Code: "response_signature_invalid", Message: "The store's response did not carry a valid signature, so it was discarded."}
	case errors.As(err, &de):
		return &ToolError{Code: de.Code, Message: "The business at business_url could not be used: " + de.Code + orDefault(prefix(": ", de.Content), ""),
			NextStep: "Check business_url: it must be the business's UCP profile (…/.well-known/ucp) of UCP 2026-04-08."}
	case errors.Is(err, ucpclient.ErrNoREST):
		return &ToolError{Code: "business_no_rest", Message: "The business's profile offers no REST binding of dev.ucp.shopping."}
	case errors.As(err, &pe):
		te := &ToolError{Code: orDefault(pe.Code, "upstream_error"), Message: "The platform refused " + tool + "."}
		if pe.Content != "" {
			te.Message += " " + pe.Content
		}
		switch {
		case pe.StatusCode == 404:
			te.Code = orDefault(pe.Code, "not_found")
			te.NextStep = "Check the store_slug and the id."
		case pe.StatusCode == 403:
			te.NextStep = "This credential may not do that."
		case pe.StatusCode >= 500:
			te.NextStep = "Retry in a moment."
		}
		b.log.Info("bridge: upstream refusal", "tool", tool, "status", pe.StatusCode, "code", pe.Code, "request_id", pe.RequestID)
		return te
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		next := "Read the checkout again (view_checkout) before retrying a purchase."
		if tool == "connect_account" {
			next = "The buyer did not finish signing in in time; call connect_account again."
		}
		return &ToolError{Code: "timeout", Message: tool + " did not finish in time.", NextStep: next}
	}
	b.log.Error("bridge: tool failed", "tool", tool, "err", err)
	return &ToolError{Code: "internal_error", Message: tool + " failed on the bridge's side.", NextStep: "Retry once; if it fails again, tell the buyer."}
}

func nextStepForCode(code, continueURL string) string {
	switch code {
	case "not_found":
		return "Check the id (and store_slug); it may have expired."
	case "out_of_stock", "item_unavailable":
		return "Pick another variant or quantity (view_product)."
	case "invalid_input", "invalid_request", "missing":
		return "Fix the arguments the messages point at and call again."
	}
	if continueURL != "" {
		return "Give the buyer the continue URL to finish in the browser."
	}
	return ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// rawResult is a successful tool result: raw is the structured content
// (a UCP object as the business sent it), summary a line for the model.
func rawResult(raw json.RawMessage, summary string) *mcp.CallToolResult {
	text := string(raw)
	if summary != "" {
		text = summary + "\n" + text
	}
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(text)}, StructuredContent: raw}
}

// structResult marshals v as the structured content.
func structResult(v any, summary string) (*mcp.CallToolResult, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return rawResult(raw, summary), nil
}

// ucpEnvelopeError reports a UCP error envelope in a result: ucp.status
// "error", or (requireID) a resource result without an id that carries
// messages.
func ucpEnvelopeError(op string, raw json.RawMessage, requireID bool) error {
	var v struct {
		UCP struct {
			Status string `json:"status"`
		} `json:"ucp"`
		ID          *string       `json:"id"`
		Messages    []ucp.Message `json:"messages"`
		ContinueURL string        `json:"continue_url"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return &ucpclient.ProtocolError{Op: op, StatusCode: 200, Content: "the result is not a JSON object"}
	}
	if v.UCP.Status == ucp.StatusError || requireID && (v.ID == nil || *v.ID == "") {
		return &ucpclient.UCPError{Op: op, Messages: v.Messages, ContinueURL: v.ContinueURL, Body: raw}
	}
	return nil
}
