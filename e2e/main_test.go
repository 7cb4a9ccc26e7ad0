package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dueflow/dueflow/internal/devstack"
	"github.com/dueflow/dueflow/internal/stacktest"
)

var (
	root  string
	built map[string]string // function name -> bootstrap, built once per test binary
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if root, err = devstack.FindRoot("."); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		var cleanup func()
		if built, cleanup, err = stacktest.BuildAll(root, "dueflow-e2e-fn-"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer cleanup()
		return m.Run()
	}()
	os.Exit(code)
}

// stackOptions tweak the stack a test starts.
type stackOptions struct {
	env       []string
	instances int
	netConc   int
	coreOnly  bool          // the core migrations without the reference domain
	secretKey bool          // the functions use an sb_secret_ key, not the legacy JWT
	fnTimeout time.Duration // the functions' timeout (the invocation deadline); 0 = 60 s
}

// startStack starts a private local stack (own Postgres cluster, NoCron so
// only Tick drives the pipeline) and stops it at the end of the test.
func startStack(tb testing.TB, o stackOptions) *devstack.Stack {
	tb.Helper()
	return stacktest.Start(tb, devstack.Config{
		Root:            root,
		NoCron:          true,
		FastPostgres:    true,
		BuiltFunctions:  built,
		Instances:       o.instances,
		NetConcurrency:  o.netConc,
		CoreOnly:        o.coreOnly,
		UseSecretKey:    o.secretKey,
		FunctionEnv:     o.env,
		FunctionTimeout: o.fnTimeout,
	})
}
