package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Order webhooks (order.md): when the platform's profile names a
// config.webhook_url on its order capability, or the store's merchant set
// an order events URL (webhook_settings.go), placing an order queues an
// "order created" event to each in the same transaction (the outbox), and a
// worker delivers it: the full order entity, RFC 9421-signed with the
// store's key, Webhook-Id and Webhook-Timestamp (Standard Webhooks), and
// UCP-Agent naming the store profile. Failures retry with backoff.
const (
	webhookLease       = time.Minute
	webhookBatch       = 16
	webhookMaxAttempts = 15 // about a day with the backoff below
	webhookTimeout     = 10 * time.Second
)

// webhookURL is the platform's order webhook, when the order capability
// was negotiated and its profile names a usable URL.
func (s *Service) webhookURL(ctx context.Context, oc *opCtx) string {
	neg := oc.neg
	if neg.platform == nil || !neg.has(ucp.CapOrder) || !s.verifiedPlatform(ctx, oc) {
		return ""
	}
	for _, c := range neg.platform.UCP.Capabilities[ucp.CapOrder] {
		var cfg struct {
			WebhookURL string `json:"webhook_url"`
		}
		if len(c.Config) == 0 || json.Unmarshal(c.Config, &cfg) != nil || cfg.WebhookURL == "" {
			continue
		}
		if s.usableWebhookURL(cfg.WebhookURL) {
			return cfg.WebhookURL
		}
	}
	return ""
}

// orderWebhookURLs are where a new order's "order created" event goes:
// the verified platform's order webhook (or the one kept with the
// checkout when it was created, for the hosted page) and the store's own
// order events URL, re-checked against this instance's rules (a URL set
// in dev may name loopback).
func (s *Service) orderWebhookURLs(ctx context.Context, oc *opCtx, kept string) []string {
	var urls []string
	if u := cmpOr(s.webhookURL(ctx, oc), kept); u != "" {
		urls = append(urls, u)
	}
	if u := oc.shop.cfg.Webhooks.OrderEventsURL; u != "" {
		if err := s.checkWebhookURL(u); err != nil {
			s.log.WarnContext(ctx, "shop: the store's order events URL is not usable here; no event queued", "store", oc.shop.Slug, "err", err)
		} else {
			urls = append(urls, u)
		}
	}
	return urls
}

// verifiedPlatform reports whether the profile the request names is the
// caller's own: proved by a verified request signature (signed tier), or
// the profile registered for the caller's platform application. A
// profile merely named in UCP-Agent identifies nobody, so signed order
// data never goes to it.
func (s *Service) verifiedPlatform(ctx context.Context, oc *opCtx) bool {
	p := oc.Principal
	switch {
	case p == nil || oc.Agent == "":
		return false
	case p.Tier == guard.TierSigned && p.Profile == oc.Agent:
		return true
	case p.Platform == "" || s.cfg.Accounts == nil:
		return false
	}
	c, err := s.cfg.Accounts.Client(ctx, p.Platform)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.failure(ctx, "shop: load platform registration", err)
		}
		return false
	}
	return c.Profile != "" && c.Profile == oc.Agent
}

// usableWebhookURL: the rules of netguard.CheckURL (plain http only to
// loopback, and only in dev).
func (s *Service) usableWebhookURL(raw string) bool {
	_, err := netguard.CheckURL(raw, maxWebhookURL, s.cfg.Dev)
	return err == nil
}

// webhookClient is netguard's guarded client (no proxy, no redirects,
// capped headers), built once.
func (s *Service) webhookClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hooks == nil {
		s.hooks = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: s.cfg.Dev, Timeout: webhookTimeout, MaxIdleConnsPerHost: 4})
	}
	return s.hooks
}

// DeliverWebhooks runs one delivery pass and returns how many events were
// delivered. Safe to run on several instances at once: claims are leased.
func (s *Service) DeliverWebhooks(ctx context.Context) (int, error) {
	ws, err := s.cfg.Store.ClaimWebhooks(ctx, s.now(), webhookLease, webhookBatch)
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, w := range ws {
		err := s.deliver(ctx, w)
		switch {
		case err == nil:
			delivered++
			s.cfg.Metrics.WebhookDelivered(metrics.WebhookDelivered)
			if err := s.cfg.Store.DeleteWebhook(ctx, w.ID); err != nil {
				s.log.ErrorContext(ctx, "shop: webhook delivered but not dequeued (it will be sent again)", "id", w.ID, "err", err)
			}
		case w.Attempts+1 >= webhookMaxAttempts:
			s.cfg.Metrics.WebhookDelivered(metrics.WebhookAbandoned)
			s.log.ErrorContext(ctx, "shop: webhook abandoned", "id", w.ID, "order", w.OrderID, "attempts", w.Attempts+1, "err", err)
			if err := s.cfg.Store.DeleteWebhook(ctx, w.ID); err != nil {
				s.log.ErrorContext(ctx, "shop: drop webhook", "id", w.ID, "err", err)
			}
		default:
			s.cfg.Metrics.WebhookDelivered(metrics.WebhookRetry)
			s.log.WarnContext(ctx, "shop: webhook delivery failed", "id", w.ID, "attempt", w.Attempts+1, "err", err)
			if err := s.cfg.Store.RetryWebhook(ctx, w.ID, s.now().Add(webhookBackoff(w.Attempts))); err != nil {
				s.log.ErrorContext(ctx, "shop: reschedule webhook", "id", w.ID, "err", err)
			}
		}
	}
	return delivered, nil
}

// webhookBackoff: 10 s doubling per attempt, at most an hour.
func webhookBackoff(attempts int) time.Duration {
	d := 10 * time.Second
	for range min(attempts, 10) {
		d *= 2
	}
	return min(d, time.Hour)
}

// DeliverEvery runs DeliverWebhooks every interval until ctx ends.
func (s *Service) DeliverEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.DeliverWebhooks(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "shop: webhook pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deliver sends one event: the order's current full snapshot.
func (s *Service) deliver(ctx context.Context, w *store.Webhook) error {
	o, err := s.cfg.Store.Order(ctx, w.ShopSlug, w.OrderID)
	if err != nil {
		return fmt.Errorf("load order: %w", err)
	}
	var order ucp.Order
	if err := json.Unmarshal(o.Doc, &order); err != nil {
		return fmt.Errorf("order document: %w", err)
	}
	order.UCP = &ucp.Envelope{Version: ucp.Version, Status: ucp.StatusSuccess,
		Capabilities: map[string][]ucp.Capability{ucp.CapOrder: {{Entity: ucp.Entity{Version: ucp.Version}}}}}
	body, err := json.Marshal(&order)
	if err != nil {
		return err
	}
	key, err := s.cfg.Keys.ShopKey(ctx, w.ShopSlug)
	if err != nil {
		return err
	}
	signer, err := httpsig.NewSigner(key.PrivateKey(), key.KeyID(), nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("UCP-Agent", `profile="`+s.storeURL(w.ShopSlug)+`/.well-known/ucp"`)
	req.Header.Set("Webhook-Id", w.ID)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(s.now().Unix(), 10))
	if err := signer.SignRequest(req, body); err != nil {
		return err
	}
	res, err := s.webhookClient().Do(req)
	if err != nil {
		return err
	}
	// Drain (a little) so the connection can be reused; the platform's
	// answer carries nothing we read.
	netguard.ReadBody(res, 64<<10)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return errors.New("receiver answered HTTP " + strconv.Itoa(res.StatusCode))
	}
	return nil
}
