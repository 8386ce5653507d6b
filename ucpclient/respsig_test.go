package ucpclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// tamperProxy sits between the client and the platform and rewrites the
// store MCP responses with edit (nil: passes everything through).
func tamperProxy(t *testing.T, target string, edit func(res *http.Response, body []byte) []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(u)
	orig := rp.Director
	rp.Director = func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/mcp") && r.Header.Get("Accept-Signature") != "" {
			asked.Add(1)
		}
		orig(r)
	}
	rp.ModifyResponse = func(res *http.Response) error {
		if edit == nil || !strings.HasPrefix(res.Request.URL.Path, "/s/") || !strings.HasSuffix(res.Request.URL.Path, "/mcp") {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		res.Body.Close()
		body = edit(res, body)
		res.Body = io.NopCloser(bytes.NewReader(body))
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv, &asked
}

func verifyingClient(t *testing.T, p *authservertest.Platform, base string, mode ucpclient.ResponseVerification) *ucpclient.Client {
	t.Helper()
	c, err := ucpclient.New(ucpclient.Config{
		BaseURL: base, APIKey: p.PlatformKey,
		AgentProfile:    "http://127.0.0.1:9/.well-known/ucp",
		VerifyResponses: mode,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flipByte changes one byte of the body: a digit of the first amount, or
// else the last byte before the closing brace.
func flipByte(_ *http.Response, body []byte) []byte {
	out := bytes.Clone(body)
	if i := bytes.Index(out, []byte(`"amount":`)); i >= 0 && i+9 < len(out) && out[i+9] >= '0' && out[i+9] <= '9' {
		out[i+9] = '0' + (out[i+9]-'0'+1)%10
		return out
	}
	out[len(out)-2] ^= 0x01
	return out
}

func TestResponseSignaturesAgainstPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	ctx := context.Background()
	slug := p.Stores[0]

	direct := verifyingClient(t, p, p.URL, ucpclient.VerifyResponsesOff)
	prof, err := direct.FetchStoreProfile(ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	if len(prof.SigningKeys) == 0 {
		t.Fatalf("store %s publishes no keys: the test needs them", slug)
	}
	search := func(c *ucpclient.Client) (json.RawMessage, error) {
		return c.CallStoreTool(ctx, slug, "search_catalog", map[string]any{"catalog": map[string]any{"query": "running"}})
	}
	variant := func(t *testing.T) string {
		out, err := search(direct)
		if err != nil {
			t.Fatal(err)
		}
		var sr ucp.SearchResponse
		if err := json.Unmarshal(out, &sr); err != nil || len(sr.Products) == 0 || len(sr.Products[0].Variants) == 0 {
			t.Fatalf("search: %s %v", out, err)
		}
		return sr.Products[0].Variants[0].ID
	}

	t.Run("good signature passes", func(t *testing.T) {
		for _, mode := range []ucpclient.ResponseVerification{ucpclient.VerifyResponsesIfKeys, ucpclient.VerifyResponsesRequired} {
			proxy, asked := tamperProxy(t, p.URL, nil)
			c := verifyingClient(t, p, proxy.URL, mode)
			if _, err := search(c); err != nil {
				t.Fatalf("mode %d: search: %v", mode, err)
			}
			out, err := c.CallStoreTool(ctx, slug, "create_checkout", map[string]any{
				"checkout": map[string]any{"line_items": []any{map[string]any{"item": map[string]any{"id": variant(t)}, "quantity": 1}}},
			})
			if err != nil || ucpclient.IsUCPError(out) {
				t.Fatalf("mode %d: create_checkout: %s %v", mode, out, err)
			}
			if asked.Load() < 2 {
				t.Fatalf("Accept-Signature sent on %d store calls, want 2", asked.Load())
			}
		}
	})

	refused := func(t *testing.T, edit func(*http.Response, []byte) []byte, code httpsig.Code) {
		t.Helper()
		proxy, _ := tamperProxy(t, p.URL, edit)
		for _, mode := range []ucpclient.ResponseVerification{ucpclient.VerifyResponsesIfKeys, ucpclient.VerifyResponsesRequired} {
			c := verifyingClient(t, p, proxy.URL, mode)
			out, err := search(c)
			var se *ucpclient.ResponseSignatureError
			if !errors.As(err, &se) || out != nil {
				t.Fatalf("mode %d: want *ResponseSignatureError, got %v (result %s)", mode, err, out)
			}
			if se.Code != code || se.Store != slug || se.Op != "store.search_catalog" || se.StatusCode != http.StatusOK {
				t.Fatalf("mode %d: %+v, want code %s", mode, se, code)
			}
		}
		// Without verification the same proxy gets through: the refusal
		// is the verifier's doing.
		c := verifyingClient(t, p, proxy.URL, ucpclient.VerifyResponsesOff)
		if _, err := search(c); err != nil && errors.As(err, new(*ucpclient.ResponseSignatureError)) {
			t.Fatalf("verification off: %v", err)
		}
	}

	t.Run("one byte changed is refused", func(t *testing.T) {
		refused(t, flipByte, httpsig.CodeDigestMismatch)
	})
	t.Run("changed body with a recomputed digest is refused", func(t *testing.T) {
		refused(t, func(res *http.Response, body []byte) []byte {
			out := flipByte(res, body)
			sum := sha256.Sum256(out)
			res.Header.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
			return out
		}, httpsig.CodeSignatureInvalid)
	})
	t.Run("stripped signature is refused", func(t *testing.T) {
		refused(t, func(res *http.Response, body []byte) []byte {
			res.Header.Del("Signature")
			res.Header.Del("Signature-Input")
			return body
		}, httpsig.CodeSignatureMissing)
	})
	t.Run("replayed response (other nonce) is refused", func(t *testing.T) {
		// Record one genuine signed response, then serve it for every
		// call: its signature verifies, but it is bound to another
		// request's nonce.
		var first http.Header
		var firstBody []byte
		rec, _ := tamperProxy(t, p.URL, func(res *http.Response, body []byte) []byte {
			first, firstBody = res.Header.Clone(), bytes.Clone(body)
			return body
		})
		if _, err := search(verifyingClient(t, p, rec.URL, ucpclient.VerifyResponsesRequired)); err != nil || first.Get("Signature") == "" {
			t.Fatalf("recording a signed response: %v", err)
		}
		refused(t, func(res *http.Response, _ []byte) []byte {
			for _, k := range []string{"Signature", "Signature-Input", "Content-Digest", "Content-Type"} {
				res.Header[k] = first[k]
			}
			return bytes.Clone(firstBody)
		}, httpsig.CodeSignatureInvalid)
	})
	t.Run("unknown store profile is an error", func(t *testing.T) {
		c := verifyingClient(t, p, p.URL, ucpclient.VerifyResponsesIfKeys)
		_, err := c.CallStoreTool(ctx, "no-such-store", "search_catalog", map[string]any{"catalog": map[string]any{}})
		var se *ucpclient.ResponseSignatureError
		if !errors.As(err, &se) || se.Code != "" {
			t.Fatalf("unknown store: %v", err)
		}
	})
	t.Run("global and account calls are not verified", func(t *testing.T) {
		c := verifyingClient(t, p, p.URL, ucpclient.VerifyResponsesRequired)
		if _, err := c.CallGlobalTool(ctx, "search_catalog", map[string]any{"query": "tea"}); err != nil {
			t.Fatal(err)
		}
	})
}

// A store that publishes no key: IfKeys answers unverified, Required
// refuses.
func TestResponseSignaturesStoreWithoutKeys(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/.well-known/ucp") {
			io.WriteString(w, `{"ucp":{"version":"2026-04-08","services":{},"capabilities":{}}}`)
			return
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"ucp":{"version":"2026-04-08","status":"success"},"products":[]}}}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		mode ucpclient.ResponseVerification
		ok   bool
	}{{ucpclient.VerifyResponsesOff, true}, {ucpclient.VerifyResponsesIfKeys, true}, {ucpclient.VerifyResponsesRequired, false}} {
		c, err := ucpclient.New(ucpclient.Config{BaseURL: srv.URL, AgentProfile: "https://agent.example/.well-known/ucp", VerifyResponses: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CallStoreTool(ctx, "shop", "search_catalog", map[string]any{"catalog": map[string]any{}})
		var se *ucpclient.ResponseSignatureError
		if tc.ok != (err == nil) || !tc.ok && !errors.As(err, &se) {
			t.Fatalf("mode %d: %v", tc.mode, err)
		}
	}
}

// tamperTransport flips a byte of every store response but the profile.
type tamperTransport struct{ on atomic.Bool }

func (tt *tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !tt.on.Load() || !strings.HasPrefix(r.URL.Path, "/s/") || strings.HasSuffix(r.URL.Path, "/.well-known/ucp") {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	body = flipByte(res, body)
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// The REST transport (Client.Business) on a platform store is verified
// the same way.
func TestResponseSignaturesBusinessREST(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	ctx := context.Background()
	tt := &tamperTransport{}
	c, err := ucpclient.New(ucpclient.Config{BaseURL: p.URL, APIKey: p.PlatformKey,
		AgentProfile: "http://127.0.0.1:9/.well-known/ucp", VerifyResponses: ucpclient.VerifyResponsesRequired,
		HTTPClient: &http.Client{Transport: tt}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Business(ctx, p.StoreURL("energy-sport")+"/.well-known/ucp", &ucpclient.BusinessOptions{AllowInsecureLoopback: true})
	if err != nil {
		t.Skipf("no REST binding for the platform store: %v", err)
	}
	req := &ucp.SearchRequest{Query: "running"}
	if res, err := b.SearchCatalog(ctx, req); err != nil || len(res.Products) == 0 {
		t.Fatalf("REST search, verified: %+v %v", res, err)
	}
	tt.on.Store(true)
	var se *ucpclient.ResponseSignatureError
	if _, err := b.SearchCatalog(ctx, req); !errors.As(err, &se) || se.Code != httpsig.CodeDigestMismatch {
		t.Fatalf("REST search, tampered: %v", err)
	}
}
