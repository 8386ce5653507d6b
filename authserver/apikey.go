package authserver

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// ErrInvalidAPIKey is returned by ValidateAPIKey for malformed keys,
// unknown clients and wrong secrets alike.
var ErrInvalidAPIKey = errors.New("authserver: invalid API key")

// ValidateAPIKey checks a platform API key, "<client_id>.<client_secret>"
// (the Artos format), against the confidential client's stored secret
// hash. It returns the client id.
func (s *Server) ValidateAPIKey(ctx context.Context, key string) (string, error) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 || i == len(key)-1 || len(key) > 512 {
		return "", ErrInvalidAPIKey
	}
	id, secret := key[:i], key[i+1:]
	c, err := s.cfg.Store.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		hashToken(secret) // same work as a known client
		return "", ErrInvalidAPIKey
	}
	if err != nil {
		return "", err
	}
	if !equalHash(c.SecretHash, hashToken(secret)) {
		return "", ErrInvalidAPIKey
	}
	return c.ID, nil
}

// Caller is who made a platform API request.
type Caller struct {
	ClientID string
	BuyerID  string // empty for the platform key and app-only tokens
	Scopes   []string
}

// Identify authenticates a platform API request: X-API-Key wins over a
// bearer (as at Artos, so a call carrying both is the platform's), then
// Authorization: Bearer. No credentials is (nil, nil); bad ones are
// ErrInvalidAPIKey or ErrInvalidToken.
func (s *Server) Identify(r *http.Request) (*Caller, error) {
	ctx := r.Context()
	if key := r.Header.Get("X-API-Key"); key != "" {
		id, err := s.ValidateAPIKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return &Caller{ClientID: id}, nil
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, nil
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, ErrInvalidToken
	}
	info, err := s.ValidateAccessToken(ctx, strings.TrimSpace(tok))
	if err != nil {
		return nil, err
	}
	return &Caller{ClientID: info.ClientID, BuyerID: info.BuyerID, Scopes: strings.Fields(info.Scope)}, nil
}
