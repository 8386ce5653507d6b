package mandate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// RFC 9421 Appendix B.1.3 test-key-ecc-p256; its RFC 7638 thumbprint was
// computed independently with go-jose and Node.
const rfcP256 = `{"kty":"EC","crv":"P-256","x":"qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA","y":"Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0","d":"UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs"}`

func TestThumbprintKid(t *testing.T) {
	t.Parallel()
	k, err := mandate.ParseSigningKey([]byte(strings.Replace(rfcP256, `"kty"`, `"kid":"","kty"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID() != "ydQXMtvbsOsZyFir-Y7A8t7fKEM1gbKPvyFkdpu4fvI" {
		t.Fatalf("kid %s", k.KeyID())
	}
}

func TestKeysNeverLeakPrivatePart(t *testing.T) {
	t.Parallel()
	k, _ := mandate.GenerateSigningKey()
	pubJSON, _ := json.Marshal(k)
	jwks, _ := json.Marshal(k.JWKS())
	set, _ := json.Marshal(mandate.NewKeySet(jose.JSONWebKey{Key: k.PrivateKey(), KeyID: "x"}).JWKS())
	for name, b := range map[string][]byte{"MarshalJSON": pubJSON, "JWKS": jwks, "KeySet from private": set} {
		if strings.Contains(string(b), `"d"`) {
			t.Errorf("%s leaks d: %s", name, b)
		}
	}
	priv, _ := k.MarshalPrivateJWK()
	if !strings.Contains(string(priv), `"d"`) {
		t.Fatal("private JWK lacks d")
	}
	if !strings.Contains(string(pubJSON), `"kid":"`+k.KeyID()+`"`) || !strings.Contains(string(pubJSON), `"alg":"ES256"`) {
		t.Fatalf("public JWK %s", pubJSON)
	}
	pem, _ := k.MarshalPublicPEM()
	if !strings.Contains(string(pem), "PUBLIC KEY") {
		t.Fatal(string(pem))
	}
}

func TestSaveLoadSigningKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, _ := mandate.GenerateSigningKey()
	for _, name := range []string{"agent.json", "agent.pem"} {
		path := filepath.Join(dir, name)
		if err := mandate.SaveSigningKey(path, k); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, st.Mode())
		}
		back, err := mandate.LoadSigningKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if !back.PrivateKey().Equal(k.PrivateKey()) || back.KeyID() != k.KeyID() {
			t.Errorf("%s: round trip changed the key", name)
		}
	}
	// SEC 1 "EC PRIVATE KEY" PEM (openssl ecparam output) is read too.
	sec1 := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49\nAwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM\n4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==\n-----END EC PRIVATE KEY-----\n"
	sk, err := mandate.ParseSigningKey([]byte(sec1))
	if err != nil || sk.KeyID() != "ydQXMtvbsOsZyFir-Y7A8t7fKEM1gbKPvyFkdpu4fvI" {
		t.Fatalf("SEC1 PEM: %v %v", sk, err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, data := range map[string]string{
		"public jwk":  `{"kty":"EC","crv":"P-256","x":"qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA","y":"Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0"}`,
		"garbage":     "hello",
		"bad pem":     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"broken json": "{",
	} {
		if _, err := mandate.ParseSigningKey([]byte(data)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := mandate.NewSigningKey(p384, ""); err == nil {
		t.Error("P-384 accepted as an ES256 signing key")
	}
}

func TestParseKeySet(t *testing.T) {
	t.Parallel()
	a, _ := mandate.GenerateSigningKey()
	b, _ := mandate.GenerateSigningKey()
	aj, _ := json.Marshal(a.PublicJWK())
	bj, _ := json.Marshal(b.PublicJWK())
	privA, _ := a.MarshalPrivateJWK()
	enc := strings.Replace(string(bj), `"use":"sig"`, `"use":"enc"`, 1)
	signOnly := strings.Replace(string(bj), `"use":"sig"`, `"key_ops":["sign"]`, 1)
	withVerify := strings.Replace(string(bj), `"use":"sig"`, `"key_ops":["verify"]`, 1)
	rsa := `{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}`
	for name, tc := range map[string]struct {
		doc  string
		want []string
	}{
		"jwks":                      {`{"keys":[` + string(aj) + `]}`, []string{a.KeyID()}},
		"2026-04-08 profile":        {`{"ucp":{"version":"2026-04-08"},"signing_keys":[` + string(aj) + `,` + string(bj) + `]}`, []string{a.KeyID(), b.KeyID()}},
		"draft keys in ucp":         {`{"ucp":{"version":"2026-04-08","keys":[` + string(aj) + `]}}`, []string{a.KeyID()}},
		"both names, deduplicated":  {`{"signing_keys":[` + string(aj) + `],"keys":[` + string(aj) + `]}`, []string{a.KeyID()}},
		"bare array":                {`[` + string(aj) + `]`, []string{a.KeyID()}},
		"single jwk":                {string(aj), []string{a.KeyID()}},
		"enc key skipped":           {`{"keys":[` + enc + `]}`, nil},
		"sign-only key_ops skipped": {`{"keys":[` + signOnly + `]}`, nil},
		"verify key_ops kept":       {`{"keys":[` + withVerify + `]}`, []string{b.KeyID()}},
		"rsa and junk skipped":      {`{"keys":[` + rsa + `,{"kty":"EC","kid":"bad","crv":"P-256","x":"AA","y":"AA"},{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`, nil},
		"no kid skipped":            {`{"keys":[{"kty":"EC","crv":"P-256","x":"qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA","y":"Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0"}]}`, nil},
		"private key published":     {`{"keys":[` + string(privA) + `]}`, []string{a.KeyID()}},
	} {
		s, err := mandate.ParseKeySet([]byte(tc.doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.Len() != len(tc.want) {
			t.Errorf("%s: %d keys, want %d", name, s.Len(), len(tc.want))
		}
		for _, kid := range tc.want {
			k, err := s.Key(context.Background(), kid)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if !k.IsPublic() {
				t.Errorf("%s: private key returned", name)
			}
		}
	}
	s, _ := mandate.ParseKeySet([]byte(`{"keys":[]}`))
	if _, err := s.Key(context.Background(), "x"); !errors.Is(err, mandate.ErrKeyNotFound) {
		t.Fatalf("missing kid: %v", err)
	}
	if _, err := mandate.ParseKeySet([]byte(`{"keys":{}}`)); err == nil {
		t.Fatal("keys object accepted")
	}
}
