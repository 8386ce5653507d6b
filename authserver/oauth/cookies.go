package oauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cookieCodec signs session and CSRF cookies with HMAC-SHA256.
type cookieCodec struct {
	key    []byte
	secure bool
	path   string
}

func newCookieCodec(key []byte, secure bool, path string) *cookieCodec {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ucpbridge cookie key"))
	return &cookieCodec{key: m.Sum(nil), secure: secure, path: path}
}

func (c *cookieCodec) mac(parts ...string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

const (
	sessionCookie = "ucpb_session"
	csrfCookie    = "ucpb_csrf"
)

func (c *cookieCodec) setSession(w http.ResponseWriter, buyerID string, exp time.Time) {
	v := base64.RawURLEncoding.EncodeToString([]byte(buyerID)) + "." + strconv.FormatInt(exp.Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v + "." + c.mac("session", v), Path: c.path,
		Expires: exp, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

func (c *cookieCodec) session(r *http.Request, now time.Time) (string, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 || !hmac.Equal([]byte(parts[2]), []byte(c.mac("session", parts[0]+"."+parts[1]))) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", false
	}
	id, err := base64.RawURLEncoding.DecodeString(parts[0])
	return string(id), err == nil
}

// issueCSRF sets (or reuses) a random cookie and returns the form token
// bound to it: a cross-site form can send the cookie but cannot read it
// to compute the token.
func (c *cookieCodec) issueCSRF(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 22 {
		v = ck.Value
	} else {
		b := make([]byte, 16)
		rand.Read(b)
		v = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: c.path, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode})
	}
	return c.mac("csrf", v)
}

// checkCSRF also refuses posts a browser marks as cross-site, so a cookie
// planted from a sibling subdomain is not enough on its own.
func (c *cookieCodec) checkCSRF(r *http.Request, token string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	ck, err := r.Cookie(csrfCookie)
	return err == nil && token != "" && hmac.Equal([]byte(token), []byte(c.mac("csrf", ck.Value)))
}
