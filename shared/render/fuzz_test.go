package render_test

import (
	"strings"
	"testing"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/render"
)

// FuzzText: no panic; text without "{{" is returned unchanged; a rendered
// template contains no value that was not escaped in HTML mode; a value in
// an href is an http(s) link or nothing.
func FuzzText(f *testing.F) {
	for _, s := range []string{"Hi {{client.first_name}}", "{{", "}}{{", "{{ invoice.balance }}{{job.title}}", "{{{{client.first_name}}}}", "plain"} {
		f.Add(s, "<b>&\"'")
		f.Add(s, "javascript:alert(1)")
		f.Add(s, "https://x.test/a?b=1&c=2")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		v := render.Vars{"client.first_name": value}
		out, err := render.Text(tmpl, v)
		if !strings.Contains(tmpl, "{{") && (err != nil || out != tmpl) {
			t.Fatalf("plain text changed: %q -> %q, %v", tmpl, out, err)
		}
		if err != nil && automation.ErrorCode(err) != automation.CodeTemplate {
			t.Fatalf("unclassified error %v", err)
		}
		h, err := render.HTML("<p>{{client.first_name}}</p>", v)
		if err != nil || strings.ContainsAny(strings.TrimSuffix(strings.TrimPrefix(h, "<p>"), "</p>"), "<>\"'") {
			t.Fatalf("value not escaped: %q", h)
		}
		a, err := render.HTML(`<a href="{{client.first_name}}">`, v)
		href := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(a, `<a href="`), `">`))
		if err != nil || (href != "" && !strings.HasPrefix(href, "http://") && !strings.HasPrefix(href, "https://")) {
			t.Fatalf("not a link in an href: %q", a)
		}
		_ = render.StripTags(tmpl)
	})
}
