package ucpclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

func TestFetchImage(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nfake")
	mux := http.NewServeMux()
	mux.HandleFunc("/ok.png", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "" || r.Header.Get("Authorization") != "" {
			t.Error("credential sent to an image host")
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>"))
	})
	mux.HandleFunc("/big-declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(MaxImageBytes+1))
		w.Write(make([]byte, 10))
	})
	mux.HandleFunc("/big-streamed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		chunk := make([]byte, 64<<10)
		for i := 0; i < MaxImageBytes/len(chunk)+2; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			http.Redirect(w, r, "/ok.png", http.StatusFound)
			return
		}
		http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/x.png", http.StatusFound)
	})
	mux.HandleFunc("/to-localhost", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://localhost/x.png", http.StatusFound)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	f := newFakePlatform(t)
	c := newTestClient(t, f, nil)
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.imageClient = hc // the test server is on loopback; the guard is tested below
	ctx := context.Background()

	img, err := c.FetchImage(ctx, srv.URL+"/ok.png")
	if err != nil || img.MIMEType != "image/png" || string(img.Data) != string(png) {
		t.Fatalf("ok: %+v, %v", img, err)
	}
	if _, err := c.FetchImage(ctx, srv.URL+"/hop/2"); err != nil { // 3 redirects
		t.Fatalf("3 redirects: %v", err)
	}
	for _, bad := range []string{
		srv.URL + "/hop/3", // 4 redirects
		srv.URL + "/html",
		srv.URL + "/big-declared",
		srv.URL + "/big-streamed",
		srv.URL + "/to-http",
		srv.URL + "/to-localhost",
		strings.Replace(srv.URL, "https://", "http://", 1) + "/ok.png",
		strings.Replace(srv.URL, "https://", "https://u:p@", 1) + "/ok.png",
		"https://localhost/x.png",
		"https://img.localhost/x.png",
		"not a url",
	} {
		if img, err := c.FetchImage(ctx, bad); err == nil {
			t.Errorf("%s: fetched %d bytes", bad, len(img.Data))
		}
	}
	var tl *netguard.TooLargeError
	if _, err := c.FetchImage(ctx, srv.URL+"/big-streamed"); !errors.As(err, &tl) {
		t.Errorf("streamed cap: %v", err)
	}

	// The default client refuses non-public addresses at connect time.
	c.imageClient = nil
	_, err = c.FetchImage(ctx, srv.URL+"/ok.png")
	var be *netguard.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("loopback image host: %v, want *netguard.BlockedError", err)
	}
}

func TestFreshUUID(t *testing.T) {
	a, b := freshUUID(), freshUUID()
	if a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Fatalf("uuids %s %s", a, b)
	}
}
