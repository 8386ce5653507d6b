package oauth_test

import (
	"encoding/json"
	"testing"
)

// TestRegisterNameInvisibleCharacters (review 12): client_name is "at
// most 100 printable characters" (README): the consent page shows it as
// the app's name, so characters that reorder or hide text (bidi
// overrides and isolates, zero-width characters, other format
// characters) could make "Claude" out of something else; they are
// refused like control characters.
func TestRegisterNameInvisibleCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDCR)
	for _, name := range []string{"Trusted\u202eppa", "Cla\u200bude", "a\u2066b\u2069", "x\u061cy", "a\ufeffb", "a\u00adb", "a\u2028b"} {
		b, _ := json.Marshal(map[string]any{"redirect_uris": []string{"http://localhost/cb"}, "client_name": name})
		if r := e.register(string(b)); r.Status != 400 || r.Error != "invalid_client_metadata" || r.ClientID != "" {
			t.Errorf("client_name %+q: %d %s (registered %q as %q)", name, r.Status, r.Error, r.ClientID, r.ClientName)
		}
	}
	// Names in any script stay welcome.
	for _, name := range []string{"Café agent", "助手", "Агент 2", "MCP CLI Proxy"} {
		b, _ := json.Marshal(map[string]any{"redirect_uris": []string{"http://localhost/cb"}, "client_name": name})
		if r := e.register(string(b)); r.Status != 201 || r.ClientName != name {
			t.Errorf("client_name %q: %d %s %s", name, r.Status, r.Error, r.Description)
		}
	}
}
