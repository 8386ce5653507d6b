package oauth

import (
	"strings"
	"testing"
)

// TestProductionHashCost: the production Argon2id parameters (RFC 9106's
// memory-constrained option), whatever the tests hash with.
func TestProductionHashCost(t *testing.T) {
	t.Parallel()
	if argonTime != 3 || argonMemory != 64*1024 || argonThreads != 2 {
		t.Fatalf("argon2id t=%d m=%d p=%d", argonTime, argonMemory, argonThreads)
	}
	h := HashPassword("pw")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=2$") || !CheckPassword(h, "pw") || CheckPassword(h, "px") {
		t.Fatalf("test-cost hash %s", h)
	}
	// What production hashes with, and that such a hash verifies.
	if hashCost.time != 1 || argonTime != 3 {
		t.Fatal("export_test.go no longer lowers the cost, or the production cost changed")
	}
	if h := hashPassword("pw", make([]byte, 16), argonTime, argonMemory); !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") ||
		!CheckPassword(h, "pw") || CheckPassword(h, "px") {
		t.Fatalf("production hash %s", h)
	}
}
