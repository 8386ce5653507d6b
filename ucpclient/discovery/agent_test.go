package discovery

import "testing"

func TestParseUCPAgent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header           string
		profile, version string
		ok               bool
	}{
		{`profile="https://agent.example/profiles/shopping-agent.json"`, "https://agent.example/profiles/shopping-agent.json", "", true},
		{`ucp-version="2026-08-25", profile="https://p.example/.well-known/ucp"`, "https://p.example/.well-known/ucp", "2026-08-25", true},
		{`profile="https://p.example/ucp";v=1, future-member=?1, other=(a b)`, "https://p.example/ucp", "", true},
		{`profile="https://p.example/ucp", ucp-version=v2026`, "https://p.example/ucp", "v2026", true},
		{`profile="https://p.example/ucp", ucp-version=20260825`, "https://p.example/ucp", "", true}, // ill-typed version ignored
		{`profile="http://127.0.0.1:8080/ucp"`, "http://127.0.0.1:8080/ucp", "", true},               // URL rules are Fetch's job

		{``, "", "", false},
		{`   `, "", "", false},
		{`ucp-version="2026-08-25"`, "", "", false},
		{`profile=https://p.example/ucp`, "", "", false}, // not a dictionary: ':' ends the token
		{`profile=agent`, "", "", false},                 // a token, not a string
		{`profile=:aHR0cHM6Ly9wLmV4YW1wbGU=:`, "", "", false},
		{`profile=("https://p.example/ucp")`, "", "", false},
		{`profile=""`, "", "", false},
		{`profile`, "", "", false}, // boolean true
		{`profile="https://p.example/ucp" garbage`, "", "", false},
		{`Profile="https://p.example/ucp"`, "", "", false}, // keys are lowercase
	} {
		profile, version, err := ParseUCPAgent(tc.header)
		if !tc.ok {
			if err == nil {
				t.Errorf("%q: accepted as (%q, %q)", tc.header, profile, version)
				continue
			}
			if e := wantCode(t, err, CodeInvalidProfileURL); e.Status() != 400 {
				t.Errorf("%q: status %d", tc.header, e.Status())
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.header, err)
			continue
		}
		if profile != tc.profile || version != tc.version {
			t.Errorf("%q: (%q, %q), want (%q, %q)", tc.header, profile, version, tc.profile, tc.version)
		}
	}
}
