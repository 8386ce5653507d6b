package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// The store's webhook settings, managed by its merchant (the merchant
// token of the store, with orders:read; guard's table):
//
//	GET /s/{slug}/settings/webhooks  → {"order_events_url": "https://…" | null}
//	PUT /s/{slug}/settings/webhooks  ← {"order_events_url": "https://…" | null}
//
// The URL receives an "order created" event for every order the store
// takes, queued with the order (the outbox) and delivered like the
// platform's order webhook: the full order, RFC 9421-signed with the
// store's key (published in the store's profile), retried with backoff.
// It is kept in the store's settings document under "webhooks", written
// with store.Catalog.UpdateShopConfig so that concurrent writers never
// lose each other's members.

// WebhookSettings are the merchant's own webhook settings.
type WebhookSettings struct {
	// OrderEventsURL receives every order the store takes; "" means none.
	OrderEventsURL string `json:"order_events_url,omitempty"`
}

// maxWebhookURL bounds a webhook URL, the platform's order webhook's too.
const maxWebhookURL = 2048

// webhookSettingsBody is the REST resource: the URL, or null when none.
type webhookSettingsBody struct {
	OrderEventsURL *string `json:"order_events_url"`
}

func webhookSettingsReply(w WebhookSettings) *Reply {
	var body webhookSettingsBody
	if w.OrderEventsURL != "" {
		body.OrderEventsURL = &w.OrderEventsURL
	}
	return payload(http.StatusOK, body)
}

func (s *Service) getWebhookSettings(oc *opCtx) *Reply {
	return webhookSettingsReply(oc.shop.cfg.Webhooks)
}

// updateWebhookSettings sets or (null) removes the order events URL.
// The rest of the settings document, members this build does not know
// included, is kept as it is at the moment of the write.
func (s *Service) updateWebhookSettings(ctx context.Context, oc *opCtx) *Reply {
	target, rep := s.decodeWebhookSettings(oc.Body)
	if rep != nil {
		return rep
	}
	var saved WebhookSettings
	err := s.cfg.Store.UpdateShopConfig(ctx, oc.shop.Slug, func(raw json.RawMessage) (json.RawMessage, error) {
		next, err := withOrderEventsURL(raw, target)
		if err != nil {
			return nil, err
		}
		c, err := decodeShopConfig(next)
		if err != nil {
			return nil, err
		}
		saved = c.Webhooks
		return next, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return protoErr(http.StatusNotFound, rpcInvalid, "store_not_found", "no store "+oc.shop.Slug)
	case err != nil:
		return s.storeFailure(ctx, err)
	}
	s.log.InfoContext(ctx, "shop: store webhook settings updated", "store", oc.shop.Slug, "client", oc.Principal.ClientID,
		"order_events", saved.OrderEventsURL != "")
	return webhookSettingsReply(saved)
}

// decodeWebhookSettings reads a PUT body: an object with exactly the
// member order_events_url, a URL deliveries can reach or null. It
// returns the URL to store ("" to remove it).
func (s *Service) decodeWebhookSettings(body json.RawMessage) (string, *Reply) {
	const shape = `send {"order_events_url": "https://…"}, or {"order_events_url": null} to stop the deliveries`
	if len(bytes.TrimSpace(body)) == 0 {
		return "", invalidRequest("a request body is required: %s", shape)
	}
	var members map[string]json.RawMessage
	if rep := decodeBody(body, &members); rep != nil {
		return "", rep
	}
	if members == nil {
		return "", invalidRequest("the body must be a JSON object: %s", shape)
	}
	for k := range members {
		if k != "order_events_url" {
			return "", invalidRequest("unknown member %.64q in the webhook settings: %s", k, shape)
		}
	}
	raw, ok := members["order_events_url"]
	if !ok {
		return "", invalidRequest("order_events_url is required: %s", shape)
	}
	if string(raw) == "null" {
		return "", nil
	}
	var u string
	if err := json.Unmarshal(raw, &u); err != nil {
		return "", invalidRequest("order_events_url must be a string or null")
	}
	if err := s.checkWebhookURL(u); err != nil {
		return "", &Reply{Err: &ProtocolError{Status: http.StatusBadRequest, RPCCode: rpcParams, Code: "invalid_webhook_url",
			Content: "order_events_url " + webhookURLProblem(err, s.cfg.Dev)}}
	}
	return u, nil
}

// webhookURLProblem phrases a refusal of checkWebhookURL to follow the
// field's name; it never echoes the URL.
func webhookURLProblem(err error, dev bool) string {
	var ue *netguard.URLError
	if !errors.As(err, &ue) {
		return "is not usable"
	}
	if ue.Problem == "must use https" {
		if dev {
			return "must use https (plain http only to a loopback host)"
		}
		return "must use https"
	}
	return ue.Problem
}

// checkWebhookURL applies to the store's order events URL the rules of
// the platform's order webhook (netguard.CheckURL: https, plain http only
// to loopback and only in dev, at most maxWebhookURL bytes, no user
// information or fragment), and refuses up front what the delivery's
// dial guard would refuse on every attempt: a host that is an address
// outside the public internet (loopback outside dev) and this platform's
// own API host. Refusals are *netguard.URLError.
func (s *Service) checkWebhookURL(raw string) error {
	if raw == "" {
		return &netguard.URLError{Problem: "is empty (null removes it)"}
	}
	u, err := netguard.CheckURL(raw, maxWebhookURL, s.cfg.Dev)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if netguard.IsLoopbackHost(host) {
		if s.cfg.Dev {
			return nil
		}
		return &netguard.URLError{Problem: "names this machine (loopback), which deliveries never reach"}
	}
	if a, err := netip.ParseAddr(host); err == nil && !netguard.Public(a) {
		return &netguard.URLError{Problem: "names a " + netguard.Class(a) + " address, which deliveries never reach"}
	}
	if base, err := url.Parse(s.cfg.BaseURL); err == nil && strings.EqualFold(hostPort(u), hostPort(base)) {
		return &netguard.URLError{Problem: "points at this platform's own API"}
	}
	return nil
}

// hostPort is u's host with its port as a number (the scheme's default
// when none is written): ":0443" and ":443" dial the same port, so they
// must compare equal.
func hostPort(u *url.URL) string {
	port := map[string]int{"http": 80, "https": 443}[u.Scheme]
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return "" // no port a dial accepts; never equal to the API's
		}
		port = int(n)
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")) + ":" + strconv.Itoa(port)
}

// withOrderEventsURL returns the settings document raw with
// webhooks.order_events_url set to u (removed when u is ""), every other
// member kept as it was.
func withOrderEventsURL(raw json.RawMessage, u string) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, errors.New("store configuration: not a JSON object")
	}
	hooks := map[string]json.RawMessage{}
	if w, ok := doc["webhooks"]; ok && string(w) != "null" {
		if err := json.Unmarshal(w, &hooks); err != nil || hooks == nil {
			return nil, errors.New("store configuration: webhooks is not an object")
		}
	}
	if u == "" {
		delete(hooks, "order_events_url")
	} else {
		b, err := json.Marshal(u)
		if err != nil {
			return nil, err
		}
		hooks["order_events_url"] = b
	}
	if len(hooks) == 0 {
		delete(doc, "webhooks")
	} else {
		b, err := json.Marshal(hooks)
		if err != nil {
			return nil, err
		}
		doc["webhooks"] = b
	}
	return json.Marshal(doc)
}
