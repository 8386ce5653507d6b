package shop

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// pageKey signs what the hosted continue page hands the browser and takes
// back: its CSRF tokens and the accepted card between steps. It is
// derived from the store's signing key, the one secret every instance
// serving the store already shares, so a form drawn by one instance is
// accepted by another and nothing new has to be configured.
type pageKey []byte

func (s *Service) pageKey(ctx context.Context, slug string) (pageKey, error) {
	k, err := s.cfg.Keys.ShopKey(ctx, slug)
	if err != nil {
		return nil, err
	}
	d, err := k.PrivateKey().Bytes()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, d, nil, "ucpbridge hosted continue page v1", 32)
}

// mac is base64url(HMAC-SHA256) over parts; the parts never hold NUL
// (store.ValidText ids and tokens, base64url values), so joining them on
// it is unambiguous.
func (k pageKey) mac(parts ...string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// continueCookie holds the page's CSRF nonce (double submit): a form
// posted from another site may carry the cookie, but that site cannot
// read it to compute the token the form must hold.
const continueCookie = "ucpb_continue"

// cookiePath scopes the nonce cookie to one checkout's page, so checkouts
// open in other tabs keep their own.
func (s *Service) cookiePath(slug, id string) string {
	u, err := url.Parse(s.storeURL(slug))
	if err != nil {
		return "/"
	}
	return u.Path + "/checkout-sessions/" + id + "/continue"
}

// nonce returns the page's CSRF nonce, setting the cookie when the
// browser has none (or a malformed one).
func (p *hostedPage) nonce() string {
	if ck, err := p.r.Cookie(continueCookie); err == nil && validNonce(ck.Value) {
		return ck.Value
	}
	b := make([]byte, 16)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(p.w, &http.Cookie{Name: continueCookie, Value: v, Path: p.s.cookiePath(p.sh.Slug, p.sess.ID),
		HttpOnly: true, Secure: strings.HasPrefix(p.s.cfg.BaseURL, "https:"), SameSite: http.SameSiteLaxMode})
	// Lax, not Strict: the buyer arrives by a link from the agent's
	// site, and a Strict cookie left out of that navigation would be
	// replaced, breaking forms open in other tabs. Cross-site POSTs
	// carry no Lax cookie either way.
	return v
}

func validNonce(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 16
}

// csrfToken binds a form to this checkout's continue token and to the
// browser's nonce: a form of another checkout, or of another browser,
// does not verify.
func (p *hostedPage) csrfToken(nonce string) string {
	return p.key.mac("csrf", p.sh.Slug, p.sess.ID, p.st.Token, nonce)
}

// checkCSRF verifies a POST's token against the cookie. It also refuses
// requests the browser marks as cross-site, so a cookie planted from a
// sibling subdomain is not enough on its own.
func (p *hostedPage) checkCSRF() bool {
	if site := p.r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	ck, err := p.r.Cookie(continueCookie)
	if err != nil || !validNonce(ck.Value) {
		return false
	}
	token := p.r.PostForm.Get("csrf")
	return token != "" && hmac.Equal([]byte(token), []byte(p.csrfToken(ck.Value)))
}

// cardTTL is how long an accepted card stays usable on the page before
// the buyer types it again, as a payment provider's card token expires.
const cardTTL = 30 * time.Minute

// sealedCard is an accepted card as the page carries it between steps:
// no number, no CVC, only what the next step shows and decides by.
type sealedCard struct {
	Card  card  `json:"card"`
	Until int64 `json:"until"` // Unix seconds
}

// sealCard signs c for this checkout's page (its continue token), usable
// until cardTTL from now.
func (p *hostedPage) sealCard(c *card) string {
	b, _ := json.Marshal(sealedCard{Card: *c, Until: p.s.now().Add(cardTTL).Unix()})
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + p.key.mac("card", p.sh.Slug, p.sess.ID, p.st.Token, payload)
}

// openCard returns the card a form carries, or false when it was not
// sealed for this checkout's page or has expired.
func (p *hostedPage) openCard(v string) (*card, bool) {
	payload, sig, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(p.key.mac("card", p.sh.Slug, p.sess.ID, p.st.Token, payload))) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	var sc sealedCard
	if err != nil || json.Unmarshal(b, &sc) != nil || !p.s.now().Before(time.Unix(sc.Until, 0)) {
		return nil, false
	}
	return &sc.Card, true
}
