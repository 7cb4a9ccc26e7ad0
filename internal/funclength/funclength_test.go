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

// reasonMarker starts the doc-comment line that says why a function over
// MaxLines stays whole: "// Long: <one-line reason>", beside the function.
const reasonMarker = "Long:"

// fn is one function the walk found: its body lines and the reason its doc
// comment gives for staying long ("" when none).
type fn struct {
	lines  int
	reason string
}

// long lists the non-test functions under the roots with bodies over limit
// lines (limit) or a reason to be long: "path:Func" -> its lines and reason.
func long(t *testing.T, repo string, roots []string, limit int) map[string]fn {
	t.Helper()
	out := map[string]fn{}
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
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution|parser.ParseComments)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repo, path)
			for _, decl := range f.Decls {
				d, ok := decl.(*ast.FuncDecl)
				if !ok || d.Body == nil {
					continue
				}
				n := max(fset.Position(d.Body.Rbrace).Line-fset.Position(d.Body.Lbrace).Line-1, 0)
				if r := reasonOf(d.Doc); n > limit || r != "" {
					out[filepath.ToSlash(rel)+":"+funcName(d)] = fn{lines: n, reason: r}
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	return out
}

// reasonOf is the text after reasonMarker in a doc comment, or "".
func reasonOf(doc *ast.CommentGroup) string {
	if doc == nil {
		return ""
	}
	for _, c := range doc.List {
		if r, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(c.Text, "//")), reasonMarker); ok {
			return strings.TrimSpace(r)
		}
	}
	return ""
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

// TestFunctionLength fails for a function over MaxLines without a reason
// beside it ("// Long: ..." in its doc comment), and for a reason on a
// function that is no longer long, so the reasons stay true.
func TestFunctionLength(t *testing.T) {
	got := long(t, repoRoot(t), []string{"functions", "shared", "cmd", "internal"}, MaxLines)
	var over, stale []string
	for name, f := range got {
		switch {
		case f.lines > MaxLines && f.reason == "":
			over = append(over, name+" ("+itoa(f.lines)+" lines)")
		case f.lines <= MaxLines:
			stale = append(stale, name)
		}
	}
	sort.Strings(over)
	sort.Strings(stale)
	assert.Empty(t, over, "functions over %d lines: cut them where a name explains a part, or say why beside them: // %s <one-line reason>", MaxLines, reasonMarker)
	assert.Empty(t, stale, "a %q reason on a function of %d lines or fewer: remove it", reasonMarker, MaxLines)
}

// TestLongFindsALongFunction checks the counter on a function of known
// length: 61 body lines are over, 60 are not.
func TestLongFindsALongFunction(t *testing.T) {
	dir := t.TempDir()
	src := "package x\n\nfunc Over() {\n" + strings.Repeat("\t_ = 1\n", 61) + "}\n\nfunc At() {\n" + strings.Repeat("\t_ = 1\n", 60) + "}\n\ntype T struct{}\n\nfunc (*T) M() {\n" + strings.Repeat("\t_ = 1\n", 70) + "}\n"
	require.NoError(t, osWrite(filepath.Join(dir, "shared", "x", "x.go"), src))
	require.NoError(t, osWrite(filepath.Join(dir, "shared", "x", "x_test.go"), src))
	assert.Equal(t, map[string]fn{"shared/x/x.go:Over": {lines: 61}, "shared/x/x.go:T.M": {lines: 70}}, long(t, dir, []string{"shared"}, MaxLines))
	reasoned := "package x\n\n// Why is long.\n//\n// Long: a reason.\nfunc Why() {\n" + strings.Repeat("\t_ = 1\n", 61) + "}\n\n// Long: stale.\nfunc Short() {}\n"
	require.NoError(t, osWrite(filepath.Join(dir, "shared", "y", "y.go"), reasoned))
	assert.Equal(t, map[string]fn{"shared/y/y.go:Why": {lines: 61, reason: "a reason."}, "shared/y/y.go:Short": {lines: 0, reason: "stale."}},
		long(t, dir, []string{"shared/y"}, MaxLines))
}
