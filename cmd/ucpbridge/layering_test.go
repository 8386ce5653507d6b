package main

// Layering rules for the module, enforced against the real import graph.
//
// The graph is read with `go list -e -json ./...` from the module root, and
// only each package's non-test imports (the `Imports` field) are checked.
// Test files are deliberately exempt: in-package tests (`TestImports`) and
// external `_test` packages (`XTestImports`) may cross layers so that
// end-to-end tests can wire authserver, bridge and ucpclient together. Only
// the files of the current GOOS/GOARCH and default build tags are seen, as
// with any `go list` invocation.
//
// The rules, with paths relative to the module path:
//
//  1. Leaves — mandate, ucpclient/ucp, ucpclient/httpsig, ucpclient/netguard,
//     ucpclient/discovery and any package below them — import no project
//     package other than leaves.
//  2. authserver and everything under it imports neither the ucpclient root
//     package (ucpclient itself) nor bridge or anything under bridge/.
//  3. bridge and everything under it imports neither authserver nor anything
//     under authserver/.
//  4. Only cmd/... and examples/... may import both sides: an authserver
//     package (authserver or authserver/...) together with a bridge package
//     (bridge or bridge/...) or the ucpclient root package.
//  5. No project package lives under a top-level internal/ directory, and
//     none is imported from there.
//
// In addition, TestLayering asserts that the module's top-level entries are
// a subset of layeringTopLevelAllowed.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// layeringLeaves are the leaf package trees (relative to the module path).
var layeringLeaves = []string{
	"mandate",
	"ucpclient/ucp",
	"ucpclient/httpsig",
	"ucpclient/netguard",
	"ucpclient/discovery",
}

// layeringTopLevelAllowed are the only entries permitted at the module root.
// Missing entries are fine; anything else is not.
var layeringTopLevelAllowed = map[string]bool{
	"bridge":     true,
	"ucpclient":  true,
	"mandate":    true,
	"authserver": true,
	"cmd":        true,
	"examples":   true,
	"go.mod":     true,
	"go.sum":     true,
	"README.md":  true,
	".ci":        true,
	".gitignore": true,
}

// layeringUnder reports whether rel is dir or a package below dir.
func layeringUnder(rel, dir string) bool {
	return rel == dir || strings.HasPrefix(rel, dir+"/")
}

func layeringIsLeaf(rel string) bool {
	for _, l := range layeringLeaves {
		if layeringUnder(rel, l) {
			return true
		}
	}
	return false
}

// layeringIsBridgeSide reports whether rel is on the "bridge" side of the
// both-sides rule: bridge, anything under bridge/, or the ucpclient root.
func layeringIsBridgeSide(rel string) bool {
	return layeringUnder(rel, "bridge") || rel == "ucpclient"
}

// layeringViolations evaluates the layering rules over pkgs, which maps each
// project package (import path relative to the module path, "." for the
// module root) to its non-test project imports (also relative). It returns
// one message per violation, sorted, each naming the offending import.
func layeringViolations(pkgs map[string][]string) []string {
	var out []string
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)

	for _, pkg := range names {
		imports := slices.Clone(pkgs[pkg])
		sort.Strings(imports)
		imports = slices.Compact(imports)

		if layeringUnder(pkg, "internal") {
			out = append(out, fmt.Sprintf("%s: no project package may live under top-level internal/ (the layout forbids it)", pkg))
		}

		var authSide, bridgeSide []string
		for _, imp := range imports {
			if layeringUnder(imp, "internal") {
				out = append(out, fmt.Sprintf("%s imports %s: nothing may be imported from top-level internal/ (the layout forbids it)", pkg, imp))
			}
			if layeringIsLeaf(pkg) && !layeringIsLeaf(imp) {
				out = append(out, fmt.Sprintf("%s imports %s: leaves may import only other leaves", pkg, imp))
			}
			if layeringUnder(pkg, "authserver") {
				if imp == "ucpclient" {
					out = append(out, fmt.Sprintf("%s imports %s: authserver may not import the ucpclient root package", pkg, imp))
				}
				if layeringUnder(imp, "bridge") {
					out = append(out, fmt.Sprintf("%s imports %s: authserver may not import bridge or anything under bridge/", pkg, imp))
				}
			}
			if layeringUnder(pkg, "bridge") && layeringUnder(imp, "authserver") {
				out = append(out, fmt.Sprintf("%s imports %s: bridge may not import authserver or anything under authserver/", pkg, imp))
			}
			if layeringUnder(imp, "authserver") {
				authSide = append(authSide, imp)
			}
			if layeringIsBridgeSide(imp) {
				bridgeSide = append(bridgeSide, imp)
			}
		}

		if len(authSide) > 0 && len(bridgeSide) > 0 &&
			!layeringUnder(pkg, "cmd") && !layeringUnder(pkg, "examples") {
			out = append(out, fmt.Sprintf("%s imports %s and %s: only cmd/... and examples/... may import both an authserver package and a bridge/ucpclient-root package",
				pkg, strings.Join(authSide, ", "), strings.Join(bridgeSide, ", ")))
		}
	}
	return out
}

