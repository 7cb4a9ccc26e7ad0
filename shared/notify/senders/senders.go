// Package senders builds the message senders a function's configuration
// names: the wiring between shared/config, which only reads and checks the
// settings, and the provider packages of shared/notify.
package senders

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/config"
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

// FromConfig builds the email sender and the SMS sender (nil when
// SMS_PROVIDER is none) that cfg names.
func FromConfig(cfg *config.Config) (email, sms notify.Sender, err error) {
	hc := &http.Client{Timeout: ProviderTimeout}
	switch cfg.EmailProvider {
	case config.EmailSMTP:
		email, err = smtpmail.New(smtpmail.Config{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password.Value(),
			TLS: cfg.SMTP.TLS, From: cfg.EmailFrom, FromName: cfg.EmailFromName, Timeout: ProviderTimeout,
			MaxConnections: cfg.SMTP.MaxConnections, MaxMessagesPerConnection: cfg.SMTP.MaxMessagesPerConnection,
		})
	case config.EmailMailgun:
		email, err = mailgun.New(mailgun.Config{
			Domain: cfg.Mailgun.Domain, APIKey: cfg.Mailgun.APIKey.Value(), APIBase: cfg.Mailgun.APIBase,
			From: cfg.EmailFrom, FromName: cfg.EmailFromName, HTTPClient: hc,
		})
	default:
		err = fmt.Errorf("unknown provider %q", cfg.EmailProvider)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("email sender: %w", err)
	}
	switch cfg.SMSProvider {
	case config.SMSTwilio:
		sms, err = twilio.New(twilio.Config{
			AccountSID: cfg.Twilio.AccountSID, AuthToken: cfg.Twilio.AuthToken.Value(), From: cfg.SMSFrom,
			APIBase: cfg.Twilio.APIBase, HTTPClient: hc, StatusCallback: twilioStatusCallback(cfg.PublicURL),
		})
	case config.SMSTelnyx:
		sms, err = telnyx.New(telnyx.Config{
			APIKey: cfg.Telnyx.APIKey.Value(), MessagingProfileID: cfg.Telnyx.MessagingProfileID, From: cfg.SMSFrom,
			APIBase: cfg.Telnyx.APIBase, HTTPClient: hc,
		})
	case config.SMSNone:
	default:
		err = fmt.Errorf("unknown provider %q", cfg.SMSProvider)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sms sender: %w", err)
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

// Close closes the senders that hold connections open (the SMTP pool);
// nil senders and the others are skipped.
func Close(ss ...notify.Sender) {
	for _, s := range ss {
		if c, ok := s.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
