package discovery

import (
	"strings"

	"github.com/dunglas/httpsfv"
)

// ParseUCPAgent reads a UCP-Agent header, an RFC 8941 Dictionary such as
//
//	UCP-Agent: profile="https://platform.example/.well-known/ucp"
//
// and returns the profile URL and, when present, the ucp-version member
// that the Artos SDK sends (ucp-version="2026-08-25"). Unknown members are
// ignored, as RFC 8941 dictionaries are meant to be extended. A header sent
// on several lines must be joined with ", " first, which is how RFC 8941
// combines field lines.
//
// The profile URL is returned as sent; Fetcher.Fetch applies the URL rules.
// A missing header, a header that is not a dictionary, or a profile member
// that is missing or not a String is an *Error with invalid_profile_url.
func ParseUCPAgent(header string) (profile, version string, err error) {
	if strings.TrimSpace(header) == "" {
		return "", "", &Error{Code: CodeInvalidProfileURL, Content: "UCP-Agent header is missing"}
	}
	dict, err := httpsfv.UnmarshalDictionary([]string{header})
	if err != nil {
		return "", "", &Error{Code: CodeInvalidProfileURL, Content: "UCP-Agent header is not an RFC 8941 dictionary", Err: err}
	}
	m, ok := dict.Get("profile")
	if !ok {
		return "", "", &Error{Code: CodeInvalidProfileURL, Content: "UCP-Agent header has no profile member"}
	}
	// A token or a byte sequence would parse, but the spec says a quoted
	// URL, and a token cannot hold "://" anyway.
	item, _ := m.(httpsfv.Item)
	profile, _ = item.Value.(string)
	if profile == "" {
		return "", "", &Error{Code: CodeInvalidProfileURL, Content: `UCP-Agent profile must be a non-empty quoted string, as in profile="https://platform.example/.well-known/ucp"`}
	}
	// ucp-version is informational (negotiation uses the profile's own
	// version), so an ill-typed one is ignored rather than failing the
	// request.
	if m, ok := dict.Get("ucp-version"); ok {
		if item, ok := m.(httpsfv.Item); ok {
			switch v := item.Value.(type) {
			case string:
				version = v
			case httpsfv.Token:
				version = string(v)
			}
		}
	}
	return profile, version, nil
}
