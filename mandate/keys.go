package mandate

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// SigningKey is an ES256 (P-256) private key with its key id. It is what a
// platform, bridge or store signs mandates and merchant authorizations with.
// It is safe for concurrent use.
//
// Serialising a SigningKey with encoding/json yields the PUBLIC JWK only;
// the private key leaves only through MarshalPrivateJWK or MarshalPrivatePEM.
type SigningKey struct {
	priv   *ecdsa.PrivateKey
	kid    string
	signer jose.Signer
}

// GenerateSigningKey makes a new P-256 key whose kid is its RFC 7638
// thumbprint.
func GenerateSigningKey() (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mandate: generate key: %w", err)
	}
	return NewSigningKey(priv, "")
}

// NewSigningKey wraps a P-256 private key. An empty kid becomes the key's
// RFC 7638 thumbprint.
func NewSigningKey(priv *ecdsa.PrivateKey, kid string) (*SigningKey, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, errors.New("mandate: signing key must be an ECDSA P-256 private key")
	}
	if kid == "" {
		var err error
		if kid, err = Thumbprint(jose.JSONWebKey{Key: &priv.PublicKey}); err != nil {
			return nil, err
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       deterministicSigner{priv: priv, kid: kid},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("mandate: signer: %w", err)
	}
	return &SigningKey{priv: priv, kid: kid, signer: signer}, nil
}

// ParseSigningKey reads a private key from a JWK (JSON) or a PEM block
// (PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"). A JWK's kid is kept; a
// PEM key gets its thumbprint as kid.
func ParseSigningKey(data []byte) (*SigningKey, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(trimmed), &jwk); err != nil {
			return nil, fmt.Errorf("mandate: parse jwk: %w", err)
		}
		priv, ok := jwk.Key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("mandate: jwk is not an EC private key")
		}
		return NewSigningKey(priv, jwk.KeyID)
	}
	block, _ := pem.Decode([]byte(trimmed))
	if block == nil {
		return nil, errors.New("mandate: key is neither a JWK nor PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("mandate: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("mandate: parse pem: %w", err)
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("mandate: pem key is not ECDSA")
	}
	return NewSigningKey(priv, "")
}

// LoadSigningKey reads a key file written by SaveSigningKey (or any JWK/PEM
// file ParseSigningKey accepts).
func LoadSigningKey(path string) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mandate: %w", err)
	}
	return ParseSigningKey(data)
}

// SaveSigningKey writes k to path with mode 0600, as PEM (PKCS#8) when the
// name ends in .pem and as a private JWK otherwise. The file is replaced
// atomically so a crash never leaves half a key.
func SaveSigningKey(path string, k *SigningKey) error {
	var data []byte
	var err error
	if strings.EqualFold(filepath.Ext(path), ".pem") {
		data, err = k.MarshalPrivatePEM()
	} else {
		data, err = k.MarshalPrivateJWK()
	}
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return fmt.Errorf("mandate: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("mandate: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("mandate: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mandate: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mandate: %w", err)
	}
	return nil
}

// KeyID returns the key's kid.
func (k *SigningKey) KeyID() string { return k.kid }

// PublicKey returns the public half.
func (k *SigningKey) PublicKey() *ecdsa.PublicKey { return &k.priv.PublicKey }

// PrivateKey returns the private key, for callers (such as an RFC 9421
// signer) that sign with it directly.
func (k *SigningKey) PrivateKey() *ecdsa.PrivateKey { return k.priv }

// PublicJWK returns the public JWK with kid, "use":"sig" and "alg":"ES256",
// as published in a UCP profile's signing_keys.
func (k *SigningKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// JWKS returns a key set holding only the public JWK.
func (k *SigningKey) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.PublicJWK()}}
}

// MarshalJSON emits the public JWK, so a SigningKey dropped into a profile
// or a log by mistake never leaks the private scalar.
func (k *SigningKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(k.PublicJWK())
}

