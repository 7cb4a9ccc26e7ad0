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
var allowed = map[string]string{
	"shared/config/config.go:Load":                          "one getenv read per setting in the order of the docs; the gowire branch reshapes config (config as data) this round: cut with it",
	"cmd/dueflow/demo.go:runDemo":                           "the demo's script, one narrated sequence of steps read top to bottom; its parts are already named functions",
	"cmd/dueflow/demo.go:playProviders":                     "the demo's scripted provider answers, one case per provider, as the doc comment lists them",
	"internal/demodata/demodata.go:Data":                    "the demo dataset as one literal",
	"internal/demodata/demodata.go:Seed":                    "one transaction inserting the dataset table by table in dependency order",
	"internal/devstack/funcurl.go:FunctionURLEvent":         "a field-by-field copy of an HTTP request into the Function URL event (payload 2.0)",
	"internal/devstack/networker.go:NetWorker.claimAndSend": "the local pg_net stand-in's claim-and-send loop, kept in one piece beside the SQL it mirrors",
	"internal/devstack/stack.go:Stack.startPostgres":        "a sequence of start steps with their cleanup on failure",
	"internal/devstack/stack.go:Start":                      "brings the local stack up component by component, each with its stop on failure",
	"internal/devstack/telnyx.go:TelnyxSink.ServeHTTP":      "the Telnyx sink's one endpoint: decode, scripted answer, delivery report",
	"internal/opsdb/detail.go:timeline":                     "the execution page's story in time order: one add per kind of line, sharing the closures that order and count them",
	"internal/pgcluster/pgcluster.go:Start":                 "initdb, configuration, start and pg_cron setup in the order Postgres needs them",
	"internal/postgrest/postgrest.go:Server.call":           "the PostgREST stand-in's one RPC path: headers, body, SQL call and error mapping as PostgREST answers",
	"internal/samtemplate/alarms.go:checkDashboard":         "one check per dashboard property, in the template's order",
	"internal/samtemplate/check.go:CheckTemplate":           "the list of template checks, one line each",
	"internal/samtemplate/check.go:checkSecretPolicy":       "walks the IAM policy document statement by statement against the rule in its doc comment",
	"internal/smtpstall/smtpstall.go:Server.session":        "the SMTP stand-in's command loop, one case per SMTP verb",
	"internal/stacktest/profile.go:profile.report":          "one report of the profile, section by section, as the doc comment lists them",
}

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
