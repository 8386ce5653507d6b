package mandate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ucpbridge/ucpbridge/mandate"
)

// nodeJose runs .ci/interop/jose.mjs (panva/jose, the JOSE library the
// Node ecosystem, Artos included, verifies with). It skips without node
// unless UCPBRIDGE_REQUIRE_INTEROP is set.
func nodeJose(t *testing.T, cmd string, in, out any) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", ".ci", "interop")
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "jose"))
	if errNode != nil || errMods != nil {
		if os.Getenv("UCPBRIDGE_REQUIRE_INTEROP") != "" {
			t.Fatalf("interop required but unavailable (node: %v, modules: %v)", errNode, errMods)
		}
		t.Skip("node or .ci/interop/node_modules missing: run `npm ci` in .ci/interop")
	}
	b, _ := json.Marshal(in)
	c := exec.Command("node", filepath.Join(dir, "jose.mjs"), cmd)
	c.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	res, err := c.Output()
	if err != nil {
		t.Fatalf("node jose %s: %v: %s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("node answer %q: %v", res, err)
	}
}

func TestInteropNodeJose(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	jwks := func(k *mandate.SigningKey) any { return k.JWKS() }

	// Our compact mandate verifies in panva/jose with the published JWKS.
	tok, _ := mandate.MintCheckoutMandate(f.agent, f.params())
	var v struct {
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
		Payload string `json:"payload"`
	}
	nodeJose(t, "verify-compact", map[string]any{"token": tok, "jwks": jwks(f.agent), "algs": []string{"ES256"}}, &v)
	if !v.OK || v.Payload != payloadOf(t, tok) {
		t.Fatalf("panva/jose refused our mandate: %s", v.Error)
	}
	// Our detached merchant_authorization verifies there too.
	payload, _ := mandate.Canonicalize([]byte(checkoutJSON))
	nodeJose(t, "verify-detached", map[string]any{"token": merchantAuth(t, f.checkout), "payload": string(payload), "jwks": jwks(f.store)}, &v)
	if !v.OK {
		t.Fatalf("panva/jose refused our merchant_authorization: %s", v.Error)
	}
	// A merchant_authorization made by panva/jose verifies here.
	priv, _ := f.store.MarshalPrivateJWK()
	var privMap map[string]any
	json.Unmarshal(priv, &privMap)
	var signed struct {
		Token string `json:"token"`
	}
	nodeJose(t, "sign-detached", map[string]any{"payload": string(payload), "jwk": privMap, "kid": f.store.KeyID()}, &signed)
	checkout := setMerchantAuth(t, []byte(checkoutJSON), signed.Token)
	if err := mandate.VerifyMerchantAuthorization(context.Background(), checkout, f.storeKeys); err != nil {
		t.Fatalf("we refuse panva/jose's merchant_authorization: %v", err)
	}
	// And an Artos-shaped mandate signed by panva/jose verifies here.
	agentPriv, _ := f.agent.MarshalPrivateJWK()
	json.Unmarshal(agentPriv, &privMap)
	claims := `{"checkout":` + string(f.checkout) + `,"merchant":"flower-shop","jti":"m_node","exp":` + jsonInt(f.now.Unix()+300) + `}`
	nodeJose(t, "sign-compact", map[string]any{"payload": claims, "jwk": privMap, "kid": f.agent.KeyID()}, &signed)
	if _, err := mandate.VerifyCheckoutMandate(context.Background(), signed.Token, f.opts()); err != nil {
		t.Fatalf("we refuse panva/jose's mandate: %v", err)
	}
}
