package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Opaque credential prefixes. A prefix tells a log reader or a secret
// scanner what leaked; the 256 random bits after it are the secret.
const (
	prefixAccess  = "ucpb_at_"
	prefixRefresh = "ucpb_rt_"
	prefixCode    = "ucpb_ac_"
	prefixSecret  = "ucpb_cs_"
)

// newToken returns prefix + 32 random bytes (base64url).
func newToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// NewClientSecret returns a fresh client secret and the hash to store.
func NewClientSecret() (secret string, hash []byte) {
	secret = newToken(prefixSecret)
	return secret, hashToken(secret)
}

// HashClientSecret returns the hash a store keeps for a client secret.
func HashClientSecret(secret string) []byte { return hashToken(secret) }

// hashToken is how codes, tokens and client secrets are stored: SHA-256.
// They carry 256 bits of entropy, so a slow KDF would add cost and no
// safety (hydra's PBKDF2 per request is the example not to follow).
func hashToken(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func equalHash(a, b []byte) bool { return len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1 }

// sealer encrypts the token response kept for the refresh grace window.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("oauth: SealKey must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal binds the ciphertext to ad (the refresh token hash it belongs to).
func (s *sealer) seal(plain, ad []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, ad)
}

func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed response too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], ad)
}

// Argon2id parameters for buyer passwords (RFC 9106 second recommended
// option, memory-constrained: 64 MiB, 3 passes).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword returns a PHC-format Argon2id hash of password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	return hashPassword(password, salt, hashCost.time, hashCost.memory)
}

func hashPassword(password string, salt []byte, t, m uint32) string {
	key := argon2.IDKey([]byte(password), salt, t, m, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// hashCost is what HashPassword spends: the parameters above. Only this
// package's tests lower it (export_test.go), once, before any test runs:
// hundreds of sign-ins at 64 MiB each would dominate the suite, and
// CheckPassword reads the cost from each stored hash anyway.
var hashCost = struct{ time, memory uint32 }{argonTime, argonMemory}

// argonSlots bounds concurrent Argon2 runs: each takes argonMemory
// (64 MiB), so an unbounded burst of sign-ins could exhaust memory.
var argonSlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// CheckPassword verifies password against a HashPassword string, reading
// the parameters from the hash so they can be raised later (up to twice
// today's cost; a stored hash must not be able to demand gigabytes).
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v, m, t, p int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m <= 0 || m > 2*argonMemory || t <= 0 || t > 2*argonTime || p <= 0 || p > 2*argonThreads {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	if len(want) > 64 || len(salt) > 64 {
		return false
	}
	argonSlots <- struct{}{}
	got := argon2.IDKey([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	<-argonSlots
	return subtle.ConstantTimeCompare(got, want) == 1
}
