package mandate

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text. An
// empty want means the value has no JSON form and must be refused.
var appendixB = []struct {
	bits    uint64
	want    string
	comment string
}{
	{0x0000000000000000, "0", "Zero"},
	{0x8000000000000000, "0", "Minus zero"},
	{0x0000000000000001, "5e-324", "Min pos number"},
	{0x8000000000000001, "-5e-324", "Min neg number"},
	{0x7fefffffffffffff, "1.7976931348623157e+308", "Max pos number"},
	{0xffefffffffffffff, "-1.7976931348623157e+308", "Max neg number"},
	{0x4340000000000000, "9007199254740992", "Max pos int    (1)"},
	{0xc340000000000000, "-9007199254740992", "Max neg int    (1)"},
	{0x4430000000000000, "295147905179352830000", "~2**68         (2)"},
	{0x7fffffffffffffff, "", "NaN            (3)"},
	{0x7ff0000000000000, "", "Infinity       (3)"},
	{0x44b52d02c7e14af5, "9.999999999999997e+22", ""},
	{0x44b52d02c7e14af6, "1e+23", ""},
	{0x44b52d02c7e14af7, "1.0000000000000001e+23", ""},
	{0x444b1ae4d6e2ef4e, "999999999999999700000", ""},
	{0x444b1ae4d6e2ef4f, "999999999999999900000", ""},
	{0x444b1ae4d6e2ef50, "1e+21", ""},
	{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7", ""},
	{0x3eb0c6f7a0b5ed8d, "0.000001", ""},
	{0x41b3de4355555553, "333333333.3333332", ""},
	{0x41b3de4355555554, "333333333.33333325", ""},
	{0x41b3de4355555555, "333333333.3333333", ""},
	{0x41b3de4355555556, "333333333.3333334", ""},
	{0x41b3de4355555557, "333333333.33333343", ""},
	{0xbecbf647612f3696, "-0.0000033333333333333333", ""},
	{0x43143ff3c1cb0959, "1424953923781206.2", "Round to even  (4)"},
}

func TestCanonicalizeNumbersRFC8785AppendixB(t *testing.T) {
	t.Parallel()
	for _, tc := range appendixB {
		f := math.Float64frombits(tc.bits)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// Not expressible in JSON text; the nearest input is an
			// overflowing literal, which must be refused.
			if _, err := Canonicalize([]byte("[1e400]")); err == nil {
				t.Errorf("%s: overflowing number accepted", tc.comment)
			}
			continue
		}
		in := "[" + strconv.FormatFloat(f, 'g', -1, 64) + "]"
		got, err := Canonicalize([]byte(in))
		if err != nil {
			t.Errorf("%#016x %s: %v", tc.bits, in, err)
			continue
		}
		if want := "[" + tc.want + "]"; string(got) != want {
			t.Errorf("%#016x %s: got %s, want %s", tc.bits, in, got, want)
		}
	}
}

// RFC 8785 section 3.2.2/3.2.3: the main example and the sorting example.
const rfcExampleIn = "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50,\n              2e-3, 0.000000000000000000000000001],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}\n"
const rfcExampleOut = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u20ac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
const rfcSortIn = "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"\\r\": \"Carriage Return\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"1\": \"One\",\n  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n  \"\\u0080\": \"Control\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n}\n"
const rfcSortOut = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001f600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"

