package config

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/mailgun"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
	"github.com/dueflow/dueflow/shared/notify/telnyx"
	"github.com/dueflow/dueflow/shared/notify/twilio"
	"github.com/dueflow/dueflow/shared/providerevents"
)

// ProviderTimeout bounds one provider call (the engine's context bounds it
// further).
const ProviderTimeout = 30 * time.Second

// Senders builds the email sender and the SMS sender (nil when SMS_PROVIDER
// is none) the configuration names.
func (c *Config) Senders() (email, sms notify.Sender, err error) {
	hc := &http.Client{Timeout: ProviderTimeout}
	switch c.EmailProvider {
	case EmailSMTP:
		email, err = smtpmail.New(smtpmail.Config{
			Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username, Password: c.SMTP.Password.Value(),
			TLS: c.SMTP.TLS, From: c.EmailFrom, FromName: c.EmailFromName, Timeout: ProviderTimeout,
			MaxConnections: c.SMTP.MaxConnections, MaxMessagesPerConnection: c.SMTP.MaxMessagesPerConnection,
		})
	case EmailMailgun:
		email, err = mailgun.New(mailgun.Config{
			Domain: c.Mailgun.Domain, APIKey: c.Mailgun.APIKey.Value(), APIBase: c.Mailgun.APIBase,
			From: c.EmailFrom, FromName: c.EmailFromName, HTTPClient: hc,
		})
	default:
		err = fmt.Errorf("unknown provider %q", c.EmailProvider)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("config: email sender: %w", err)
	}
	switch c.SMSProvider {
	case SMSTwilio:
		sms, err = twilio.New(twilio.Config{
			AccountSID: c.Twilio.AccountSID, AuthToken: c.Twilio.AuthToken.Value(), From: c.SMSFrom,
			APIBase: c.Twilio.APIBase, HTTPClient: hc, StatusCallback: twilioStatusCallback(c.PublicURL),
		})
	case SMSTelnyx:
		sms, err = telnyx.New(telnyx.Config{
			APIKey: c.Telnyx.APIKey.Value(), MessagingProfileID: c.Telnyx.MessagingProfileID, From: c.SMSFrom,
			APIBase: c.Telnyx.APIBase, HTTPClient: hc,
		})
	case SMSNone:
	default:
		err = fmt.Errorf("unknown provider %q", c.SMSProvider)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("config: sms sender: %w", err)
	}
	return email, sms, nil
}

// twilioStatusCallback is where Twilio reports each message's delivery
// status: the provider-events function's status path under
// DUEFLOW_PUBLIC_URL; "" when that is not set.
func twilioStatusCallback(publicURL string) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + providerevents.PathTwilioStatus
}
