package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dueflow/dueflow/internal/pgcluster"
)

// stopLeftoverPostgres stops the Postgres server of an earlier demo run that
// did not get to stop it (the demo was killed with SIGKILL: the other
// children die with it, the daemonised postmaster does not). It only acts on
// a live postmaster whose data directory is dataDir, i.e. one the demo
// started.
func stopLeftoverPostgres(ctx context.Context, dataDir string, progress func(string)) error {
	pid, ok := leftoverPostmaster(dataDir)
	if !ok {
		return nil
	}
	progress(fmt.Sprintf("Postgres of an earlier demo run is still running (pid %d, %s): stopping it", pid, dataDir))
	if err := pgcluster.StopDir(ctx, dataDir); err != nil {
		return fmt.Errorf("stop the leftover Postgres (pid %d): %w", pid, err)
	}
	return nil
}

// leftoverPostmaster returns the pid in dataDir/postmaster.pid when that
// process is alive and is a postgres serving dataDir.
func leftoverPostmaster(dataDir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if errors.Is(err, os.ErrNotExist) || err != nil {
		return 0, false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != "postgres" {
		return 0, false
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return 0, false
	}
	for i, a := range args {
		if a == "-D" && i+1 < len(args) && filepath.Clean(args[i+1]) == abs {
			return pid, true
		}
	}
	return 0, false
}
