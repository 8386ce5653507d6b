package ucpclient

import (
	"strings"
)

// Challenge is one RFC 6750 (RFC 9728) WWW-Authenticate challenge, as a
// resource server sends it with a 401.
type Challenge struct {
	// Scheme is the auth scheme, e.g. "Bearer".
	Scheme string
	// The RFC 6750 and RFC 9728 parameters.
	Realm            string
	Error            string // e.g. "invalid_token", "insufficient_scope"
	ErrorDescription string
	ErrorURI         string
	Scope            string // space-separated
	ResourceMetadata string // RFC 9728 protected resource metadata URL
	// Params holds every parameter, lowercased names, unquoted values.
	Params map[string]string
	// Raw is the header as received.
	Raw string
}

// ParseChallenge parses a WWW-Authenticate header value (several header
// lines joined with ", "). It returns the Bearer challenge when there is
// one, else the first. It never fails: whatever cannot be parsed is left
// out, and an empty header gives a Challenge with only Raw.
func ParseChallenge(header string) *Challenge {
	chs := parseChallenges(header)
	for _, c := range chs {
		if strings.EqualFold(c.Scheme, "Bearer") {
			return c
		}
	}
	if len(chs) > 0 {
		return chs[0]
	}
	return &Challenge{Raw: header, Params: map[string]string{}}
}

func parseChallenges(h string) []*Challenge {
	var out []*Challenge
	var cur *Challenge
	s := h
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		// token
		i := 0
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		if i == 0 { // garbage: skip a byte
			s = s[1:]
			continue
		}
		tok := s[:i]
		rest := strings.TrimLeft(s[i:], " \t")
		if strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "==") && cur != nil {
			// auth-param
			rest = strings.TrimLeft(rest[1:], " \t")
			var val string
			if strings.HasPrefix(rest, `"`) {
				val, rest = readQuoted(rest)
			} else {
				j := 0
				for j < len(rest) && rest[j] != ',' && rest[j] != ' ' && rest[j] != '\t' {
					j++
				}
				val, rest = rest[:j], rest[j:]
			}
			cur.set(strings.ToLower(tok), val)
			s = rest
			continue
		}
		// a new scheme (token68 values are ignored)
		cur = &Challenge{Scheme: tok, Params: map[string]string{}, Raw: h}
		out = append(out, cur)
		s = rest
	}
	return out
}

func readQuoted(s string) (val, rest string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/", c) >= 0
}

func (c *Challenge) set(name, val string) {
	c.Params[name] = val
	switch name {
	case "realm":
		c.Realm = val
	case "error":
		c.Error = val
	case "error_description":
		c.ErrorDescription = val
	case "error_uri":
		c.ErrorURI = val
	case "scope":
		c.Scope = val
	case "resource_metadata":
		c.ResourceMetadata = val
	}
}
