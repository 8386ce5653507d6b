package ucpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/oauth2"
)

// TokenStore keeps a buyer's token between runs. BuyerTokenSource saves
// every token it obtains (each rotated refresh token included) before it
// hands out the new access token, and loads the stored token before each
// refresh so that processes sharing a store never spend a rotated refresh
// token twice.
//
// Load returns (nil, nil) when nothing is stored. Implementations must be
// safe for concurrent use and must not keep the pointer they are given
// or return one they keep.
type TokenStore interface {
	Load(ctx context.Context) (*oauth2.Token, error)
	Save(ctx context.Context, tok *oauth2.Token) error
}

// MemoryTokenStore is a TokenStore in memory, for tests and for processes
// that sign in again on each start. The zero value is empty and ready.
type MemoryTokenStore struct {
	mu  sync.Mutex
	tok *oauth2.Token
}

// Load returns a copy of the stored token, or nil.
func (m *MemoryTokenStore) Load(context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return buyerTokenCopy(m.tok), nil
}

// Save replaces the stored token with a copy of tok.
func (m *MemoryTokenStore) Save(_ context.Context, tok *oauth2.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tok = buyerTokenCopy(tok)
	return nil
}

// FileTokenStore keeps the token as JSON in the file at Path, readable by
// its owner only (mode 0600). Save writes a temporary file in the same
// directory, syncs it and renames it over Path, so a crash leaves either
// the old token or the new one, never half of one. A missing file is no
// token. Concurrent Saves within one process are serialised; across
// processes the last rename wins.
type FileTokenStore struct {
	// Path is the token file. Its directory is created (mode 0700) on
	// the first Save if missing.
	Path string

	mu sync.Mutex
}

// Load reads the token file; a missing file is (nil, nil).
func (f *FileTokenStore) Load(context.Context) (*oauth2.Token, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ucpclient: token store: %w", err)
	}
	var tok oauth2.Token
	if err := json.Unmarshal(b, &tok); err != nil {
		return nil, fmt.Errorf("ucpclient: token store %s: %w", f.Path, err)
	}
	return &tok, nil
}

// Save atomically replaces the token file with tok.
func (f *FileTokenStore) Save(_ context.Context, tok *oauth2.Token) (err error) {
	if tok == nil {
		return errors.New("ucpclient: token store: nil token")
	}
	b, err := json.Marshal(tok)
	if err != nil {
		return fmt.Errorf("ucpclient: token store: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ucpclient: token store: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("ucpclient: token store: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("ucpclient: token store: %w", err)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	// Make the rename itself durable; some systems cannot sync a
	// directory, which is not worth failing a save over.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func buyerTokenCopy(t *oauth2.Token) *oauth2.Token {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
