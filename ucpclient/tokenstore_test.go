package ucpclient

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestFileTokenStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	s := &FileTokenStore{Path: filepath.Join(dir, "buyer.json")}
	if tok, err := s.Load(t.Context()); tok != nil || err != nil {
		t.Fatalf("missing file: %v %v, want no token", tok, err)
	}
	exp := time.Now().Add(time.Hour).Round(time.Second)
	want := &oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Expiry: exp}
	if err := s.Save(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(t.Context())
	if err != nil || got.AccessToken != "at" || got.RefreshToken != "rt" || got.TokenType != "Bearer" || !got.Expiry.Equal(exp) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	fi, err := os.Stat(s.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", fi.Mode(), err)
	}
	// Overwrites replace the file whole and leave no temporary behind.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := s.Save(t.Context(), &oauth2.Token{AccessToken: "at", RefreshToken: "rt-" + string(rune('a'+i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if tok, err := s.Load(t.Context()); err != nil || tok.AccessToken != "at" {
		t.Fatalf("after concurrent saves: %+v %v", tok, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the token file", len(ents))
	}
	// A pre-existing file with loose permissions comes back 0600: the
	// rename installs a new inode.
	os.Chmod(s.Path, 0o644)
	if err := s.Save(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after overwrite %v", fi.Mode())
	}
	// A corrupt file is an error, not an empty store.
	os.WriteFile(s.Path, []byte("{"), 0o600)
	if _, err := s.Load(t.Context()); err == nil {
		t.Fatal("corrupt file loaded")
	}
}

func TestFileTokenStoreFailedSaveKeepsOld(t *testing.T) {
	dir := t.TempDir()
	s := &FileTokenStore{Path: filepath.Join(dir, "buyer.json")}
	if err := s.Save(t.Context(), &oauth2.Token{AccessToken: "old", RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if err := s.Save(t.Context(), &oauth2.Token{AccessToken: "new"}); err == nil {
		t.Fatal("save into a read-only directory succeeded")
	}
	if tok, _ := s.Load(t.Context()); tok == nil || tok.AccessToken != "old" {
		t.Fatalf("old token damaged: %+v", tok)
	}
}

func TestMemoryTokenStoreCopies(t *testing.T) {
	var s MemoryTokenStore
	tok := &oauth2.Token{AccessToken: "a"}
	s.Save(t.Context(), tok)
	tok.AccessToken = "changed"
	got, _ := s.Load(t.Context())
	got.RefreshToken = "x"
	again, _ := s.Load(t.Context())
	if again.AccessToken != "a" || again.RefreshToken != "" {
		t.Fatalf("store shares its token: %+v", again)
	}
}
