package ucpclient

import (
	"fmt"
	"strings"
)

// BuyerRequiredError is returned, before any network I/O, when an
// operation the routing table binds to the buyer (crypto payment, the
// account tools, the coupon attach) is called on a Client without a Buyer.
type BuyerRequiredError struct {
	// Op names the operation, e.g. "store.complete_checkout".
	Op string
}

func (e *BuyerRequiredError) Error() string {
	return "ucpclient: " + e.Op + " needs a buyer token (Config.Buyer is nil)"
}

// AuthChallengeError is a 401 answered with a WWW-Authenticate challenge
// that the client could not satisfy by refreshing the buyer token.
type AuthChallengeError struct {
	// Op names the operation that was refused.
	Op string
	// Challenge is the parsed WWW-Authenticate header (never nil).
	Challenge *Challenge
	// Err is the error Config.OnAuthChallenge returned, if any.
	Err error
}

func (e *AuthChallengeError) Error() string {
	var b strings.Builder
	b.WriteString("ucpclient: ")
	b.WriteString(e.Op)
	b.WriteString(": 401 unauthorized")
	if c := e.Challenge; c != nil {
		if c.Error != "" {
			b.WriteString(" (" + c.Error)
			if c.ErrorDescription != "" {
				b.WriteString(": " + c.ErrorDescription)
			}
			b.WriteString(")")
		}
		if c.ResourceMetadata != "" {
			b.WriteString("; resource metadata at " + c.ResourceMetadata)
		}
	}
	if e.Err != nil {
		b.WriteString("; challenge hook: " + e.Err.Error())
	}
	return b.String()
}

func (e *AuthChallengeError) Unwrap() error { return e.Err }

// ProtocolError is a refusal the server answered: a non-2xx HTTP status,
// a JSON-RPC error, or a malformed response. UCP business errors inside
// structuredContent (ucp.status "error") are results, not ProtocolErrors,
// except on GlobalSearch (REST), which reports them here as Artos does.
type ProtocolError struct {
	Op string
	// StatusCode is the HTTP status (200 for a JSON-RPC error).
	StatusCode int
	// RPCCode and RPCMessage are the JSON-RPC error, when there was one.
	RPCCode    int
	RPCMessage string
	// Code and Content are the first UCP message (or OAuth error) found
	// in the body, when there was one.
	Code    string
	Content string
	// RequestID is the Request-Id of the last attempt.
	RequestID string
	// Body is the response body (capped), for diagnosis.
	Body []byte
}

func (e *ProtocolError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ucpclient: %s: ", e.Op)
	switch {
	case e.RPCCode != 0:
		fmt.Fprintf(&b, "JSON-RPC error %d", e.RPCCode)
		if e.RPCMessage != "" {
			b.WriteString(": " + e.RPCMessage)
		}
	default:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(" [" + e.Code + "]")
	}
	if e.Content != "" && e.Content != e.RPCMessage {
		b.WriteString(" " + e.Content)
	}
	return b.String()
}
