package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dueflow/dueflow/internal/lambdafns"
)

// BuildNamed builds the functions names (lambdafns.Names) for the host
// into <outDir>/<package>/bootstrap, each package once (the actions share
// functions/action), and returns the bootstrap path per function name.
func BuildNamed(ctx context.Context, root, outDir string, names ...string) (map[string]string, error) {
	var pkgs []string
	for _, n := range names {
		if p := lambdafns.Package(n); !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	byPkg, err := BuildFunctions(ctx, root, outDir, pkgs...)
	if err != nil {
		return nil, err
	}
	paths := make(map[string]string, len(names))
	for _, n := range names {
		paths[n] = byPkg[filepath.Base(lambdafns.Package(n))]
	}
	return paths, nil
}

// BuildFunctions builds each package dir (relative to root, e.g.
// "./functions/action") for the host with -tags lambda.norpc, in one
// go command, to <outDir>/<base name>/bootstrap. It returns the bootstrap
// path per base name.
func BuildFunctions(ctx context.Context, root, outDir string, pkgs ...string) (map[string]string, error) {
	if len(pkgs) == 0 {
		return map[string]string{}, nil
	}
	tmp, err := os.MkdirTemp(outDir, ".build-")
	if err != nil {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, fmt.Errorf("build functions: %w", err)
		}
		if tmp, err = os.MkdirTemp(outDir, ".build-"); err != nil {
			return nil, fmt.Errorf("build functions: %w", err)
		}
	}
	defer os.RemoveAll(tmp)
	args := append([]string{"build", "-tags", "lambda.norpc", "-trimpath", "-o", tmp + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, goBin(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build functions (go %s): %w\n%s", strings.Join(args, " "), err, out)
	}
	paths := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		name := filepath.Base(p)
		dir := filepath.Join(outDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("build functions: %w", err)
		}
		dst := filepath.Join(dir, "bootstrap")
		if err := os.Rename(filepath.Join(tmp, name), dst); err != nil {
			return nil, fmt.Errorf("build functions: move %s: %w", name, err)
		}
		paths[name] = dst
	}
	return paths, nil
}

// goBin is the go command: $GOROOT/bin/go of the running toolchain when
// present, else "go" from PATH.
func goBin() string {
	if r := os.Getenv("GOROOT"); r != "" {
		if p := filepath.Join(r, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// FindRoot walks up from dir to the directory holding go.mod.
func FindRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}

// ToolPath finds a tool installed by `make tools`: $DUEFLOW_BIN/<name>, else
// <root>/bin/<name>, else PATH.
func ToolPath(root, name string) (string, error) {
	if d := os.Getenv("DUEFLOW_BIN"); d != "" && fileExists(filepath.Join(d, name)) {
		return filepath.Join(d, name), nil
	}
	if p := filepath.Join(root, "bin", name); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in $DUEFLOW_BIN, %s/bin or PATH (run `make tools`)", name, root)
}

// TempStateDir makes a fresh state directory under the system temp dir that
// the postgres user can reach (needed when running as root), for tests.
func TempStateDir(prefix string) (string, error) {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	return d, nil
}
