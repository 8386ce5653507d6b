package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		want string // "" public; "*" any refusal; else a substring of the class
	}{
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"127.0.0.1", ClassLoopback},
		{"127.255.0.9", ClassLoopback},
		{"::1", ClassLoopback},
		{"::ffff:127.0.0.1", ClassLoopback},
		{"169.254.169.254", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"fc00::1", "unique local"},
		{"fd12:3456::1", "unique local"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:100.64.0.1", "CGNAT"},
		{"0.0.0.0", "this-network"},
		{"0.1.2.3", "this-network"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.0.8", "IETF"},
		{"198.18.0.1", "benchmarking"},
		{"192.0.2.1", "documentation"},
		{"::", "unspecified"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"ff02::1", "multicast"},
		{"2001:db8::1", "documentation"},
		{"64:ff9b::a00:1", "private"},      // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", ClassLoopback}, // NAT64 of 127.0.0.1
		{"::a00:1", "*"},                   // deprecated IPv4-compatible form
		{"2002:a00:1::1", "*"},             // 6to4 of 10.0.0.1

		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"100.63.255.255", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2606:4700::1111", ""},
		{"2a00:1450:4001::200e", ""},
	} {
		a := netip.MustParseAddr(tc.addr)
		got := Class(a)
		switch {
		case tc.want == "" && got != "":
			t.Errorf("%s: refused as %q, want public", tc.addr, got)
		case tc.want == "*" && got == "":
			t.Errorf("%s: public, want refused", tc.addr)
		case tc.want != "" && tc.want != "*" && !strings.Contains(got, tc.want):
			t.Errorf("%s: class %q, want %q", tc.addr, got, tc.want)
		}
		if Public(a) != (got == "") {
			t.Errorf("%s: Public = %v disagrees with Class %q", tc.addr, Public(a), got)
		}
	}
	if Public(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		network, address string
		strictOK         bool
		loopbackOK       bool
	}{
		{"tcp4", "8.8.8.8:443", true, true},
		{"tcp6", "[2606:4700::1111]:443", true, true},
		{"tcp4", "127.0.0.1:443", false, true},
		{"tcp6", "[::1]:443", false, true},
		{"tcp6", "[::ffff:127.0.0.1]:443", false, true},
		{"tcp4", "10.0.0.1:443", false, false},
		{"tcp4", "100.64.0.1:443", false, false},
		{"tcp4", "169.254.169.254:80", false, false},
		{"tcp4", "0.0.0.0:80", false, false}, // reaches localhost on Linux, but is not "loopback"
		{"tcp6", "[::]:80", false, false},
		{"tcp6", "[fd00::1]:443", false, false},
		{"tcp6", "[::ffff:192.168.1.1]:443", false, false},
		{"udp4", "8.8.8.8:53", false, false},
		{"tcp4", "not-an-address", false, false},
	} {
		err := Control(tc.network, tc.address, nil)
		if (err == nil) != tc.strictOK {
			t.Errorf("Control(%s, %s) = %v, want ok=%v", tc.network, tc.address, err, tc.strictOK)
		}
		err = LoopbackControl(tc.network, tc.address, nil)
		if (err == nil) != tc.loopbackOK {
			t.Errorf("LoopbackControl(%s, %s) = %v, want ok=%v", tc.network, tc.address, err, tc.loopbackOK)
		}
	}
}

// The guard must hold for a real dial, where Control sees the resolved
// address rather than the name.
func TestControlRefusesRealDial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip("no IPv4 loopback:", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	d := &net.Dialer{Control: Control}
	_, err = d.DialContext(ctx, "tcp", ln.Addr().String())
	var blocked *BlockedError
	if !errors.As(err, &blocked) || blocked.Class != ClassLoopback {
		t.Fatalf("strict dial to %s: %v, want a loopback *BlockedError", ln.Addr(), err)
	}

	d = &net.Dialer{Control: LoopbackControl}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("LoopbackControl dial: %v", err)
	}
	c.Close()
}

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost":        true,
		"LocalHost":        true,
		"127.0.0.1":        true,
		"127.1.2.3":        true,
		"::1":              true,
		"[::1]":            true,
		"::ffff:127.0.0.1": true,
		"localhost.":       false,
		"foo.localhost":    false,
		"0.0.0.0":          false,
		"10.0.0.1":         false,
		"example.com":      false,
		"127.0.0.1.nip.io": false,
		"":                 false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw      string
		loopback bool
		want     string // "" accepted
	}{
		{"https://a.example/p?q=1", false, ""},
		{"http://127.0.0.1:8080/p", true, ""},
		{"http://localhost/p", true, ""},
		{"http://127.0.0.1:8080/p", false, "must use https"},
		{"http://a.example/p", true, "must use https"},
		{"ftp://a.example/p", false, "must use https"},
		{"", false, "must use https"},
		{"https:///p", false, "must have a host"},
		{"https:a.example", false, "must have a host"},
		{"https://u@a.example/p", false, "user information"},
		{"https://a.example/p#", false, "fragment"},
		{"https://a.example/a b", false, "spaces"},
		{"https://ä.example/", false, "non-ASCII"},
		{"https://a.example/" + strings.Repeat("x", 30), false, "longer than 32 bytes"},
		{"https://a.example/%zz", false, "not a valid URL"},
	} {
		u, err := CheckURL(tc.raw, 32, tc.loopback)
		problem := ""
		var ue *URLError
		if errors.As(err, &ue) {
			problem = ue.Problem
		} else if err != nil {
			t.Fatalf("CheckURL(%q): %T is not a *URLError", tc.raw, err)
		}
		if !strings.Contains(problem, tc.want) || (tc.want == "") != (problem == "") || (problem == "") != (u != nil) {
			t.Errorf("CheckURL(%q, loopback=%v) = %v, %q; want %q", tc.raw, tc.loopback, u, problem, tc.want)
		}
	}
}