// layeringModuleRoot walks up from the working directory to the directory
// holding go.mod.
func layeringModuleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod found above the test's working directory")
		}
		dir = parent
	}
}

// layeringGoCommand returns the go command, or skips the test if there is none.
func layeringGoCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if runtime.GOOS == "windows" {
		p += ".exe"
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Skip("go command not available; cannot read the import graph")
	return ""
}

type layeringPackage struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// layeringGraph runs `go list -e -json ./...` in root and returns the
// project import graph relative to the module path.
func layeringGraph(t *testing.T, goCmd, root string) map[string][]string {
	t.Helper()
	cmd := exec.Command(goCmd, "list", "-e", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -e -json ./...: %v\n%s", err, stderr.Bytes())
	}

	var pkgs []layeringPackage
	dec := json.NewDecoder(bytes.NewReader(stdout))
	for {
		var p layeringPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list ./... reported no packages")
	}

	modPath := ""
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Path != "" {
			modPath = p.Module.Path
			break
		}
	}
	if modPath == "" {
		t.Fatal("go list reported no module path")
	}
	rel := func(path string) (string, bool) {
		if path == modPath {
			return ".", true
		}
		if r, ok := strings.CutPrefix(path, modPath+"/"); ok {
			return r, true
		}
		return "", false
	}

	graph := make(map[string][]string, len(pkgs))
	for _, p := range pkgs {
		if p.Error != nil {
			// The graph is incomplete for this package; don't pretend
			// the layering is verified.
			t.Errorf("go list: %s: %s (import graph may be incomplete)", p.ImportPath, p.Error.Err)
		}
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		deps := []string{}
		for _, imp := range p.Imports {
			if ir, ok := rel(imp); ok {
				deps = append(deps, ir)
			}
		}
		graph[r] = deps
	}
	return graph
}

