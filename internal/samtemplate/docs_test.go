package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxReadmeLines is issue 14's bound on README.md: what dueflow is, the two
// commands, how it works, deploy, adopt, operate; the rest lives in docs/.
const maxReadmeLines = 250

// TestReadmeLength keeps README.md within maxReadmeLines.
func TestReadmeLength(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	n := strings.Count(string(b), "\n")
	assert.LessOrEqual(t, n, maxReadmeLines, "README.md has %d lines: move detail to docs/ and link it", n)
}

// TestDocLinks checks every relative link of README.md and docs/*.md: the
// file it points to exists and, for a Markdown file, so does the anchor.
func TestDocLinks(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	require.NoError(t, err)
	files := append([]string{filepath.Join(repoRoot, "README.md")}, docs...)
	checked := 0
	for _, f := range files {
		for _, link := range markdownLinks(t, f) {
			checked++
			if err := checkLink(f, link); err != nil {
				t.Errorf("%s: link %q: %v", relPath(f), link, err)
			}
		}
	}
	assert.Greater(t, checked, 20, "links found")
}

// TestCheckLink shows that checkLink refuses what it should.
func TestCheckLink(t *testing.T) {
	readme := filepath.Join(repoRoot, "README.md")
	for link, ok := range map[string]bool{
		"docs/operating.md":                             true,
		"docs/operating.md#troubleshooting":             true,
		"docs/operating.md#no-such-section":             false,
		"docs/no-such-file.md":                          false,
		"#adopting-an-existing-schema":                  true,
		"#no-such-section":                              false,
		"sql/README.md":                                 true,
		"docs/console/cron.png":                         true,
		".build/screenshots/":                           true, // written by the console's tests, git-ignored
		"https://example.com/anything#whatever":         true,
		"docs/guarantees.md#delivery-guarantees-engine": true,
	} {
		err := checkLink(readme, link)
		assert.Equal(t, ok, err == nil, "%s: %v", link, err)
	}
}

var (
	fenceRE  = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```[^\\n]*$")
	codeRE   = regexp.MustCompile("`[^`]*`")
	linkRE   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headRE   = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*$`)
	schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// markdownLinks returns the link targets of a Markdown file, outside code.
func markdownLinks(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	s := codeRE.ReplaceAllString(fenceRE.ReplaceAllString(string(b), ""), "")
	var out []string
	for _, m := range linkRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkLink checks one link target of file: absolute URLs pass, a relative
// path must exist (paths under .build/, which tests write, are exempt) and
// an anchor must name a heading of the Markdown file it points into.
func checkLink(file, link string) error {
	if schemeRE.MatchString(link) {
		return nil
	}
	path, anchor, _ := strings.Cut(link, "#")
	target := file
	if path != "" {
		target = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if rel, err := filepath.Rel(repoRoot, target); err == nil && strings.HasPrefix(filepath.ToSlash(rel), ".build/") {
			return nil
		}
		if _, err := os.Stat(target); err != nil {
			return fmt.Errorf("no such file %s", relPath(target))
		}
	}
	if anchor == "" || !strings.HasSuffix(target, ".md") {
		return nil
	}
	b, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	if !headingAnchors(string(b))[anchor] {
		return fmt.Errorf("%s has no heading #%s", relPath(target), anchor)
	}
	return nil
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown text: lower case, punctuation dropped, spaces as hyphens, a
// repeated one numbered (-1, -2, ...).
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(md, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// relPath is path relative to the repository root, for messages.
func relPath(path string) string {
	if rel, err := filepath.Rel(repoRoot, path); err == nil {
		return filepath.ToSlash(rel)
	}
	return path
}
