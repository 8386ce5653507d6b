package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/mandate"
)

// TestHelp: every command answers -h with its usage, its flags and the
// environment rule, and no error but flag.ErrHelp.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"dev", "-h"}, {"serve", "--help"}, {"migrate", "-h"}, {"keys", "generate", "-h"}, {"keys", "jwks", "-h"}} {
		var out bytes.Buffer
		err := run(context.Background(), args, io.Discard, &out)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "usage: ucpbridge "+args[0]) ||
			!strings.Contains(out.String(), "UCPBRIDGE_<FLAG>") || !strings.Contains(out.String(), "-") {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"dev", "serve", "client", "keys", "migrate"} {
		if !strings.Contains(out.String(), "\n  "+c) {
			t.Errorf("usage lacks %s:\n%s", c, out.String())
		}
	}
}

// TestEnvFlags: UCPBRIDGE_<FLAG> fills a flag not on the command line;
// the command line wins; a bad value names its variable.
func TestEnvFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"UCPBRIDGE_ADDR": "127.0.0.1:9", "UCPBRIDGE_DATA_DIR": "/from/env", "UCPBRIDGE_DRAIN_TIMEOUT": "3s"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addr := fs.String("addr", "default", "")
	dir := fs.String("data-dir", "default", "")
	drain := fs.Duration("drain-timeout", time.Second, "")
	other := fs.String("other", "default", "")
	if err := parseFlags(fs, []string{"--data-dir", "/from/flag"}, lookup); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:9" || *dir != "/from/flag" || *drain != 3*time.Second || *other != "default" {
		t.Fatalf("addr %q dir %q drain %v other %q", *addr, *dir, *drain, *other)
	}
	env["UCPBRIDGE_DRAIN_TIMEOUT"] = "soon"
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("drain-timeout", time.Second, "")
	if err := parseFlags(fs, nil, lookup); err == nil || !strings.Contains(err.Error(), "UCPBRIDGE_DRAIN_TIMEOUT") {
		t.Fatalf("%v", err)
	}
}

