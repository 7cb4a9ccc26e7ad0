package deps

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pkg is one package go list names, with every package it depends on.
type pkg struct {
	path string
	deps []string
}

// forbiddenTrees are the module's folders production code must not
// depend on: test support, stand-ins, the CLI, tests and benchmarks.
var forbiddenTrees = []string{"internal", "cmd", "e2e", "bench"}

// isStandIn reports whether the package at path (in the module mod) is a
// test stand-in or test support wherever it lies: its name ends in test or
// starts or ends with fake (notifytest, pgtest, fakestore,
// secretsmanagerfake), or it is only tests (leakscan).
func isStandIn(mod, path string) bool {
	if !strings.HasPrefix(path, mod+"/") {
		return false
	}
	name := path[strings.LastIndex(path, "/")+1:]
	return strings.HasSuffix(name, "test") || strings.HasPrefix(name, "fake") || strings.HasSuffix(name, "fake") || name == "leakscan"
}

// problems lists each dependency of pkgs that production code must not
// have; a stand-in under shared/ may use other stand-ins, but not the
// forbidden trees either.
func problems(mod string, pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, d := range p.deps {
			rel, ok := strings.CutPrefix(d, mod+"/")
			if !ok {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			for _, f := range forbiddenTrees {
				if top == f {
					out = append(out, p.path+" depends on "+d)
				}
			}
			if isStandIn(mod, d) && !isStandIn(mod, p.path) && !strings.HasPrefix(d, mod+"/internal/") {
				out = append(out, p.path+" depends on the stand-in "+d)
			}
		}
	}
	return out
}

// goList runs go list -deps for the production trees: each package with
// its dependencies (test files aside).
func goList(t *testing.T) (mod string, pkgs []pkg) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m").Output()
	require.NoError(t, err)
	mod = strings.TrimSpace(string(out))
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./functions/...", "./shared/...", "./sql/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	require.NoError(t, err, stderr.String())
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkgs = append(pkgs, pkg{path: f[0], deps: f[1:]})
	}
	require.NoError(t, sc.Err())
	return mod, pkgs
}

// Every package under functions/ and shared/ (a Lambda function's code)
// and the schema's embeds under sql/ depend on nothing under internal/,
// cmd/, e2e/ or bench/ and on no test stand-in.
func TestProductionDependsOnNoTestSupport(t *testing.T) {
	mod, pkgs := goList(t)
	var paths []string
	for _, p := range pkgs {
		paths = append(paths, p.path)
	}
	require.Contains(t, paths, mod+"/functions/action")
	require.Contains(t, paths, mod+"/shared/function")
	require.Contains(t, paths, mod+"/sql")
	assert.Empty(t, problems(mod, pkgs))
}

// The check itself: each kind of forbidden dependency is named.
func TestProblemsNamesEachKind(t *testing.T) {
	const mod = "example.com/m"
	got := problems(mod, []pkg{
		{"example.com/m/shared/a", []string{"fmt", "example.com/m/shared/b", "example.com/m/internal/pgtest", "example.com/other/internal/x"}},
		{"example.com/m/functions/f", []string{"example.com/m/cmd/tool", "example.com/m/shared/notify/internal/notifytest"}},
		{"example.com/m/shared/notify/internal/notifytest", []string{"example.com/m/shared/fakeclock", "example.com/m/e2e"}},
		{"example.com/m/shared/c", []string{"example.com/m/bench/river", "example.com/m/shared/x/fakestore"}},
	})
	assert.Equal(t, []string{
		"example.com/m/shared/a depends on example.com/m/internal/pgtest",
		"example.com/m/functions/f depends on example.com/m/cmd/tool",
		"example.com/m/functions/f depends on the stand-in example.com/m/shared/notify/internal/notifytest",
		"example.com/m/shared/notify/internal/notifytest depends on example.com/m/e2e",
		"example.com/m/shared/c depends on example.com/m/bench/river",
		"example.com/m/shared/c depends on the stand-in example.com/m/shared/x/fakestore",
	}, got)
}
