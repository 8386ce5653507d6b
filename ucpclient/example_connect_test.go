package ucpclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// ExampleConnect signs a buyer in from a command-line agent, keeps the
// token in a file and builds the token source the client uses for
// buyer-bound calls. A tiny authorization server stands in for the
// platform, and OpenBrowser follows the redirect where a real agent
// would open the buyer's browser.
func ExampleConnect() {
	issuer := exampleAuthServer()
	defer issuer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "ucpclient-example")
	defer os.RemoveAll(dir)
	store := &ucpclient.FileTokenStore{Path: filepath.Join(dir, "buyer-token.json")}

	tok, err := ucpclient.Connect(ctx, ucpclient.ConnectOptions{
		ClientID:      "https://agent.example/oauth-client.json",
		Issuer:        issuer.URL, // or ResourceMetadata from a 401 challenge
		AllowLoopback: true,       // the example's server runs on this machine
		OpenBrowser: func(authURL string) error {
			// A real agent: fmt.Println("Open", authURL) or exec xdg-open.
			return exampleFollow(authURL)
		},
		Store: store,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in:", tok.Valid())

	md, err := ucpclient.DiscoverAuthServer(ctx, http.DefaultClient, issuer.URL, "")
	if err != nil {
		log.Fatal(err)
	}
	src, err := ucpclient.NewBuyerTokenSource(ctx, md.OAuth2Config("https://agent.example/oauth-client.json", ""), store, nil)
	if err != nil {
		log.Fatal(err)
	}
	cur, _ := src.Token()
	fmt.Println("same token:", cur.AccessToken == tok.AccessToken)
	// Output:
	// signed in: true
	// same token: true
}

// exampleAuthServer answers discovery, authorization (approving at once)
// and the code exchange. It checks nothing; see the tests for that.
func exampleAuthServer() *httptest.Server {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint": srv.URL + "/token", "code_challenge_methods_supported": []string{"S256"},
			"authorization_response_iss_parameter_supported": true})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		v := url.Values{"code": {"c"}, "state": {r.FormValue("state")}, "iss": {srv.URL}}
		http.Redirect(w, r, r.FormValue("redirect_uri")+"?"+v.Encode(), http.StatusSeeOther)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at","token_type":"Bearer","refresh_token":"rt","expires_in":3600}`)
	})
	return srv
}

// exampleFollow plays the browser: it follows the authorization server's
// redirect to Connect's loopback listener.
func exampleFollow(authURL string) error {
	res, err := http.Get(authURL)
	if err != nil {
		return err
	}
	return res.Body.Close()
}
