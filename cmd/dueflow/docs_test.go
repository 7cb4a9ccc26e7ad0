package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	docFenceRE = regexp.MustCompile("(?ms)^\\s*```[^\\n]*\\n(.*?)^\\s*```")
	docSpanRE  = regexp.MustCompile("`([^`\\n]+)`")
	docCmdRE   = regexp.MustCompile(`(?:^\s*|\./cmd/|/bin/)dueflow\s+([a-z][a-z-]*)([^#|>]*)`)
	docMakeRE  = regexp.MustCompile(`(?:^|\s)make\s+([a-z][a-z-]*)`)
	docFlagRE  = regexp.MustCompile(`(?:^|\s)--?([a-z][a-z-]*)`)
	helpFlagRE = regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	makeRuleRE = regexp.MustCompile(`(?m)^([a-z][a-z-]*):`)
)

// TestDocCommands keeps README.md and docs/*.md true to the CLI and the
// Makefile: every command line of their code that runs dueflow (`dueflow
// <command>`, `go run ./cmd/dueflow <command>`) names a command (or help), every flag on that line is one of the command's flags, and every
// `make <target>` is a rule of the Makefile.
func TestDocCommands(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	makeTargets := map[string]bool{}
	for _, m := range makeRuleRE.FindAllStringSubmatch(string(mk), -1) {
		makeTargets[m[1]] = true
	}
	docs, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	flags := map[string]map[string]bool{}
	seen := 0
	for _, f := range append([]string{"../../README.md"}, docs...) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		name := strings.TrimPrefix(f, "../../")
		for _, line := range docCode(string(b)) {
			for _, m := range docMakeRE.FindAllStringSubmatch(line, -1) {
				assert.True(t, makeTargets[m[1]], "%s: make %s: no such Makefile target (%q)", name, m[1], line)
			}
			for _, m := range docCmdRE.FindAllStringSubmatch(line, -1) {
				cmd := m[1]
				seen++
				if cmd == "help" {
					continue
				}
				if _, ok := commands[cmd]; !ok {
					t.Errorf("%s: dueflow %s: no such command (%q)", name, cmd, line)
					continue
				}
				if flags[cmd] == nil {
					out, _, _ := runCLI(t, "", "help", cmd)
					flags[cmd] = map[string]bool{"h": true, "help": true}
					for _, f := range helpFlagRE.FindAllStringSubmatch(out, -1) {
						flags[cmd][f[1]] = true
					}
				}
				for _, f := range docFlagRE.FindAllStringSubmatch(m[2], -1) {
					assert.True(t, flags[cmd][f[1]], "%s: dueflow %s has no flag -%s (%q)", name, cmd, f[1], line)
				}
			}
		}
	}
	assert.Greater(t, seen, 10, "dueflow commands found in the documents")
}

// docCode returns the code of a Markdown text: each line of its fenced
// blocks and each inline code span.
func docCode(md string) []string {
	var out []string
	for _, m := range docFenceRE.FindAllStringSubmatch(md, -1) {
		out = append(out, strings.Split(m[1], "\n")...)
	}
	for _, m := range docSpanRE.FindAllStringSubmatch(docFenceRE.ReplaceAllString(md, ""), -1) {
		out = append(out, m[1])
	}
	return out
}
