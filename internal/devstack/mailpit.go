package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"time"

	"github.com/dueflow/dueflow/internal/localports"
)

// Mailpit is a running bin/mailpit: a real SMTP server with a web inbox and
// an HTTP API.
type Mailpit struct {
	proc     *process
	smtpPort int
	uiPort   int
	client   *http.Client
}

// StartMailpit runs mailpit with SMTP on 127.0.0.1:smtpPort and the UI/API on
// 127.0.0.1:uiPort (0 = free ports); its output goes to logPath.
func StartMailpit(ctx context.Context, bin string, smtpPort, uiPort int, logPath string) (*Mailpit, error) {
	var err error
	if smtpPort == 0 {
		if smtpPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	if uiPort == 0 {
		if uiPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	p, err := startProcess("mailpit", logPath, baseEnv(), "", bin,
		"--disable-version-check",
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", uiPort),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--max", "100000",
	)
	if err != nil {
		return nil, err
	}
	m := &Mailpit{proc: p, smtpPort: smtpPort, uiPort: uiPort, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: localports.DialContext}}}
	for _, port := range []int{smtpPort, uiPort} {
		if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port), p, 20*time.Second); err != nil {
			_ = p.Kill(context.Background())
			return nil, fmt.Errorf("mailpit: %w", err)
		}
	}
	return m, nil
}

// SMTPAddr is host:port of Mailpit's SMTP server.
func (m *Mailpit) SMTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.smtpPort) }

// SMTPPort is the SMTP port.
func (m *Mailpit) SMTPPort() int { return m.smtpPort }

// UIURL is the web inbox.
func (m *Mailpit) UIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.uiPort) }

// Stop kills mailpit.
func (m *Mailpit) Stop(ctx context.Context) error {
	m.client.CloseIdleConnections()
	return m.proc.Stop(ctx, 3*time.Second)
}

type mailpitAddr struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Count is the number of messages in the inbox.
func (m *Mailpit) Count(ctx context.Context) (int, error) {
	var list struct {
		Total int `json:"total"`
	}
	if err := m.get(ctx, "/api/v1/messages?limit=1", &list); err != nil {
		return 0, err
	}
	return list.Total, nil
}

// Messages reads every message through Mailpit's API, oldest first.
func (m *Mailpit) Messages(ctx context.Context) ([]Email, error) {
	var ids []string
	for start := 0; ; {
		var list struct {
			Total    int `json:"total"`
			Messages []struct {
				ID string `json:"ID"`
			} `json:"messages"`
		}
		if err := m.get(ctx, "/api/v1/messages?limit=500&start="+strconv.Itoa(start), &list); err != nil {
			return nil, err
		}
		for _, s := range list.Messages {
			ids = append(ids, s.ID)
		}
		start += len(list.Messages)
		if len(list.Messages) == 0 || start >= list.Total {
			break
		}
	}
	out := make([]Email, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- { // the API lists newest first
		var msg struct {
			From       *mailpitAddr  `json:"From"`
			To         []mailpitAddr `json:"To"`
			Cc         []mailpitAddr `json:"Cc"`
			Bcc        []mailpitAddr `json:"Bcc"`
			ReplyTo    []mailpitAddr `json:"ReplyTo"`
			ReturnPath string        `json:"ReturnPath"`
			Subject    string        `json:"Subject"`
			MessageID  string        `json:"MessageID"`
			Date       time.Time     `json:"Date"`
			Text       string        `json:"Text"`
			HTML       string        `json:"HTML"`
		}
		if err := m.get(ctx, "/api/v1/message/"+url.PathEscape(ids[i]), &msg); err != nil {
			return nil, err
		}
		e := Email{EnvelopeFrom: msg.ReturnPath, Subject: msg.Subject, MessageID: msg.MessageID, Text: msg.Text, HTML: msg.HTML, ReceivedAt: msg.Date, Headers: mail.Header{}}
		if msg.From != nil {
			e.From, e.FromName = msg.From.Address, msg.From.Name
		}
		for _, a := range msg.To {
			e.To = append(e.To, a.Address)
		}
		for _, l := range [][]mailpitAddr{msg.To, msg.Cc, msg.Bcc} {
			for _, a := range l {
				e.EnvelopeTo = append(e.EnvelopeTo, a.Address)
			}
		}
		if len(msg.ReplyTo) > 0 {
			e.ReplyTo = msg.ReplyTo[0].Address
		}
		out = append(out, e)
	}
	return out, nil
}

func (m *Mailpit) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.UIURL()+path, nil)
	if err != nil {
		return fmt.Errorf("mailpit api: %w", err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit api %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit api %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("mailpit api %s: decode: %w", path, err)
	}
	return nil
}
