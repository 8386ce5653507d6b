package guard

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// policyTable renders the operations table as README.md shows it.
func policyTable() string {
	var b strings.Builder
	b.WriteString("| Operation | Who may call | Scopes a bearer needs | Key + bearer |\n|---|---|---|---|\n")
	for _, op := range Operations() {
		r := policy[op]
		who := "anyone, anonymous included"
		if len(r.Kinds) > 0 {
			var ks []string
			for _, k := range r.Kinds {
				ks = append(ks, string(k))
			}
			who = strings.Join(ks, ", ")
		}
		var scopes []string
		kinds := make([]Kind, 0, len(r.Scopes))
		for k := range r.Scopes {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			scopes = append(scopes, fmt.Sprintf("%s: `%s`", k, strings.Join(r.Scopes[k], "` or `")))
		}
		dual := "allowed (the key decides)"
		switch {
		case r.BuyerBound:
			dual = "refused (`credential_conflict`)"
		case len(r.Kinds) > 0 && !slices.Contains(r.Kinds, KindPlatform):
			// The key makes the caller a platform, which the row refuses.
			dual = "refused (`forbidden`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", op, who, cmpOr(strings.Join(scopes, "; "), "none"), dual)
	}
	return b.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestPolicyTableInREADME: README.md shows the table the guard enforces,
// row for row (regenerate with `go test ./authserver/guard -run README -v`
// and paste the logged table when the policy changes).
func TestPolicyTableInREADME(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	readme, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := policyTable()
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README.md does not show the guard's operations table; it should contain:\n%s", want)
	}
}
