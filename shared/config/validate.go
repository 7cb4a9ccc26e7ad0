package config

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/notify/twilio"
	"github.com/dueflow/dueflow/shared/supabase"
)

// Names of the Supabase key: the current one, and the legacy one, which
// keeps working (either may hold either kind of key).
const (
	EnvSecretKey      = "SUPABASE_SECRET_KEY"
	EnvServiceRoleKey = "SUPABASE_SERVICE_ROLE_KEY"
)

// LeaseMargin is how much longer than the function timeout a lease must
// last, so that an execution is never claimed again while the invocation
// that holds it may still be running.
const LeaseMargin = 30 * time.Second

// MaxFunctionTimeout is Lambda's longest function timeout.
const MaxFunctionTimeout = 15 * time.Minute

// localHosts names the hosts plain http (and SMTP without TLS) may go to;
// the same list as automation_register_endpoint's, with all of 127.0.0.0/8.
const localHosts = "localhost, 127.0.0.0/8, [::1] and host.docker.internal"

// isLocalHost reports whether host (without port; brackets allowed) is the
// machine itself: localhost, a loopback address, or host.docker.internal
// (the host as seen from a local container).
func isLocalHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if h == "localhost" || h == "host.docker.internal" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// headerSafe reports whether s is made of visible ASCII only, as a key sent
// in an HTTP header must be: whitespace, control characters or non-ASCII
// in a credential are always a copy-and-paste mistake.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

const notHeaderSafe = " contains whitespace, control or non-ASCII characters"

// credential reads a key sent in an HTTP header; its value is never shown.
func (p *parser) credential(name string, required bool) Secret {
	v := p.str(name, required)
	if v != "" && !headerSafe(v) {
		p.bad(name + notHeaderSafe)
	}
	return Secret(v)
}

// smtpPassword reads SMTP_PASSWORD: any text but control characters (it is
// base64-encoded for AUTH, so spaces and non-ASCII are possible).
func (p *parser) smtpPassword() Secret {
	v := p.str("SMTP_PASSWORD", false)
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		p.bad("SMTP_PASSWORD contains control characters")
	}
	return Secret(v)
}

// checkSMTPInClear refuses a password sent without TLS to a remote relay.
func (p *parser) checkSMTPInClear(s SMTP) {
	if s.TLS == "none" && s.Password != "" && s.Host != "" && !isLocalHost(s.Host) {
		p.bad(fmt.Sprintf("SMTP_TLS none with SMTP_PASSWORD would send the password in clear to %s: use starttls or tls (none is for %s only)", s.Host, localHosts))
	}
}

// supabaseKey reads the key of the RPCs from SUPABASE_SECRET_KEY or the
// legacy SUPABASE_SERVICE_ROLE_KEY (one of them, or both with the same
// value) and checks its kind.
func (p *parser) supabaseKey() Secret {
	cur, legacy := p.str(EnvSecretKey, false), p.str(EnvServiceRoleKey, false)
	name, key := EnvSecretKey, cur
	switch {
	case cur == "" && legacy == "":
		p.bad(EnvSecretKey + " (or the legacy " + EnvServiceRoleKey + ") is required")
		return ""
	case cur == "":
		name, key = EnvServiceRoleKey, legacy
	case legacy != "" && legacy != cur:
		p.bad(EnvSecretKey + " and " + EnvServiceRoleKey + " hold different keys: set one of them")
		return ""
	}
	if problem := supabaseKeyProblem(key); problem != "" {
		p.bad(name + " " + problem)
		return ""
	}
	return Secret(key)
}

const (
	dashboardKeys   = "the dashboard's Project Settings → API Keys"
	secretKeyChars  = `^[A-Za-z0-9_-]+$`
	takeASecretKey  = "take a secret key (sb_secret_…) from " + dashboardKeys
	orLegacyService = " (or the legacy service_role key, under its Legacy API keys tab)"
)

var secretKeyRest = regexp.MustCompile(secretKeyChars)

