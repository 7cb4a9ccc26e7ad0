package funclength

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allowed are the functions over MaxLines, keyed "path:Func" (methods
// "path:Type.Method"), each with the reason it stays whole.
var allowed = map[string]string{}

// long lists the non-test functions under the roots with bodies over max
// lines: "path:Func" -> body lines.
func long(t *testing.T, repo string, roots []string, max int) map[string]int {
	t.Helper()
	out := map[string]int{}
	fset := token.NewFileSet()
	for _, root := range roots {
		err := filepath.WalkDir(filepath.Join(repo, root), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repo, path)
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				n := fset.Position(fn.Body.Rbrace).Line - fset.Position(fn.Body.Lbrace).Line - 1
				if n > max {
					out[filepath.ToSlash(rel)+":"+funcName(fn)] = n
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	return out
}

// funcName is Func, or Type.Method for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if g, ok := typ.(*ast.IndexExpr); ok {
		typ = g.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

// repoRoot is the module's root, two levels above this file.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestFunctionLength fails for a function over MaxLines that is not
// allowed, and for an allowed entry that is no longer over (or gone), so
// the table stays true.
func TestFunctionLength(t *testing.T) {
	got := long(t, repoRoot(t), []string{"functions", "shared", "cmd", "internal"}, MaxLines)
	var over []string
	for name, n := range got {
		if _, ok := allowed[name]; !ok {
			over = append(over, name+" ("+itoa(n)+" lines)")
		}
	}
	sort.Strings(over)
	assert.Empty(t, over, "functions over %d lines: cut them where a name explains a part, or list them in allowed with a one-line reason", MaxLines)
	var stale []string
	for name, reason := range allowed {
		if _, ok := got[name]; !ok {
			stale = append(stale, name)
		}
		assert.NotEmpty(t, strings.TrimSpace(reason), "%s: a reason", name)
		assert.NotContains(t, reason, "\n", "%s: one line", name)
	}
	sort.Strings(stale)
	assert.Empty(t, stale, "allowed but no longer over %d lines (or gone): remove them from allowed", MaxLines)
}

// TestLongFindsALongFunction checks the counter on a function of known
// length: 61 body lines are over, 60 are not.
func TestLongFindsALongFunction(t *testing.T) {
	dir := t.TempDir()
	src := "package x\n\nfunc Over() {\n" + strings.Repeat("\t_ = 1\n", 61) + "}\n\nfunc At() {\n" + strings.Repeat("\t_ = 1\n", 60) + "}\n\ntype T struct{}\n\nfunc (*T) M() {\n" + strings.Repeat("\t_ = 1\n", 70) + "}\n"
	require.NoError(t, osWrite(filepath.Join(dir, "shared", "x", "x.go"), src))
	require.NoError(t, osWrite(filepath.Join(dir, "shared", "x", "x_test.go"), src))
	assert.Equal(t, map[string]int{"shared/x/x.go:Over": 61, "shared/x/x.go:T.M": 70}, long(t, dir, []string{"shared"}, MaxLines))
}
