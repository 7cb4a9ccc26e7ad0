package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Where Debian's packages put what the local stack needs.
const (
	pgBinDir      = "/usr/lib/postgresql/15/bin"
	pgCronControl = "/usr/share/postgresql/15/extension/pg_cron.control"
)

// debPackages are installed with apt-get when their marker file is missing.
var debPackages = []struct{ pkg, marker string }{
	{"postgresql-15", filepath.Join(pgBinDir, "postgres")},
	{"postgresql-15-cron", pgCronControl},
}

// repoTools are the binaries `make tools` installs into the repository's
// git-ignored bin/.
var repoTools = []string{"aws-lambda-rie", "mailpit"}

// ensureInstalled installs what the local stack needs and is missing: the
// Debian packages (with apt-get, when running as root) and bin/aws-lambda-rie
// and bin/mailpit (with `make tools`, i.e. go install into bin/).
func ensureInstalled(ctx context.Context, root string, progress func(string), out io.Writer) error {
	var missing []string
	for _, p := range debPackages {
		if _, err := os.Stat(p.marker); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) > 0 {
		if os.Geteuid() != 0 {
			return fmt.Errorf("missing Debian packages %v: run `sudo apt-get install -y %s` (or run the demo as root)", missing, joinSpace(missing))
		}
		progress(fmt.Sprintf("installing %s with apt-get", joinSpace(missing)))
		args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get install %s: %w", joinSpace(missing), err)
		}
	}
	var tools []string
	for _, t := range repoTools {
		if _, err := os.Stat(filepath.Join(root, "bin", t)); errors.Is(err, os.ErrNotExist) {
			tools = append(tools, t)
		}
	}
	if len(tools) > 0 {
		progress(fmt.Sprintf("installing %s into bin/ (make tools)", joinSpace(tools)))
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "tools")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make tools: %w", err)
		}
	}
	return nil
}

func joinSpace(xs []string) string { return strings.Join(xs, " ") }

// repoRoot finds the repository root (the directory holding go.mod) from the
// working directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "functions")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no dueflow checkout (go.mod and functions/) at or above %s: run from the repository", dir)
		}
	}
}

// rootAndStateDir finds the repository root and defaults an empty state
// directory to the demo's (.dueflow/demo), which invoke shares with demo.
func rootAndStateDir(stateDir *string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if *stateDir == "" {
		*stateDir = filepath.Join(root, ".dueflow", "demo")
	}
	return root, nil
}
