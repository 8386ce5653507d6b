package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealKeyNeverOverwritten: a seal key file is created once; a file in
// the wrong form stops the start instead of being replaced (instances
// sharing it would silently stop sharing a key).
func TestSealKeyNeverOverwritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	k1, err := loadOrCreateKey(path)
	if err != nil || len(k1) != 32 {
		t.Fatalf("create: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	k2, err := loadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v", err)
	}
	hex := filepath.Join(dir, "hex.key")
	operator := []byte("4f1c9a0e7b2d5c3a8e6f1b0d9c7a5e3f2b4d6c8a0e1f3b5d7c9a2e4f6b8d0c1a")
	os.WriteFile(hex, operator, 0o600)
	if _, err := loadOrCreateKey(hex); err == nil || !strings.Contains(err.Error(), "32") {
		t.Fatalf("a 64-byte key file was accepted: %v", err)
	}
	if after, _ := os.ReadFile(hex); !bytes.Equal(after, operator) {
		t.Fatal("the operator's key file was overwritten")
	}
	if _, err := loadOrCreateKey(dir); err == nil {
		t.Fatal("an unreadable key path was replaced")
	}
}