func TestCanonicalizeRFC8785Examples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"3.2.2 main", rfcExampleIn, rfcExampleOut},
		{"3.2.3 utf16 sort", rfcSortIn, rfcSortOut},
	} {
		got, err := Canonicalize([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestCanonicalizeReferenceData runs the cyberphone reference files that
// the jcs module ships, read in place from the module cache.
func TestCanonicalizeReferenceData(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/gowebpki/jcs").Output()
	if err != nil {
		t.Skipf("cannot locate the jcs module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "testdata")
	inputs, _ := filepath.Glob(filepath.Join(dir, "input", "*.json"))
	if len(inputs) < 6 {
		t.Fatalf("expected the reference files in %s, found %d", dir, len(inputs))
	}
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "output", filepath.Base(in)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Canonicalize(src)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(in), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", filepath.Base(in), got, want)
		}
	}
}

func TestCanonicalizeTricky(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		// encoding/json would escape these three as \u003c \u003e \u0026.
		{"html chars stay raw", `{"a":"<b>&"}`, `{"a":"<b>&"}`},
		{"line separators stay raw", `["\u2028\u2029"]`, "[\"\u2028\u2029\"]"},
		{"control chars use short escapes", `["\u0008\u0009\u000a\u000c\u000d\u001f"]`, `["\b\t\n\f\r\u001f"]`},
		{"unicode escapes are decoded", `["\u00e9\u0041"]`, "[\"\u00e9A\"]"},
		{"solidus unescaped", `["\/"]`, `["/"]`},
		{"minus zero", `[-0, -0.0, 0e5]`, `[0,0,0]`},
		{"1e21 switches to exponent", `[1e21, 1e20, 100000000000000000000]`, `[1e+21,100000000000000000000,100000000000000000000]`},
		{"small exponent", `[1E-7, 0.000001]`, `[1e-7,0.000001]`},
		{"2^53+1 rounds as a double", `[9007199254740993]`, `[9007199254740992]`},
		{"trailing zeros dropped", `[4.50, 10.0]`, `[4.5,10]`},
		{"utf16 order: astral before U+FF10", "{\"\uff10\":1,\"\U0001f600\":2}", "{\"\U0001f600\":2,\"\uff10\":1}"},
		{"nested objects sorted", `{"b":{"z":1,"a":[{"y":1,"x":2}]},"a":null}`, `{"a":null,"b":{"a":[{"x":2,"y":1}],"z":1}}`},
		{"whitespace removed", " { \"a\" : [ 1 , true ] } ", `{"a":[1,true]}`},
	} {
		got, err := Canonicalize([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"duplicate key":    `{"a":1,"a":2}`,
		"nested duplicate": `{"x":{"a":1,"a":1}}`,
		"lone surrogate":   `["\ud800"]`,
		"overflow":         `[1e400]`,
		"trailing garbage": `{"a":1} x`,
		"not json":         `{a:1}`,
		"empty":            ``,
		"invalid utf8":     "[\"\xff\"]",
		"single quoted":    `['a']`,
		"leading zero":     `[01]`,
		"bare NaN":         `[NaN]`,
	} {
		if got, err := Canonicalize([]byte(in)); err == nil {
			t.Errorf("%s: accepted %q as %q", name, in, got)
		}
	}
}

func TestCanonicalizeValueMatchesCanonicalize(t *testing.T) {
	t.Parallel()
	v := map[string]any{"b": "<&>", "a": []int{3, 1}, "c": json.Number("1.50")}
	got, err := CanonicalizeValue(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[3,1],"b":"<&>","c":1.5}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

func TestCanonicalMembers(t *testing.T) {
	t.Parallel()
	in := `{"ap2":{"merchant_authorization":"x"},"id":"c1","z":[1,{"ap2":2}],"a":"s,t"}`
	got, err := canonicalMembers([]byte(in), func(n string) bool { return n != "ap2" })
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"s,t","id":"c1","z":[1,{"ap2":2}]}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
	none, err := canonicalMembers([]byte(in), func(string) bool { return false })
	if err != nil || string(none) != "{}" {
		t.Fatalf("drop all: %s %v", none, err)
	}
	if _, err := canonicalMembers([]byte(`{"ap2":1,"ap2":2}`), func(string) bool { return true }); err == nil {
		t.Fatal("duplicate member accepted")
	}
	ctl, err := canonicalMembers([]byte(`{"\u0001\u0007\u000b":1,"x":2}`), func(n string) bool { return n != "x" })
	if err != nil || string(ctl) != `{"\u0001\u0007\u000b":1}` {
		t.Fatalf("control characters in names: %s %v", ctl, err)
	}
	if _, err := canonicalMembers([]byte(`{"a":1} {}`), func(string) bool { return true }); err == nil {
		t.Fatal("trailing data accepted")
	}
	if _, err := canonicalMembers([]byte(`{"a":{"b":1,"b":2}}`), func(string) bool { return true }); err == nil {
		t.Fatal("nested duplicate accepted")
	}
	if _, err := canonicalMembers([]byte(`[1]`), func(string) bool { return true }); err == nil {
		t.Fatal("array accepted as object")
	}
}
