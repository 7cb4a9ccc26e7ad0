package redact_test

import (
	"strings"
	"testing"

	"github.com/dueflow/dueflow/shared/redact"
)

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// e-mail addresses
		{"alice@client.test", "a***@c***.test"},
		{"to <zelda.quux@wombat-client.test>: rejected", "to <z***@w***.test>: rejected"},
		{"550 5.1.1 <bob@mail.example.co.uk>: Recipient address rejected", "550 5.1.1 <b***@m***.uk>: Recipient address rejected"},
		{"'bob+tag@x.test'", "'b***@x***.test'"},
		{"to=zelda%40wombat-client.test&x=1", "to=z***%40w***.test&x=1"},
		{"root@localhost failed", "r***@l*** failed"},
		{"José.Núñez@correo.test.", "J***@c***.test."},
		{"o'brien@x.test rejected", "o***@x***.test rejected"},
		{`<"john smith"@client.test>: unknown`, "<j***@c***.test>: unknown"},
		{`"Ada" <"ada lovelace"@client.test>`, `"Ada" <a***@c***.test>`},
		// phone numbers
		{"The 'To' number +15005550001 is not a valid phone number.", "The 'To' number +1******0001 is not a valid phone number."},
		{"call +1 (212) 555-2671 now", "call +1******2671 now"},
		{"(500) 555-0006", "5*****0006"},
		{"5005550006", "5*****0006"},
		{"15005550006", "1******0006"},
		{"+44 (0)20 7946 0958", "+4********0958"},
		{"0412 345 678", "0*****5678"},
		{"555.123.4567", "5*****4567"},
		{"tel:+15005550006;", "tel:+1******0006;"},
		{"/v1/numbers/+15005550006/x", "/v1/numbers/+1******0006/x"},
		{"numbers 5005550006 5005550007", "numbers 5***************0007"},
		{"+15005550006,+15005550007", "+1******0006,+1******0007"},
		{"To=%2B19175550143&From=%2b15005550006", "To=%2B1******0143&From=%2b1******0006"},
		{"GET /v1/lookup/%2B19175550143 failed", "GET /v1/lookup/%2B1******0143 failed"},
		// identifiers kept
		{"request 123e4567-e89b-12d3-a456-426614174000 failed", "request 123e4567-e89b-12d3-a456-426614174000 failed"},
		{"id 12345678-1234-1234-1234-123456789012", "id 12345678-1234-1234-1234-123456789012"},
		{"at 2026-12-02T13:20:04.123456Z", "at 2026-12-02T13:20:04.123456Z"},
		{"at 2026-12-02 13:20:04+01:00 or 02.12.2026", "at 2026-12-02 13:20:04+01:00 or 02.12.2026"},
		{"550 5.1.1 User unknown", "550 5.1.1 User unknown"},
		{"451 4.7.1 1234567 try later", "451 4.7.1 1**4567 try later"},
		{"mailgun: provider_rejected (status 400): bad request", "mailgun: provider_rejected (status 400): bad request"},
		{"twilio code 21211 see docs/errors/21211", "twilio code 21211 see docs/errors/21211"},
		{"sid SM0123456789abcdef0123456789abcdef", "sid SM0123456789abcdef0123456789abcdef"},
		{"x-request-id: 4f3a2b1c9d8e7f6012345678", "x-request-id: 4f3a2b1c9d8e7f6012345678"},
		{"req-12345678 and 12345678-abc", "req-12345678 and 12345678-abc"},
		{"dial tcp 192.168.100.200:443: connect: refused", "dial tcp 192.168.100.200:443: connect: refused"},
		{"at 1764681604 (1764681604123 ms)", "at 1764681604 (1764681604123 ms)"},
		{"order 12345678901234567890", "order 12345678901234567890"},
		{"took 1.5s, 123456 bytes", "took 1.5s, 123456 bytes"},
		{"", ""},
	} {
		if got := redact.Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := redact.Text(tc.want); again != tc.want {
			t.Errorf("Text(%q) = %q: masking twice changes it", tc.want, again)
		}
	}
}

