package oauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	// IssuedTokenType is set by token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string          `json:"issued_token_type,omitempty"`
	TokenType       string          `json:"token_type"`
	ExpiresIn       int64           `json:"expires_in"`
	RefreshToken    string          `json:"refresh_token,omitempty"`
	Scope           string          `json:"scope"`
	Allowance       json.RawMessage `json:"allowance,omitempty"`
}

// handleToken parses and authenticates, then dispatches on grant_type.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.writeError(w, r, errInvalidRequest("the token endpoint takes application/x-www-form-urlencoded"))
		return
	}
	if err := parseForm(r); err != nil {
		s.writeError(w, r, errInvalidRequest("malformed form body"))
		return
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			s.writeError(w, r, errInvalidRequest("parameter "+quoteShort(k)+" is repeated"))
			return
		}
	}
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	grant := r.PostForm.Get("grant_type")
	if (grant == "authorization_code" || grant == "client_credentials" || grant == "refresh_token") && !c.allows(grant) {
		s.writeError(w, r, errUnauthorizedClient("this client may not use "+grant))
		return
	}
	var (
		resp *tokenResponse
		err  *oauthError
	)
	switch grant {
	case "authorization_code":
		resp, err = s.grantCode(r, c)
	case "refresh_token":
		resp, err = s.grantRefresh(r, c)
	case "client_credentials":
		resp, err = s.grantClientCredentials(r, c)
	case "password":
		resp, err = s.grantPassword(r, c)
	case GrantTypeTokenExchange:
		resp, err = s.grantTokenExchange(r, c)
	case "":
		err = errInvalidRequest("grant_type is required")
	default:
		err = errUnsupportedGrant("grant_type " + quoteShort(grant) + " is not supported")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Metrics.TokenIssued(grant)
	writeJSON(w, http.StatusOK, resp)
}

// mint builds the tokens of one response for grant g. accessScope may be
// narrower than the grant's.
func (s *Server) mint(g *store.Grant, accessScope string, withRefresh bool, now time.Time) (store.Issue, *tokenResponse) {
	at := newToken(prefixAccess)
	iss := store.Issue{Access: &store.AccessToken{Hash: hashToken(at), GrantID: g.ID, ClientID: g.ClientID, BuyerID: g.BuyerID,
		Scope: accessScope, Resource: g.Resource, ExpiresAt: now.Add(s.cfg.AccessTokenTTL)}}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTokenTTL / time.Second),
		Scope: accessScope, Allowance: g.Allowance}
	if withRefresh {
		rt := newToken(prefixRefresh)
		iss.Refresh = &store.RefreshToken{Hash: hashToken(rt), GrantID: g.ID, ExpiresAt: g.ExpiresAt}
		resp.RefreshToken = rt
	}
	return iss, resp
}
