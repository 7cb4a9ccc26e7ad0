package render

import (
	"html"
	"regexp"
	"strings"
)

var (
	reDropBlocks = regexp.MustCompile(`(?is)<(script|style|head|title)\b[^>]*>.*?</(script|style|head|title)\s*>`)
	reComments   = regexp.MustCompile(`(?s)<!--.*?-->`)
	reLink       = regexp.MustCompile(`(?is)<a\b[^>]*\bhref\s*=\s*("([^"]*)"|'([^']*)')[^>]*>(.*?)</a\s*>`)
	reBreak      = regexp.MustCompile(`(?i)<br\s*/?>`)
	reBlockEnd   = regexp.MustCompile(`(?i)</(p|div|h[1-6]|tr|table|ul|ol|blockquote)\s*>|<(p|div|h[1-6]|tr|table|ul|ol|blockquote)\b[^>]*>`)
	reListItem   = regexp.MustCompile(`(?i)<li\b[^>]*>`)
	reTag        = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpaces     = regexp.MustCompile(`[ \t\r\f\v]+`)
	reBlankLines = regexp.MustCompile(`\n{3,}`)
)

// StripTags derives a readable plain-text version of an HTML email body:
// scripts and styles dropped, block elements and <br> become line breaks,
// links keep their target ("text (url)"), entities decoded.
func StripTags(s string) string {
	if s == "" {
		return ""
	}
	s = reComments.ReplaceAllString(s, "")
	s = reDropBlocks.ReplaceAllString(s, "")
	s = reLink.ReplaceAllStringFunc(s, func(m string) string {
		p := reLink.FindStringSubmatch(m)
		href := p[2] + p[3]
		text := strings.TrimSpace(reTag.ReplaceAllString(p[4], ""))
		if href == "" || strings.HasPrefix(href, "#") || html.UnescapeString(text) == html.UnescapeString(href) {
			return p[4]
		}
		return p[4] + " (" + href + ")"
	})
	s = strings.ReplaceAll(s, "\n", " ")
	s = reBreak.ReplaceAllString(s, "\n")
	s = reListItem.ReplaceAllString(s, "\n- ")
	s = reBlockEnd.ReplaceAllString(s, "\n\n")
	s = reTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\u00a0", " ")
	s = reSpaces.ReplaceAllString(s, " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	s = strings.Join(lines, "\n")
	s = reBlankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}
