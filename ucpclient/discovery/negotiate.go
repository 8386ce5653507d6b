package discovery

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// NegotiateOptions adjusts Negotiate.
type NegotiateOptions struct {
	// AcceptVersions lists platform protocol versions treated as compatible
	// with the business's current version, for platforms that advertise a
	// version of their own rather than a UCP release (the Artos SDK sends
	// "2026-08-25"). The negotiated version is then the business's.
	AcceptVersions []string
}

// Negotiated is the outcome of a negotiation: the protocol version to
// process the request at and, per capability name, the version chosen.
type Negotiated struct {
	Version      string
	Capabilities map[string]string
}

// Has reports whether the capability survived negotiation. A nil
// *Negotiated has nothing.
func (n *Negotiated) Has(name string) bool {
	if n == nil {
		return false
	}
	_, ok := n.Capabilities[name]
	return ok
}

// Negotiate runs the business side of UCP negotiation (overview.md,
// "Negotiation Protocol" and "Request-Time Validation").
//
// The protocol version: the platform's ucp.version must equal the
// business's, or be a key of its supported_versions (Version is then that
// older version), or be one of opt.AcceptVersions (Version is then the
// business's); otherwise the result is an *Error with version_unsupported.
// For a supported_versions match the caller should pass the business
// profile published for that version, since capabilities are intersected
// with whatever business profile is given; Negotiate does no fetching.
//
// The capability intersection: for each business capability the platform
// also lists, the highest version both list (versions are YYYY-MM-DD, so
// string order is date order); then extensions none of whose parents
// survived are removed, repeatedly, until nothing changes. An extension's
// parents are taken from the business's entry for the chosen version, or
// the platform's if the business's names none. An empty result is an *Error
// with capabilities_incompatible (a business outcome: HTTP 200).
//
// The version constraints an extension schema may declare (`requires`) are
// not checked: that needs the schemas, which this package does not fetch.
func Negotiate(business, platform *ucp.Profile, opt NegotiateOptions) (*Negotiated, error) {
	if business == nil || platform == nil {
		return nil, errors.New("discovery: Negotiate needs a business and a platform profile")
	}
	bv, pv := business.UCP.Version, platform.UCP.Version
	n := &Negotiated{Capabilities: make(map[string]string)}
	_, older := business.UCP.SupportedVersions[pv]
	switch {
	case pv == bv:
		n.Version = bv
	case pv != "" && older:
		n.Version = pv
	case pv != "" && slices.Contains(opt.AcceptVersions, pv):
		n.Version = bv
	default:
		return nil, &Error{
			Code:    CodeVersionUnsupported,
			Content: fmt.Sprintf("Version %s is not supported. This business implements version %s.", pv, bv),
		}
	}

	parents := make(map[string]ucp.Extends)
	for name, bcaps := range business.UCP.Capabilities {
		pcaps, ok := platform.UCP.Capabilities[name]
		if !ok {
			continue
		}
		var best string
		var bExt, pExt ucp.Extends
		for _, b := range bcaps {
			for _, p := range pcaps {
				// Strictly greater keeps the first entry of a repeated
				// version, and never picks the empty version.
				if b.Version == p.Version && b.Version > best {
					best, bExt, pExt = b.Version, b.Extends, p.Extends
				}
			}
		}
		if best == "" {
			continue
		}
		n.Capabilities[name] = best
		if len(bExt) > 0 {
			parents[name] = bExt
		} else {
			parents[name] = pExt
		}
	}
	pruneOrphans(n.Capabilities, parents)
	if len(n.Capabilities) == 0 {
		return nil, &Error{
			Code:    CodeCapabilitiesIncompatible,
			Content: "The platform and the business have no capability in common at a mutually supported version.",
		}
	}
	return n, nil
}

// Own is the business's side alone: its protocol version and the highest
// version of each of its capabilities, orphan extensions removed. It serves
// paths that skip negotiation, such as a development fallback when the
// request names no platform profile. A nil business gives nil.
func Own(business *ucp.Profile) *Negotiated {
	if business == nil {
		return nil
	}
	n := &Negotiated{Version: business.UCP.Version, Capabilities: make(map[string]string)}
	parents := make(map[string]ucp.Extends)
	for name, caps := range business.UCP.Capabilities {
		for _, c := range caps {
			if c.Version > n.Capabilities[name] {
				n.Capabilities[name] = c.Version
				parents[name] = c.Extends
			}
		}
	}
	pruneOrphans(n.Capabilities, parents)
	return n
}

// pruneOrphans removes extensions none of whose parents is in chosen, until
// a pass removes nothing, so a chain (c extends b extends a) loses its tail
// when its root goes.
func pruneOrphans(chosen map[string]string, parents map[string]ucp.Extends) {
	for changed := true; changed; {
		changed = false
		for name, ps := range parents {
			if _, live := chosen[name]; !live || len(ps) == 0 {
				continue
			}
			if !slices.ContainsFunc(ps, func(p string) bool { _, ok := chosen[p]; return ok }) {
				delete(chosen, name)
				changed = true
			}
		}
	}
}
