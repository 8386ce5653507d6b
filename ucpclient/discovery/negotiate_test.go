package discovery

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

const (
	checkout    = "dev.ucp.shopping.checkout"
	cart        = "dev.ucp.shopping.cart"
	fulfillment = "dev.ucp.shopping.fulfillment"
	discount    = "dev.ucp.shopping.discount"
	order       = "dev.ucp.shopping.order"
	ap2         = "dev.ucp.shopping.ap2_mandate"
	loyalty     = "com.example.loyalty"
)

// cap is one capability entry: "version" or "version>parent1,parent2".
type caps map[string][]string

func profile(version string, c caps, supported ...string) *ucp.Profile {
	p := &ucp.Profile{UCP: ucp.ProfileUCP{Version: version, Capabilities: map[string][]ucp.Capability{}}}
	for name, entries := range c {
		for _, e := range entries {
			v, parents, _ := strings.Cut(e, ">")
			var ext ucp.Extends
			if parents != "" {
				ext = strings.Split(parents, ",")
			}
			p.UCP.Capabilities[name] = append(p.UCP.Capabilities[name], ucp.Capability{Entity: ucp.Entity{Version: v}, Extends: ext})
		}
	}
	if len(supported) > 0 {
		p.UCP.SupportedVersions = map[string]string{}
		for _, v := range supported {
			p.UCP.SupportedVersions[v] = "https://shop.example/.well-known/ucp/" + v
		}
	}
	return p
}

const (
	v0111 = "2026-01-11"
	v0123 = "2026-01-23"
	v0408 = "2026-04-08"
	artos = "2026-08-25"
)