// supabaseKeyProblem says what is wrong with a Supabase key ("" when it is
// a secret key or a service_role JWT), without showing it.
func supabaseKeyProblem(k string) string {
	if !headerSafe(k) {
		return notHeaderSafe[1:]
	}
	if rest, ok := strings.CutPrefix(k, supabase.SecretKeyPrefix); ok {
		if !secretKeyRest.MatchString(rest) {
			return "is not a whole secret key (sb_secret_ followed by letters, digits, _ or -)"
		}
		return ""
	}
	if strings.HasPrefix(k, supabase.PublishableKeyPrefix) {
		return "is a publishable key (sb_publishable_…), which cannot call the automation functions: " + takeASecretKey
	}
	role, ok := jwtRole(k)
	switch {
	case !ok:
		return "is neither a secret key (sb_secret_…) nor a legacy service_role JWT: " + takeASecretKey
	case role == "anon":
		return "is the legacy anon key, which cannot call the automation functions: " + takeASecretKey + orLegacyService
	case role != "service_role":
		return fmt.Sprintf("has role %q, want service_role: %s%s", role, takeASecretKey, orLegacyService)
	}
	return ""
}

var (
	twilioAccountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	twilioAPIKeySID  = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	twilioAuthToken  = regexp.MustCompile(`^[0-9A-Za-z]{32}$`)
)

// checkTwilio checks the shapes of the account SID ("AC" + 32 hex digits)
// and auth token (32 characters; Twilio's are hex). The sender signs in
// with the account SID, so an API key SID ("SK…") is refused by name.
func (p *parser) checkTwilio(t Twilio) {
	switch {
	case t.AccountSID == "":
	case twilioAPIKeySID.MatchString(t.AccountSID):
		p.bad("TWILIO_ACCOUNT_SID is an API key SID (SK…): dueflow signs in with the Account SID (AC…) and its Auth Token, from the Twilio Console's account dashboard")
	case !twilioAccountSID.MatchString(t.AccountSID):
		p.bad("TWILIO_ACCOUNT_SID is not AC followed by 32 hex digits (the Account SID on the Twilio Console's account dashboard)")
	}
	if tok := t.AuthToken.Value(); tok != "" && headerSafe(tok) && !twilioAuthToken.MatchString(tok) {
		p.bad("TWILIO_AUTH_TOKEN is not 32 letters and digits (the Auth Token on the Twilio Console's account dashboard)")
	}
}

// checkTelnyx checks that the key is a v2 API key ("KEY…").
func (p *parser) checkTelnyx(t Telnyx) {
	if k := t.APIKey.Value(); k != "" && !strings.HasPrefix(k, "KEY") {
		p.bad("TELNYX_API_KEY does not start with KEY: take a v2 API key from the Telnyx portal's API Keys page")
	}
}

var (
	e164Number = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	// alphanumericSender is a sender ID: 1 to 11 letters, digits or spaces
	// with at least one letter (checked apart).
	alphanumericSender = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	aLetter            = regexp.MustCompile(`[A-Za-z]`)
)

// checkSMSFrom checks the default sender of the SMS provider: an E.164
// number, a Twilio messaging service SID (twilio only) or an alphanumeric
// sender ID. The value is not shown (a phone number).
func (p *parser) checkSMSFrom(provider, from string) {
	if from == "" || (provider != SMSTwilio && provider != SMSTelnyx) {
		return
	}
	if e164Number.MatchString(from) || (alphanumericSender.MatchString(from) && aLetter.MatchString(from)) {
		return
	}
	if provider == SMSTwilio {
		if twilio.IsMessagingServiceSID(from) {
			return
		}
		p.bad("SMS_FROM is not an E.164 number (+ and 7 to 15 digits, no spaces), a messaging service SID (MG and 32 hex digits) or an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter)")
		return
	}
	p.bad("SMS_FROM is not an E.164 number (+ and 7 to 15 digits, no spaces) or an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter)")
}

// checkLease refuses a lease that may run out while the invocation holding
// it still runs: shorter than the function timeout plus LeaseMargin.
func (p *parser) checkLease(leaseSeconds int, functionTimeout time.Duration) {
	if functionTimeout > MaxFunctionTimeout {
		p.bad(fmt.Sprintf("DUEFLOW_FUNCTION_TIMEOUT %s is longer than Lambda's %s", functionTimeout, MaxFunctionTimeout))
		return
	}
	need := functionTimeout + LeaseMargin
	if functionTimeout > 0 && time.Duration(leaseSeconds)*time.Second < need {
		p.bad(fmt.Sprintf("DUEFLOW_LEASE_SECONDS %d is shorter than the function timeout (DUEFLOW_FUNCTION_TIMEOUT %s) plus %s: an execution could be claimed again while its invocation still runs; use at least %d",
			leaseSeconds, functionTimeout, LeaseMargin, int((need+time.Second-1)/time.Second)))
	}
}