// layeringTopLevel returns the top-level entries of the module at root:
// tracked files plus untracked files not ignored by .gitignore (so build
// output is skipped) that still exist on disk. Without git it falls back to
// reading the directory.
func layeringTopLevel(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--directory")
	cmd.Dir = root
	out, err := cmd.Output()
	if err == nil {
		for _, f := range strings.Split(string(out), "\x00") {
			f = strings.TrimSuffix(f, "/")
			if f == "" {
				continue
			}
			// Skip files deleted from the work tree but still in the index.
			if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f))); err != nil {
				continue
			}
			top, _, _ := strings.Cut(f, "/")
			seen[top] = true
		}
	} else {
		t.Logf("git ls-files unavailable (%v); reading the directory instead", err)
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			seen[e.Name()] = true
		}
	}

	var names []string
	for name := range seen {
		if strings.HasPrefix(name, ".") && !layeringTopLevelAllowed[name] {
			continue // dotfiles other than .ci/.gitignore are not part of the layout
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func TestLayering(t *testing.T) {
	t.Parallel()
	goCmd := layeringGoCommand(t)
	root := layeringModuleRoot(t)

	graph := layeringGraph(t, goCmd, root)
	for _, v := range layeringViolations(graph) {
		t.Error(v)
	}

	for _, name := range layeringTopLevel(t, root) {
		if !layeringTopLevelAllowed[name] {
			t.Errorf("top-level entry %q is not part of the layout (allowed: bridge, ucpclient, mandate, authserver, cmd, examples, go.mod, go.sum, README.md, .ci, .gitignore)", name)
		}
	}
}

func TestLayeringCatchesForbiddenImports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		graph map[string][]string
		want  []string // substrings that must appear in some violation; none => no violations
	}{
		{
			name:  "leaf imports authserver/store",
			graph: map[string][]string{"ucpclient/netguard": {"authserver/store"}},
			want:  []string{"ucpclient/netguard imports authserver/store: leaves may import only other leaves"},
		},
		{
			name:  "leaf subpackage imports ucpclient root",
			graph: map[string][]string{"mandate/sdjwt": {"ucpclient"}},
			want:  []string{"mandate/sdjwt imports ucpclient: leaves may import only other leaves"},
		},
		{
			name:  "leaf imports other leaves",
			graph: map[string][]string{"ucpclient/discovery": {"ucpclient/ucp", "ucpclient/netguard", "mandate/x"}},
		},
		{
			name:  "authserver/shop imports ucpclient root",
			graph: map[string][]string{"authserver/shop": {"ucpclient"}},
			want:  []string{"authserver/shop imports ucpclient: authserver may not import the ucpclient root package"},
		},
		{
			name:  "authserver/x imports bridge",
			graph: map[string][]string{"authserver/x": {"bridge"}},
			want:  []string{"authserver/x imports bridge: authserver may not import bridge"},
		},
		{
			name:  "authserver imports bridge subpackage",
			graph: map[string][]string{"authserver": {"bridge/session"}},
			want:  []string{"authserver imports bridge/session: authserver may not import bridge"},
		},
		{
			name:  "authserver imports leaves",
			graph: map[string][]string{"authserver/shop": {"ucpclient/ucp", "ucpclient/httpsig", "mandate", "authserver/store"}},
		},
		{
			name:  "bridge imports authserver/guard",
			graph: map[string][]string{"bridge": {"authserver/guard"}},
			want:  []string{"bridge imports authserver/guard: bridge may not import authserver"},
		},
		{
			name:  "bridge subpackage imports authserver root",
			graph: map[string][]string{"bridge/mcp": {"authserver"}},
			want:  []string{"bridge/mcp imports authserver: bridge may not import authserver"},
		},
		{
			name:  "non-cmd package imports both sides",
			graph: map[string][]string{"platform": {"authserver/store", "ucpclient"}},
			want:  []string{"platform imports authserver/store and ucpclient: only cmd/... and examples/... may import both"},
		},
		{
			name:  "non-cmd package imports authserver and bridge",
			graph: map[string][]string{"ucpclient/wiring": {"authserver", "bridge/session"}},
			want:  []string{"ucpclient/wiring imports authserver and bridge/session: only cmd/... and examples/... may import both"},
		},
		{
			name:  "cmd imports both sides",
			graph: map[string][]string{"cmd/ucpbridge": {"authserver", "authserver/shop", "bridge", "ucpclient", "ucpclient/ucp"}},
		},
		{
			name:  "examples imports both sides",
			graph: map[string][]string{"examples/shop": {"authserver/store", "bridge", "ucpclient"}},
		},
		{
			name:  "package under internal",
			graph: map[string][]string{"internal/netguard": nil},
			want:  []string{"internal/netguard: no project package may live under top-level internal/"},
		},
		{
			name:  "import from internal",
			graph: map[string][]string{"authserver": {"internal/fetchcache"}},
			want:  []string{"authserver imports internal/fetchcache: nothing may be imported from top-level internal/"},
		},
		{
			name:  "leaf imports internal",
			graph: map[string][]string{"ucpclient/discovery": {"internal/netguard"}},
			want:  []string{"ucpclient/discovery imports internal/netguard: leaves may import only other leaves"},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := layeringViolations(tc.graph)
			if len(tc.want) == 0 && len(got) != 0 {
				t.Fatalf("want no violations, got:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, w) }) {
					t.Errorf("want a violation containing %q, got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