// TestServeFromEnv: serve takes its required settings from the
// environment (t.Setenv: not parallel).
func TestServeFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("UCPBRIDGE_ISSUER", "http://127.0.0.1")
	t.Setenv("UCPBRIDGE_DB", filepath.Join(dir, "db"))
	t.Setenv("UCPBRIDGE_KEYS_DIR", filepath.Join(dir, "keys"))
	t.Setenv("UCPBRIDGE_SEAL_KEY", filepath.Join(dir, "seal"))
	t.Setenv("UCPBRIDGE_ADDR", "127.0.0.1:1") // overridden by the flag
	t.Setenv("UCPBRIDGE_DYNAMIC_REGISTRATION", "true")
	s := startCmd(t, "serve", "--addr", "127.0.0.1:0")
	if code, _, b := do(t, "GET", s.base+"/healthz", ""); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	// --dynamic-registration (here from the environment) turns RFC 7591 on.
	if code, _, b := do(t, "GET", s.base+"/.well-known/oauth-authorization-server", ""); code != 200 || !strings.Contains(b, `"registration_endpoint"`) {
		t.Fatalf("%d %s", code, b)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServeOps: serve logs JSON, answers /healthz and /readyz on its
// listener, and serves /metrics only on --metrics-addr.
func TestServeOps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startCmd(t, "serve", "--addr", "127.0.0.1:0", "--issuer", "http://127.0.0.1", "--db", dir+"/db", "--keys-dir", dir+"/keys",
		"--seal-key", dir+"/seal", "--seed-demo", "--metrics-addr", "127.0.0.1:0")
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, b := do(t, "GET", s.base+p, ""); code != 200 {
			t.Fatalf("%s: %d %s", p, code, b)
		}
	}
	if code, _, _ := do(t, "GET", s.base+"/metrics", ""); code == 200 {
		t.Fatal("serve exposes /metrics on its public listener")
	}
	if _, _, b := do(t, "GET", s.base+"/.well-known/oauth-authorization-server", ""); strings.Contains(b, "registration_endpoint") {
		t.Fatalf("serve offers dynamic registration by default: %s", b)
	}
	// The metrics line comes second on stdout.
	re := regexp.MustCompile(`metrics on (http://127\.0\.0\.1:\d+/metrics)`)
	deadline := time.Now().Add(5 * time.Second)
	for !re.MatchString(s.banner.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no metrics URL in %q", s.banner.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mURL := re.FindStringSubmatch(s.banner.String())[1]
	if code, _, b := do(t, "GET", mURL, ""); code != 200 || !strings.Contains(b, `ucpbridge_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`) {
		t.Fatalf("metrics: %d %s", code, b)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	first, _, _ := strings.Cut(s.logs.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["msg"] == nil {
		t.Fatalf("serve logs are not JSON: %q", first)
	}
}

// TestReadyz: /readyz is 200 while the database answers and 503 once it
// is closed; /healthz stays 200.
func TestReadyz(t *testing.T) {
	t.Parallel()
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	h := opsMux(http.NotFoundHandler(), st.DB(), nil, log)
	get := func(p string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		return rec.Code
	}
	if get("/readyz") != 200 || get("/healthz") != 200 {
		t.Fatal("not ready with an open store")
	}
	st.Close()
	if c := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("closed store: readyz %d", c)
	}
	if get("/healthz") != 200 {
		t.Fatal("healthz depends on the database")
	}
	if get("/metrics") != 404 {
		t.Fatal("metrics served without a registry")
	}
}

// TestGracefulDrain: a request in flight when the command is told to
// stop (ctx cancelled, as SIGTERM does) still gets its full answer; new
// connections are refused; the command then returns cleanly.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	addr := strings.TrimPrefix(d.base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"query":"roses"}`
	// Expect: 100-continue: the server answers "100 Continue" only once
	// the handler reads the body, so the request is provably in flight.
	if _, err := io.WriteString(conn, "POST /s/flower-shop/catalog/search HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\n"+
		"Expect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "100") {
		t.Fatalf("interim response %q %v", status, err)
	}
	br.ReadString('\n') // the blank line after 100 Continue
	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }()
	// The listener closes: wait until a new connection is refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("returned before the in-flight request finished: %v", err)
	default:
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(b), "bouquet_roses") {
		t.Fatalf("in-flight request: %d %s", res.StatusCode, b)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestKeys: generate writes a 0600 private key (JWK or PEM) that is never
// overwritten and prints its public JWKS; jwks reads the file back to
// the same set, which go-jose parses as one public ES256 key.
func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, format := range []string{"jwk", "pem"} {
		out := filepath.Join(dir, "agent."+format)
		var printed bytes.Buffer
		if err := run(context.Background(), []string{"keys", "generate", "--format", format, "--out", out}, &printed, io.Discard); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(out)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", out, fi.Mode(), err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(printed.Bytes(), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() ||
			set.Keys[0].Algorithm != "ES256" || set.Keys[0].Use != "sig" {
			t.Fatalf("%s JWKS %s %v", format, printed.String(), err)
		}
		if strings.Contains(printed.String(), `"d"`) {
			t.Fatalf("private part printed: %s", printed.String())
		}
		k, err := mandate.LoadSigningKey(out)
		if err != nil {
			t.Fatal(err)
		}
		if tp, _ := mandate.Thumbprint(set.Keys[0]); tp != set.Keys[0].KeyID || k.KeyID() != tp {
			t.Fatalf("kid %q thumbprint %q file %q", set.Keys[0].KeyID, tp, k.KeyID())
		}
		var again bytes.Buffer
		if err := run(context.Background(), []string{"keys", "jwks", out}, &again, io.Discard); err != nil || again.String() != printed.String() {
			t.Fatalf("jwks of %s: %v\n%s\nwant\n%s", out, err, again.String(), printed.String())
		}
		before, _ := os.ReadFile(out)
		if err := run(context.Background(), []string{"keys", "generate", "--format", format, "--out", out}, io.Discard, io.Discard); err == nil {
			t.Fatal("an existing key file was replaced")
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
			t.Fatal("an existing key file was changed")
		}
	}
	// A chosen kid is kept in a JWK file.
	out := filepath.Join(dir, "named.jwk")
	var printed bytes.Buffer
	if err := run(context.Background(), []string{"keys", "generate", "--kid", "agent-2026", "--out", out}, &printed, io.Discard); err != nil ||
		!strings.Contains(printed.String(), `"kid": "agent-2026"`) {
		t.Fatalf("%v %s", err, printed.String())
	}
	if k, err := mandate.LoadSigningKey(out); err != nil || k.KeyID() != "agent-2026" {
		t.Fatalf("%v", err)
	}
	for _, bad := range [][]string{{"keys"}, {"keys", "generate"}, {"keys", "generate", "--format", "der", "--out", dir + "/x"},
		{"keys", "jwks"}, {"keys", "jwks", dir + "/missing"}, {"keys", "rotate"}} {
		if err := run(context.Background(), bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := os.Stat(dir + "/x"); err == nil {
		t.Error("a refused format left a file")
	}
}

// TestMigrate: migrate brings a new database to the current schema and
// reports the version; a second run finds nothing to do and reports the
// same version; dev then opens that database.
func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "ucpbridge.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--db", db}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`schema version (\d+)`).FindStringSubmatch(out.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("%q", out.String())
	}
	var again bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--db", db}, &again, io.Discard); err != nil || again.String() != out.String() {
		t.Fatalf("%v %q", err, again.String())
	}
	if err := run(context.Background(), []string{"migrate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("migrate without --db accepted")
	}
	d := startCmd(t, "dev", "--addr", "127.0.0.1:0", "--bridge-addr", "127.0.0.1:0", "--data-dir", dir)
	if code, _, _ := do(t, "GET", d.base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}
}
