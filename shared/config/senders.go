package config

import (
	"fmt"

	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// Senders builds the email sender and the SMS sender (nil when SMS_PROVIDER
// is none) the configuration names.
func (c *Config) Senders() (email, sms notify.Sender, err error) {
	switch c.EmailProvider {
	case EmailSMTP:
		email, err = smtpmail.New(smtpmail.Config{
			Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username, Password: c.SMTP.Password.Value(),
			TLS: c.SMTP.TLS, From: c.EmailFrom, FromName: c.EmailFromName,
		})
	default:
		err = fmt.Errorf("email provider %q is not available in this build", c.EmailProvider)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("config: email sender: %w", err)
	}
	switch c.SMSProvider {
	case SMSNone:
	default:
		return nil, nil, fmt.Errorf("config: sms sender: provider %q is not available in this build", c.SMSProvider)
	}
	return email, sms, nil
}
