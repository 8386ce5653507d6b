package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

const clientUsage = `usage: ucpbridge client add --db DSN --role platform|merchant|app --id ID [flags]

Registers an OAuth client with the role that decides its credentials:
  platform  a platform application: prints its X-API-Key once
            (--profile: its UCP profile, where order webhooks may go;
             --cimd URL, repeatable: client-id metadata documents it owns;
             --resource URL, repeatable: protected resources it runs, e.g.
             its MCP bridge's endpoint, whose buyer tokens it may exchange)
  merchant  a merchant's app bound to --store: prints its client secret once
            (client_credentials; --scopes, default "orders:read purchase:complete")
  app       an app buyers sign in through (public, PKCE): --redirect URI,
            repeatable; --platform names the platform application that owns it
`

// idRE is what a registered client id looks like.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// runClient registers clients in a platform's store, for deployments
// that run `serve` (dev seeds its own).
func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, clientUsage)
		return errors.New("client: the only subcommand is add")
	}
	fs := flag.NewFlagSet("client add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientUsage); fs.PrintDefaults() }
	dsn := fs.String("db", "", "PostgreSQL URL or SQLite file of the platform (required)")
	role := fs.String("role", "", "platform, merchant or app (required)")
	id := fs.String("id", "", "client id (required)")
	name := fs.String("name", "", "display name (default: the id)")
	shopSlug := fs.String("store", "", "merchant: the store slug it is bound to")
	platformID := fs.String("platform", "", "app: the platform application that owns it")
	profile := fs.String("profile", "", "platform: its UCP profile URL (https)")
	scopes := fs.String("scopes", "", "space-separated scopes the client may ask for")
	var cimd, redirects, resources listFlag
	fs.Var(&cimd, "cimd", "platform: a client-id metadata document URL it owns (repeatable)")
	fs.Var(&resources, "resource", "platform: a protected resource it runs, e.g. its MCP bridge's endpoint URL (https, or http on loopback; repeatable)")
	fs.Var(&redirects, "redirect", "app: a redirect URI (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dsn == "" || *id == "" {
		fs.Usage()
		return errors.New("client add: --db and --id are required")
	}
	if !idRE.MatchString(*id) {
		return fmt.Errorf("client add: --id %q: use 1 to 64 letters, digits, '.', '_' or '-'", *id)
	}
	// A flag another role takes is a mistake, not something to ignore.
	for flagName, roles := range map[string]string{"store": "merchant", "platform": "app", "profile": "platform", "cimd": "platform", "resource": "platform", "redirect": "app"} {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == flagName })
		if set && *role != roles {
			return fmt.Errorf("client add: --%s is for --role %s, not %s", flagName, roles, *role)
		}
	}
	c := &store.Client{ID: *id, Name: cmpOr(*name, *id), Scopes: strings.Fields(*scopes), CreatedAt: time.Now()}
	var secret string
	switch *role {
	case "platform":
		if *profile != "" && !httpsURL(*profile) {
			return fmt.Errorf("client add: --profile must be an https URL")
		}
		for _, u := range cimd {
			if !httpsURL(u) {
				return fmt.Errorf("client add: --cimd %q must be an https URL", u)
			}
		}
		for _, u := range resources {
			if err := oauth.CheckResourceURL(u); err != nil {
				return fmt.Errorf("client add: --resource: %w", err)
			}
		}
		secret, c.SecretHash = oauth.NewClientSecret()
		c.Type, c.Role, c.Platform, c.Profile, c.CIMD = store.ClientWeb, store.RolePlatform, *id, *profile, cimd
		// Token exchange: its bridge trades the buyer tokens issued for
		// its resources for platform API tokens (RFC 8693).
		c.GrantTypes = []string{"client_credentials", oauth.GrantTypeTokenExchange}
	case "merchant":
		if *shopSlug == "" {
			return errors.New("client add: a merchant needs --store")
		}
		secret, c.SecretHash = oauth.NewClientSecret()
		c.Type, c.Role, c.Store, c.GrantTypes = store.ClientWeb, store.RoleMerchant, *shopSlug, []string{"client_credentials"}
		if len(c.Scopes) == 0 {
			c.Scopes = []string{"orders:read", "purchase:complete"}
		}
	case "app":
		if len(redirects) == 0 {
			return errors.New("client add: an app needs at least one --redirect")
		}
		for _, r := range redirects {
			if err := checkRedirect(r); err != nil {
				return fmt.Errorf("client add: --redirect %q: %w", r, err)
			}
		}
		c.Type, c.Role, c.Platform, c.RedirectURIs = store.ClientInstalled, store.RoleApp, *platformID, redirects
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	default:
		fs.Usage()
		return fmt.Errorf("client add: --role must be platform, merchant or app, not %q", *role)
	}
	st, err := sqlstore.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if *role == "merchant" {
		if _, err := st.Shop(ctx, *shopSlug); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("client add: no store %q", *shopSlug)
		} else if err != nil {
			return err
		}
	}
	if *role == "app" && *platformID != "" {
		if p, err := st.Client(ctx, *platformID); err != nil || p.Role != store.RolePlatform {
			return fmt.Errorf("client add: --platform %q is not a registered platform application", *platformID)
		}
	}
	for _, u := range resources {
		if owner, err := st.ResourceOwner(ctx, u); err == nil {
			return fmt.Errorf("client add: --resource %q already belongs to platform %q", u, owner)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := st.CreateClient(ctx, c); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("client add: %q (or one of its CIMD URLs) is already registered", *id)
		}
		return err
	}
	for _, u := range resources {
		if err := oauth.RegisterResource(ctx, st, *id, u, time.Now()); err != nil {
			return fmt.Errorf("client add: platform %s registered, but not its --resource %q: %w", *id, u, err)
		}
	}
	switch *role {
	case "platform":
		fmt.Fprintf(stdout, "platform %s registered; its API key (shown once):\nX-API-Key: %s.%s\n", *id, *id, secret)
	case "merchant":
		fmt.Fprintf(stdout, "merchant %s registered for store %s; its client secret (shown once):\n%s\n", *id, *shopSlug, secret)
	default:
		fmt.Fprintf(stdout, "app %s registered (public client, PKCE)\n", *id)
	}
	return nil
}

// checkRedirect applies the authorization server's rules for redirect
// URIs (those it applies to CIMD documents): absolute, no fragment, no
// user information; https, plain http only to loopback, or a private-use
// scheme named in reverse DNS (never javascript:, data: and the like).
func checkRedirect(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("must be an absolute URI without a fragment")
	case u.User != nil:
		return errors.New("must not carry user information")
	case u.Scheme == "https":
		if u.Host == "" {
			return errors.New("names no host")
		}
	case u.Scheme == "http":
		if !netguard.IsLoopbackHost(u.Hostname()) {
			return errors.New("plain http is for loopback redirects only (127.0.0.1, [::1], localhost)")
		}
	case !strings.Contains(u.Scheme, "."):
		return errors.New("private-use schemes must be reverse-DNS names (com.example.app:/callback)")
	}
	return nil
}

func httpsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil && u.Fragment == ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
