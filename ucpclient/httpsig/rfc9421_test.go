package httpsig_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// RFC 9421 Appendix B.1 test keys (JWK form of the PEMs in B.1.3 and B.1.4).
const (
	rfcP256JWK    = `{"kty":"EC","crv":"P-256","kid":"test-key-ecc-p256","x":"qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA","y":"Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0","d":"UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs"}`
	rfcEd25519JWK = `{"kty":"OKP","crv":"Ed25519","kid":"test-key-ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs","d":"n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"}`
	rfcCreated    = 1618884473
)

// RFC 9421 Appendix B.2 test-request and test-response.
const (
	testRequest = "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\r\n" +
		"Content-Length: 18\r\n\r\n" +
		`{"hello": "world"}`
	testResponse = "HTTP/1.1 200 OK\r\n" +
		"Date: Tue, 20 Apr 2021 02:07:56 GMT\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Digest: sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:\r\n" +
		"Content-Length: 23\r\n\r\n" +
		`{"message": "good dog"}`
	// B.3: the TLS-terminating proxy's request to the internal service.
	proxyRequest = "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n" +
		"Host: service.internal.example\r\n" +
		"Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: 18\r\n" +
		"Client-Cert: :MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:\r\n" +
		"Signature-Input: ttrp=(\"@path\" \"@query\" \"@method\" \"@authority\" \"client-cert\");created=1618884473;keyid=\"test-key-ecc-p256\"\r\n" +
		"Signature: ttrp=:xVMHVpawaAC/0SbHrKRs9i8I3eOs5RtTMGCWXm/9nvZzoHsIg6Mce9315T6xoklyy0yzhD9ah4JHRwMLOgmizw==:\r\n\r\n" +
		`{"hello": "world"}`
)

// keys is a KeyResolver over a map, as a test double for a UCP profile.
type keys map[string]*jose.JSONWebKey

func (k keys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	if j, ok := k[kid]; ok {
		pub := j.Public()
		return &pub, nil
	}
	return nil, fmt.Errorf("no key %q", kid)
}

func parseJWK(t testing.TB, s string) *jose.JSONWebKey {
	t.Helper()
	var j jose.JSONWebKey
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		t.Fatal(err)
	}
	return &j
}

func rfcKeys(t testing.TB) keys {
	return keys{"test-key-ecc-p256": parseJWK(t, rfcP256JWK), "test-key-ed25519": parseJWK(t, rfcEd25519JWK)}
}

func readRequest(t testing.TB, raw string) (*http.Request, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.URL.Scheme, r.URL.Host = "https", r.Host
	return r, body
}

func atRFCTime() time.Time { return time.Unix(rfcCreated, 0) }

// TestRFC9421B26Reproduced signs the B.2.6 request with the Ed25519 test
// key and must produce the RFC's signature byte for byte (Ed25519 is
// deterministic). httpsign stamps created from the wall clock, so the test
// runs in a synctest bubble whose fake clock is moved to the RFC's time.
func TestRFC9421B26Reproduced(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Until(atRFCTime()))
		req, body := readRequest(t, testRequest)
		key := parseJWK(t, rfcEd25519JWK).Key.(ed25519.PrivateKey)
		s, err := httpsig.NewSigner(key, "test-key-ed25519", &httpsig.SignerOptions{
			Label:      "sig-b26",
			Components: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SignRequest(req, body); err != nil {
			t.Fatal(err)
		}
		wantInput := `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
		wantSig := `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`
		if got := req.Header.Get("Signature-Input"); got != wantInput {
			t.Errorf("Signature-Input\n got %s\nwant %s", got, wantInput)
		}
		if got := req.Header.Get("Signature"); got != wantSig {
			t.Errorf("Signature\n got %s\nwant %s", got, wantSig)
		}
	})
}

func TestRFC9421VectorsVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// B.2.6 as published.
	req, body := readRequest(t, testRequest)
	req.Header.Set("Signature-Input", `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	req.Header.Set("Signature", `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`)
	v := &httpsig.Verifier{Keys: rfcKeys(t), Now: atRFCTime,
		Required: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"}}
	if _, err := v.VerifyRequest(ctx, req, body); err != nil {
		t.Errorf("B.2.6: %v", err)
	}

	// B.2.4: an ECDSA P-256 response signature with a sha-512 digest.
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(testResponse)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rbody, _ := io.ReadAll(res.Body)
	res.Header.Set("Signature-Input", `sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"`)
	res.Header.Set("Signature", `sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:`)
	rv := &httpsig.Verifier{Keys: rfcKeys(t), Now: atRFCTime}
	r, err := rv.VerifyResponse(ctx, res, rbody)
	if err != nil {
		t.Errorf("B.2.4: %v", err)
	} else if r.Label != "sig-b24" || r.KeyID != "test-key-ecc-p256" || !r.Created.Equal(atRFCTime()) {
		t.Errorf("B.2.4 result %+v", r)
	}
	// The same response with its body changed fails on the digest.
	if _, err := rv.VerifyResponse(ctx, res, []byte(`{"message": "bad dog"}`)); err == nil || !strings.Contains(err.Error(), "digest_mismatch") {
		t.Errorf("B.2.4 tampered body: %v", err)
	}

	// B.3: the proxy's signature over @path @query @method @authority
	// client-cert.
	preq, pbody := readRequest(t, proxyRequest)
	pv := &httpsig.Verifier{Keys: rfcKeys(t), Now: atRFCTime,
		Required: []string{"@path", "@query", "@method", "@authority", "client-cert"}}
	if _, err := pv.VerifyRequest(ctx, preq, pbody); err != nil {
		t.Errorf("B.3: %v", err)
	}
	preq.Header.Set("Client-Cert", ":AAAA:")
	if _, err := pv.VerifyRequest(ctx, preq, pbody); err == nil {
		t.Error("B.3 with another client-cert verified")
	}
}

func TestRFCKeyTypes(t *testing.T) {
	t.Parallel()
	if _, ok := parseJWK(t, rfcP256JWK).Key.(*ecdsa.PrivateKey); !ok {
		t.Fatal("P-256 test key did not parse as a private key")
	}
}