func TestNegotiate(t *testing.T) {
	t.Parallel()
	shop := caps{
		checkout:    {v0408},
		cart:        {v0408},
		order:       {v0123, v0408},
		fulfillment: {v0408 + ">" + checkout},
		discount:    {v0408 + ">" + checkout + "," + cart},
		ap2:         {v0408 + ">" + checkout},
		loyalty:     {v0408 + ">" + discount},
	}
	for _, tc := range []struct {
		name     string
		business *ucp.Profile
		platform *ucp.Profile
		opt      NegotiateOptions
		version  string
		want     map[string]string
		code     string
	}{
		{
			name:     "equal versions, full overlap",
			business: profile(v0408, shop),
			platform: profile(v0408, shop),
			version:  v0408,
			want:     map[string]string{checkout: v0408, cart: v0408, order: v0408, fulfillment: v0408, discount: v0408, ap2: v0408, loyalty: v0408},
		},
		{
			name:     "platform version in supported_versions",
			business: profile(v0408, caps{checkout: {v0123, v0408}}, v0123),
			platform: profile(v0123, caps{checkout: {v0123}}),
			version:  v0123,
			want:     map[string]string{checkout: v0123},
		},
		{
			name:     "platform version in AcceptVersions",
			business: profile(v0408, caps{checkout: {v0408}}),
			platform: profile(artos, caps{checkout: {v0408}}),
			opt:      NegotiateOptions{AcceptVersions: []string{artos}},
			version:  v0408,
			want:     map[string]string{checkout: v0408},
		},
		{
			name:     "unsupported version",
			business: profile(v0408, caps{checkout: {v0408}}, v0123),
			platform: profile(artos, caps{checkout: {v0408}}),
			code:     CodeVersionUnsupported,
		},
		{
			name:     "older version not in supported_versions",
			business: profile(v0408, caps{checkout: {v0408}}, v0123),
			platform: profile(v0111, caps{checkout: {v0408}}),
			opt:      NegotiateOptions{AcceptVersions: []string{artos}},
			code:     CodeVersionUnsupported,
		},
		{
			name:     "highest common version",
			business: profile(v0408, caps{checkout: {v0123, v0408, v0111}, order: {v0111, v0123}}),
			platform: profile(v0408, caps{checkout: {v0123, v0111}, order: {v0408, v0111}}),
			version:  v0408,
			want:     map[string]string{checkout: v0123, order: v0111},
		},
		{
			name:     "no mutual version drops the capability",
			business: profile(v0408, caps{checkout: {v0408}, order: {v0408}}),
			platform: profile(v0408, caps{checkout: {v0408}, order: {v0123}}),
			version:  v0408,
			want:     map[string]string{checkout: v0408},
		},
		{
			name:     "capability the platform lacks",
			business: profile(v0408, caps{checkout: {v0408}, order: {v0408}}),
			platform: profile(v0408, caps{checkout: {v0408}, "com.other.thing": {v0408}}),
			version:  v0408,
			want:     map[string]string{checkout: v0408},
		},
		{
			name:     "orphan extension pruned",
			business: profile(v0408, caps{order: {v0408}, fulfillment: {v0408 + ">" + checkout}}),
			platform: profile(v0408, caps{order: {v0408}, fulfillment: {v0408 + ">" + checkout}, checkout: {v0408}}),
			version:  v0408,
			want:     map[string]string{order: v0408},
		},
		{
			name:     "multi-level chain pruned when its root goes",
			business: profile(v0408, shop),
			platform: profile(v0408, caps{order: {v0408}, fulfillment: {v0408}, discount: {v0408}, loyalty: {v0408}}),
			version:  v0408,
			want:     map[string]string{order: v0408},
		},
		{
			name:     "multi-level chain pruned when a middle link goes",
			business: profile(v0408, shop),
			platform: profile(v0408, caps{checkout: {v0408}, cart: {v0408}, loyalty: {v0408}}),
			version:  v0408,
			want:     map[string]string{checkout: v0408, cart: v0408},
		},
		{
			name:     "multi-parent extension kept with one parent",
			business: profile(v0408, shop),
			platform: profile(v0408, caps{cart: {v0408}, discount: {v0408}, loyalty: {v0408}, fulfillment: {v0408}}),
			version:  v0408,
			want:     map[string]string{cart: v0408, discount: v0408, loyalty: v0408},
		},
		{
			name:     "multi-parent extension pruned with no parent",
			business: profile(v0408, shop),
			platform: profile(v0408, caps{order: {v0408}, discount: {v0408}}),
			version:  v0408,
			want:     map[string]string{order: v0408},
		},
		{
			name:     "parents from the platform when the business names none",
			business: profile(v0408, caps{order: {v0408}, fulfillment: {v0408}}),
			platform: profile(v0408, caps{order: {v0408}, fulfillment: {v0408 + ">" + checkout}}),
			version:  v0408,
			want:     map[string]string{order: v0408},
		},
		{
			name:     "parents of the chosen version",
			business: profile(v0408, caps{checkout: {v0408}, loyalty: {v0123 + ">" + cart, v0408 + ">" + checkout}}),
			platform: profile(v0408, caps{checkout: {v0408}, loyalty: {v0123, v0408}}),
			version:  v0408,
			want:     map[string]string{checkout: v0408, loyalty: v0408},
		},
		{
			name:     "empty intersection",
			business: profile(v0408, caps{checkout: {v0408}}),
			platform: profile(v0408, caps{order: {v0408}}),
			code:     CodeCapabilitiesIncompatible,
		},
		{
			name:     "only orphans in common",
			business: profile(v0408, caps{checkout: {v0408}, fulfillment: {v0408 + ">" + checkout}}),
			platform: profile(v0408, caps{fulfillment: {v0408 + ">" + checkout}}),
			code:     CodeCapabilitiesIncompatible,
		},
		{
			name:     "platform without capabilities",
			business: profile(v0408, shop),
			platform: profile(v0408, nil),
			code:     CodeCapabilitiesIncompatible,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Negotiate(tc.business, tc.platform, tc.opt)
			if tc.code != "" {
				e := wantCode(t, err, tc.code)
				if tc.code == CodeCapabilitiesIncompatible && e.Status() != 200 || tc.code == CodeVersionUnsupported && e.Status() != 422 {
					t.Errorf("status %d", e.Status())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Version != tc.version {
				t.Errorf("version %s, want %s", n.Version, tc.version)
			}
			if !maps.Equal(n.Capabilities, tc.want) {
				t.Errorf("capabilities\n%v\nwant\n%v", n.Capabilities, tc.want)
			}
			for name := range tc.want {
				if !n.Has(name) {
					t.Errorf("Has(%s) = false", name)
				}
			}
			if n.Has("com.example.absent") {
				t.Error("Has reports an absent capability")
			}
		})
	}
}

func TestNegotiateVersionMessage(t *testing.T) {
	t.Parallel()
	_, err := Negotiate(profile(v0408, caps{checkout: {v0408}}), profile(v0111, caps{checkout: {v0408}}), NegotiateOptions{})
	e := wantCode(t, err, CodeVersionUnsupported)
	if !strings.Contains(e.Content, v0111) || !strings.Contains(e.Content, v0408) {
		t.Errorf("content %q names neither version", e.Content)
	}
	if _, err := Negotiate(nil, profile(v0408, nil), NegotiateOptions{}); err == nil {
		t.Error("nil business accepted")
	}
}

func TestNegotiateParsedProfiles(t *testing.T) {
	t.Parallel()
	business, err := ucp.ParseProfile([]byte(`{"ucp":{"version":"2026-04-08","capabilities":{
	  "dev.ucp.shopping.checkout":[{"version":"2026-04-08"}],
	  "dev.ucp.shopping.discount":[{"version":"2026-04-08","extends":["dev.ucp.shopping.checkout","dev.ucp.shopping.cart"]}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	// A 2026-01-11-shaped platform profile, as an older agent might send.
	platform, err := ucp.ParseProfile([]byte(`{"ucp":{"version":"2026-04-08","capabilities":[
	  {"name":"dev.ucp.shopping.checkout","version":"2026-04-08"},
	  {"name":"dev.ucp.shopping.discount","version":"2026-04-08","extends":"dev.ucp.shopping.checkout"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Negotiate(business, platform, NegotiateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Has(checkout) || !n.Has(discount) {
		t.Errorf("negotiated %v", n.Capabilities)
	}
}

func TestOwn(t *testing.T) {
	t.Parallel()
	n := Own(profile(v0408, caps{
		checkout:    {v0123, v0408, v0111},
		fulfillment: {v0408 + ">" + checkout},
		discount:    {v0408 + ">" + cart}, // cart is not offered: orphan
		loyalty:     {v0408 + ">" + discount},
	}))
	want := map[string]string{checkout: v0408, fulfillment: v0408}
	if n.Version != v0408 || !reflect.DeepEqual(n.Capabilities, want) {
		t.Errorf("Own = %+v, want %v", n, want)
	}
	if Own(nil) != nil || (*Negotiated)(nil).Has(checkout) {
		t.Error("nil handling")
	}
}
