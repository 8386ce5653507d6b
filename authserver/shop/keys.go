package shop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// FileKeys keeps each store's signing key in Dir/<slug>.jwk (mode 0600),
// generated on first use.
type FileKeys struct {
	Dir string

	mu   sync.Mutex
	keys map[string]*mandate.SigningKey
}

// ShopKey implements KeySource.
func (f *FileKeys) ShopKey(_ context.Context, slug string) (*mandate.SigningKey, error) {
	if !slugRE.MatchString(slug) {
		return nil, fmt.Errorf("shop: bad store slug %q", slug)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := f.keys[slug]; k != nil {
		return k, nil
	}
	path := filepath.Join(f.Dir, slug+".jwk")
	k, err := mandate.LoadSigningKey(path)
	if errors.Is(err, os.ErrNotExist) {
		if k, err = mandate.GenerateSigningKey(); err == nil {
			if err = os.MkdirAll(f.Dir, 0o700); err == nil {
				err = mandate.SaveSigningKey(path, k)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("shop: key for %s: %w", slug, err)
	}
	if f.keys == nil {
		f.keys = map[string]*mandate.SigningKey{}
	}
	f.keys[slug] = k
	return k, nil
}

// MemoryKeys generates a key per store on first use and keeps it in
// memory (tests, throwaway servers).
type MemoryKeys struct {
	mu   sync.Mutex
	keys map[string]*mandate.SigningKey
}

// ShopKey implements KeySource.
func (m *MemoryKeys) ShopKey(_ context.Context, slug string) (*mandate.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.keys[slug]; k != nil {
		return k, nil
	}
	k, err := mandate.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	if m.keys == nil {
		m.keys = map[string]*mandate.SigningKey{}
	}
	m.keys[slug] = k
	return k, nil
}