func TestEmailAndPhone(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@client.test", "a***@c***.test"},
		{"alice", "a***"},
		{"", ""},
		{"@x", "***@x***"},
	} {
		if got := redact.Email(tc.in); got != tc.want {
			t.Errorf("Email(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"+12125552671", "+1******2671"},
		{"+1 (212) 555-2671", "+1******2671"},
		{"(+1) 212 555 2671", "+1******2671"},
		{"12345", "*****"},
		{"", ""},
	} {
		if got := redact.Phone(tc.in); got != tc.want {
			t.Errorf("Phone(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api:s3cr3t@api.mailgun.test/v3/mg.test/messages", "https://api@api.mailgun.test/v3/mg.test/messages"},
		{"smtp://zelda%40wombat-client.test:pw@smtp.test:587", "smtp://z%2A%2A%2A%40w%2A%2A%2A.test@smtp.test:587"},
		{"https://x.test/a?To=%2B15005550006&api_key=abc&Signature=zz&page=2", "https://x.test/a?To=%2B1%2A%2A%2A%2A%2A%2A0006&api_key=redacted&Signature=redacted&page=2"},
		{"https://x.test/v1/numbers/+15005550006?access_token=t", "https://x.test/v1/numbers/+1%2A%2A%2A%2A%2A%2A0006?access_token=redacted"},
		{"https://x.test/p?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ab&flag", "https://x.test/p?X-Amz-Credential=redacted&X-Amz-Signature=redacted&flag"},
		{"not a url \x7f alice@client.test", "not a url \x7f a***@c***.test"},
		{"https://sk_live_abc@api.example/v1/charges", "https://api.example/v1/charges"},
		{"https://zelda%40wombat-client.test@api.example/x", "https://api.example/x"},
	} {
		if got := redact.URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A connection string's password never survives, even where net/url
// cannot parse it or reads it as part of the path, nor in libpq's
// key=value form.
func TestURLPasswordsNeverSurvive(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres:S3cr3t@db.acme.test:5432/postgres", "postgres://postgres@db.acme.test:5432/postgres"},
		{"postgresql://u:p%40S3@h/db?sslmode=require&password=S3cr3t", "postgresql://u@h/db?sslmode=require&password=redacted"},
		{"postgres://u:S3/x@h/db", "postgres://***@h/db"},
		{"postgres://u:12/S3@h/db", "postgres://***@h/db"},
		{"postgres://u:S3?x@h/db", "postgres://***@h/db"},
		{"postgres://u:S3#x@h/db", "postgres://***@h/db"},
		{"postgres://u:p@S3@h:5432/db", "postgres://u@h:5432/db"},
		{"postgres://owner:S3 x@db host/x", "postgres://***@db host/x"},
		{"host=db.acme.test user=postgres password=S3cr3t dbname=x", "host=db.acme.test user=postgres password=*** dbname=x"},
		{`host=db password='S3 cr\'3t' dbname=x`, "host=db password=*** dbname=x"},
		{"host=db PASSWORD = S3cr3t", "host=db password=***"},
		{"https://x.test/users/ada", "https://x.test/users/ada"},
	} {
		got := redact.URL(tc.in)
		if got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "S3") {
			t.Errorf("URL(%q) = %q shows the password", tc.in, got)
		}
	}
}

// FuzzText: no input makes Text panic; a distinctive address and phone
// number put anywhere in the input do not survive (in any of the forms the
// test writes them), and a UUID and an RFC 3339 time standing apart do.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "a", "@", "+", "((((", "1-2-3-4-5-6-7-8", "x@y", "%40", "é@ü.ß", "+1 (212) 555-2671", "5.1.1", "2026-12-02", "\xff\xfe@\xff.x"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, pre, post string) {
		_ = redact.Text(pre + post)
		_ = redact.URL(pre + post)
		_ = redact.Email(pre)
		_ = redact.Phone(pre)
		const (
			email = "zelda.quux@wombat-client.test"
			uuid  = "123e4567-e89b-12d3-a456-426614174000"
			when  = "2026-12-02T13:20:04Z"
		)
		for _, p := range []string{"+15005550006", "(500) 555-0006", "500-555-0006"} {
			in := pre + " " + email + " " + p + " " + uuid + " " + when + " " + post
			got := redact.Text(in)
			if strings.Contains(got, "zelda.quux") || strings.Contains(got, "wombat-client") {
				t.Fatalf("Text(%q) = %q: address kept", in, got)
			}
			if strings.Count(got, "555") > strings.Count(pre+post, "555") {
				t.Fatalf("Text(%q) = %q: phone number kept", in, got)
			}
			if !strings.Contains(got, " "+uuid+" "+when+" ") {
				t.Fatalf("Text(%q) = %q: id or time mangled", in, got)
			}
		}
	})
}