// MarshalPrivateJWK returns the private key as a JWK (with "d").
func (k *SigningKey) MarshalPrivateJWK() ([]byte, error) {
	return json.Marshal(jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
}

// MarshalPrivatePEM returns the private key as a PKCS#8 PEM block.
func (k *SigningKey) MarshalPrivatePEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("mandate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicPEM returns the public key as a PKIX PEM block.
func (k *SigningKey) MarshalPublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("mandate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a key's public
// part, base64url without padding: the kid convention of UCP and Web Bot
// Auth.
func Thumbprint(jwk jose.JSONWebKey) (string, error) {
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("mandate: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KeyResolver finds a verification key by kid. Stores resolve agent keys
// from the agent's UCP profile; platforms resolve store keys from the
// store's profile. Implementations must return only public keys and an
// error wrapping ErrKeyNotFound when the kid is unknown.
type KeyResolver interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// KeySet is a static set of public verification keys; it implements
// KeyResolver. Build one from a JWKS or a UCP profile with ParseKeySet.
type KeySet struct {
	keys []jose.JSONWebKey
}

// NewKeySet returns a set of the usable keys among keys, each reduced to
// its public part. Keys that cannot verify (see ParseKeySet) are dropped.
func NewKeySet(keys ...jose.JSONWebKey) *KeySet {
	s := &KeySet{}
	for _, k := range keys {
		if usable(k) {
			s.keys = append(s.keys, k.Public())
		}
	}
	return s
}

// ParseKeySet reads verification keys from any of the documents they are
// published in: a JWKS ({"keys":[...]}), a UCP profile (top-level
// "signing_keys" as in 2026-04-08, the draft name "keys", or either inside
// the "ucp" object), a bare array of JWKs, or a single JWK.
//
// Following UCP's verifier rules, keys marked "use":"enc", keys whose
// key_ops lack "verify", keys without a kid and keys of unsupported type or
// curve are skipped rather than failing the whole set. Private members are
// stripped.
func ParseKeySet(data []byte) (*KeySet, error) {
	var doc struct {
		keyLists
		Kty string    `json:"kty"`
		UCP *keyLists `json:"ucp"`
	}
	trimmed := strings.TrimSpace(string(data))
	var raws []json.RawMessage
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("mandate: parse keys: %w", err)
		}
	default:
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("mandate: parse keys: %w", err)
		}
		if doc.Kty != "" {
			raws = []json.RawMessage{data}
			break
		}
		lists := []json.RawMessage{doc.SigningKeys, doc.Keys}
		if doc.UCP != nil {
			lists = append(lists, doc.UCP.SigningKeys, doc.UCP.Keys)
		}
		for _, list := range lists {
			if len(list) == 0 || string(list) == "null" {
				continue
			}
			var more []json.RawMessage
			if err := json.Unmarshal(list, &more); err != nil {
				return nil, fmt.Errorf("mandate: parse keys: %w", err)
			}
			raws = append(raws, more...)
		}
	}
	s := &KeySet{}
	for _, raw := range raws {
		var ops struct {
			KeyOps []string `json:"key_ops"`
		}
		var k jose.JSONWebKey
		if json.Unmarshal(raw, &k) != nil || json.Unmarshal(raw, &ops) != nil {
			continue // unsupported kty/crv or malformed: skipped, per UCP
		}
		if len(ops.KeyOps) > 0 && !slices.Contains(ops.KeyOps, "verify") {
			continue
		}
		if usable(k) && !s.has(k.KeyID) {
			s.keys = append(s.keys, k.Public())
		}
	}
	return s, nil
}

// keyLists are the two names a UCP profile publishes its keys under:
// "signing_keys" (2026-04-08) and "keys" (draft and the Artos SDK).
type keyLists struct {
	Keys        json.RawMessage `json:"keys"`
	SigningKeys json.RawMessage `json:"signing_keys"`
}

func usable(k jose.JSONWebKey) bool {
	if k.KeyID == "" || k.Use == "enc" || !k.Valid() {
		return false
	}
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		return key.Curve == elliptic.P256() || key.Curve == elliptic.P384() || key.Curve == elliptic.P521()
	case *ecdsa.PrivateKey:
		return key.Curve == elliptic.P256() || key.Curve == elliptic.P384() || key.Curve == elliptic.P521()
	case ed25519.PublicKey, ed25519.PrivateKey:
		return true
	}
	return false
}

func (s *KeySet) has(kid string) bool {
	for i := range s.keys {
		if s.keys[i].KeyID == kid {
			return true
		}
	}
	return false
}

// Key returns the key with kid, or an error wrapping ErrKeyNotFound.
func (s *KeySet) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	for i := range s.keys {
		if s.keys[i].KeyID == kid {
			k := s.keys[i]
			return &k, nil
		}
	}
	return nil, fmt.Errorf("mandate: kid %q: %w", kid, ErrKeyNotFound)
}

// JWKS returns the set as a JSON Web Key Set (public keys only).
func (s *KeySet) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: slices.Clone(s.keys)}
}

// Len reports how many usable keys the set holds.
func (s *KeySet) Len() int { return len(s.keys) }

// deterministicSigner signs ES256 with RFC 6979 nonces (crypto/ecdsa with
// a nil random source) behind go-jose's OpaqueSigner seam: the same
// payload always gets the same signature, so a checkout served twice, or
// over REST and over MCP, is byte-identical. Security is unchanged: the
// nonce is derived from the key and the message, never reused across
// messages.
type deterministicSigner struct {
	priv *ecdsa.PrivateKey
	kid  string
}

var _ jose.OpaqueSigner = deterministicSigner{}

func (d deterministicSigner) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: &d.priv.PublicKey, KeyID: d.kid, Algorithm: string(jose.ES256), Use: "sig"}
}

func (d deterministicSigner) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256}
}

func (d deterministicSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.ES256 {
		return nil, fmt.Errorf("mandate: unsupported algorithm %s", alg)
	}
	digest := sha256.Sum256(payload)
	der, err := d.priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
		return nil, errors.New("mandate: malformed ECDSA signature")
	}
	// JWS wants the fixed-width r||s form (RFC 7518 §3.4), not DER.
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}
