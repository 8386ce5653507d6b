package shop

import (
	"context"
	"crypto/rand"
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
				k, err = createKeyFile(path, k)
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

// createKeyFile writes k to path unless a key is there already, and
// returns the key the file holds. Instances sharing the directory may
// make a store's first key at the same time: the file is written whole
// under a temporary name and linked into place, which fails if another
// instance got there first, whose key is then used. A key file is never
// replaced.
func createKeyFile(path string, k *mandate.SigningKey) (*mandate.SigningKey, error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+rand.Text()+".tmp")
	if err := mandate.SaveSigningKey(tmp, k); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	err := os.Link(tmp, path)
	if errors.Is(err, os.ErrExist) {
		return mandate.LoadSigningKey(path)
	}
	if err != nil {
		return nil, err
	}
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
