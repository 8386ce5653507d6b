package shop_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
)

// TestFileKeysSharedDirNeverReplaced (review 12): serve instances share
// the stores' key directory. Two that make a store's first key at once
// must end up with the same key: a key file is created once and never
// replaced, or each instance would sign with its own key while the other
// publishes a different one.
func TestFileKeysSharedDirNeverReplaced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := &shop.FileKeys{Dir: dir}, &shop.FileKeys{Dir: dir}
	for i := range 40 {
		slug := fmt.Sprintf("store-%d", i)
		var wg sync.WaitGroup
		kids := make([]string, 2)
		for j, f := range []*shop.FileKeys{a, b} {
			wg.Go(func() {
				k, err := f.ShopKey(t.Context(), slug)
				if err != nil {
					t.Error(err)
					return
				}
				kids[j] = k.KeyID()
			})
		}
		wg.Wait()
		if kids[0] != kids[1] {
			t.Fatalf("%s: two instances hold different keys (%s, %s)", slug, kids[0], kids[1])
		}
		// And what is on disk is what they hold.
		c := &shop.FileKeys{Dir: dir}
		if k, err := c.ShopKey(t.Context(), slug); err != nil || k.KeyID() != kids[0] {
			t.Fatalf("%s: file holds another key than the instances (%v)", slug, err)
		}
	}
}
