// Package lambdafns lists the repository's Lambda functions: their names,
// the package each is built from and the environment each needs beyond the
// settings they share. The three actions are one program,
// functions/action, run with DUEFLOW_ACTION naming the action; every
// other directory of functions/ is one function of its name.
package lambdafns

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/config"
)

// Dir is the directory, relative to the repository root, holding the
// functions' main packages.
const Dir = "functions"

// ActionPackage is the directory under Dir of the actions' program.
const ActionPackage = "action"

// Names lists the functions of the repository at root, sorted: each action
// (automation.Actions) when Dir/ActionPackage exists, and each other
// directory of Dir. A missing Dir yields an empty list.
func Names(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, Dir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var names []string
	for _, e := range entries {
		switch {
		case !e.IsDir() || strings.HasPrefix(e.Name(), "."):
		case e.Name() == ActionPackage:
			names = append(names, automation.Actions...)
		default:
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Package is the package function name is built from, relative to the
// repository root: "./functions/action" for an action, else
// "./functions/<name>".
func Package(name string) string {
	if automation.IsAction(name) {
		return "./" + Dir + "/" + ActionPackage
	}
	return "./" + Dir + "/" + name
}

// Env is the environment function name needs beyond the shared settings:
// DUEFLOW_ACTION=<name> for an action, nothing for the others.
func Env(name string) []string {
	if automation.IsAction(name) {
		return []string{config.EnvAction + "=" + name}
	}
	return nil
}
