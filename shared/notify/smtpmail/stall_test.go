package smtpmail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/internal/smtpstall"
	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

// The deadline of a stalled send, and how late after it Send may return.
const (
	stallDeadline = 250 * time.Millisecond
	stallSlack    = 100 * time.Millisecond
)

// stallSender starts a stalling server for a TLS mode (AUTH offered and
// used over TLS) and a sender for it whose Timeout (30 s) cannot end a
// stall within the test: only the context can.
func stallSender(t *testing.T, mode string) (*smtpstall.Server, *smtpmail.Sender) {
	t.Helper()
	serverTLS, clientTLS := selfSigned(t)
	cfg := smtpstall.Config{Implicit: mode == smtpmail.TLSImplicit, Auth: mode != smtpmail.TLSNone}
	if mode != smtpmail.TLSNone {
		cfg.TLS = serverTLS
	}
	srv := smtpstall.Start(t, cfg)
	sc := smtpmail.Config{Host: "127.0.0.1", Port: srv.Port(), TLS: mode, TLSConfig: clientTLS, Timeout: 30 * time.Second}
	if cfg.Auth {
		sc.Username, sc.Password = "relayuser", "s3cret"
	}
	s, err := smtpmail.New(sc)
	require.NoError(t, err)
	// The server first, so that the QUITs of stalled sessions fail at once.
	t.Cleanup(func() { srv.Close(); _ = s.Close() })
	return srv, s
}

// sendBy sends m with a stallDeadline deadline and asserts that Send
// returned by the deadline plus stallSlack.
func sendBy(t *testing.T, s *smtpmail.Sender, m notify.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stallDeadline)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := s.Send(ctx, m)
	late := time.Since(deadline)
	assert.LessOrEqual(t, late, stallSlack, "returned %v after the deadline", late)
	return err
}

// requireStallError asserts a stall's classification: a retryable timeout
// without SMTP status, ambiguous only when the content had been sent, whose
// text names the stage and not the recipient.
func requireStallError(t *testing.T, err error, stage smtpstall.Stage) {
	t.Helper()
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeTimeout, automation.ErrorCode(err), "%v", err)
	assert.True(t, notify.IsRetryable(err))
	assert.Zero(t, ne.StatusCode)
	assert.Equal(t, stage == smtpstall.EndOfData, ne.Ambiguous,
		"ambiguous exactly when the reply to the end of DATA was awaited: %v", err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), string(stage))
	assert.NotContains(t, err.Error(), "client.test")
	assert.NotContains(t, err.Error(), "s3cret")
}

var tlsModes = []string{smtpmail.TLSNone, smtpmail.TLSStartTLS, smtpmail.TLSImplicit}

// A relay that stops answering at any stage of a new session ends the send
// at the context's deadline, for each TLS mode.
func TestStallOnNewSessionEndsAtDeadline(t *testing.T) {
	for _, mode := range tlsModes {
		for _, stage := range smtpstall.Stages {
			if (stage == smtpstall.STARTTLS && mode != smtpmail.TLSStartTLS) || (stage == smtpstall.AUTH && mode == smtpmail.TLSNone) {
				continue // no such stage in this mode
			}
			t.Run(mode+"/"+string(stage), func(t *testing.T) {
				srv, s := stallSender(t, mode)
				srv.StallAt(stage)
				err := sendBy(t, s, message())
				requireStallError(t, err, stage)
				assert.Equal(t, 1, srv.Stalled(), "stalled where told")
				assert.Empty(t, srv.Delivered())
				wantReceived := 0
				if stage == smtpstall.EndOfData {
					wantReceived = 1
				}
				assert.Equal(t, wantReceived, srv.Received(), "the content was sent only when the stall came after it")

				// The stalled session is not reused: the next message goes
				// on a new one.
				srv.StallAt(smtpstall.None)
				_, err = s.Send(context.Background(), message())
				require.NoError(t, err)
				assert.Len(t, srv.Delivered(), 1)
				assert.Equal(t, 2, srv.Accepted())
			})
		}
	}
}

// A pooled session whose relay stops answering at a message command ends
// the send at the context's deadline too, and is not retried on a new
// connection (the deadline has passed).
func TestStallOnPooledSessionEndsAtDeadline(t *testing.T) {
	for _, mode := range tlsModes {
		for _, stage := range []smtpstall.Stage{smtpstall.MAIL, smtpstall.RCPT, smtpstall.DATA, smtpstall.EndOfData} {
			t.Run(mode+"/"+string(stage), func(t *testing.T) {
				srv, s := stallSender(t, mode)
				_, err := s.Send(context.Background(), message())
				require.NoError(t, err)
				srv.StallAt(stage)
				err = sendBy(t, s, message())
				requireStallError(t, err, stage)
				assert.Equal(t, 1, srv.Accepted(), "stalled on the pooled session, not redialled")
				assert.Len(t, srv.Delivered(), 1)

				srv.StallAt(smtpstall.None)
				_, err = s.Send(context.Background(), message())
				require.NoError(t, err)
				assert.Len(t, srv.Delivered(), 2)
				assert.Equal(t, 2, srv.Accepted(), "the stalled session was dropped")
			})
		}
	}
}

// Cancelling the context ends a stalled send at once (no deadline needed);
// Config.Timeout ends one whose context has no deadline.
func TestStallEndedByCancelOrTimeout(t *testing.T) {
	srv, s := stallSender(t, smtpmail.TLSNone)
	srv.StallAt(smtpstall.MAIL)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Send(ctx, message())
	assert.Less(t, time.Since(start), 100*time.Millisecond+stallSlack)
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, notify.IsRetryable(err))
	assert.False(t, ne.Ambiguous, "nothing was handed over")
	assert.ErrorIs(t, err, context.Canceled)

	_, clientTLS := selfSigned(t)
	s2, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: srv.Port(), TLS: smtpmail.TLSNone, TLSConfig: clientTLS, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close(); _ = s2.Close() })
	srv.StallAt(smtpstall.EndOfData)
	start = time.Now()
	_, err = s2.Send(context.Background(), message())
	assert.Less(t, time.Since(start), 200*time.Millisecond+stallSlack)
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeTimeout, automation.ErrorCode(err))
	assert.True(t, ne.Ambiguous, "the content was sent")
}

// AUTH over implicit TLS and after STARTTLS uses PLAIN (the connection is
// encrypted either way); without TLS no password is sent.
func TestAuthOverEveryTLSMode(t *testing.T) {
	for _, mode := range []string{smtpmail.TLSStartTLS, smtpmail.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			srv, s := stallSender(t, mode)
			_, err := s.Send(context.Background(), message())
			require.NoError(t, err)
			assert.Equal(t, []string{"PLAIN"}, srv.AuthMechanisms())
			assert.Len(t, srv.Delivered(), 1)
		})
	}
	t.Run(smtpmail.TLSNone, func(t *testing.T) {
		srv := smtpstall.Start(t, smtpstall.Config{Auth: true})
		s, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: srv.Port(), TLS: smtpmail.TLSNone, Username: "relayuser", Password: "s3cret", Timeout: 5 * time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		_, err = s.Send(context.Background(), message())
		var ne *notify.Error
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, notify.CodeAuth, automation.ErrorCode(err), "%v", err)
		assert.False(t, ne.Ambiguous)
		assert.Empty(t, srv.AuthMechanisms(), "no AUTH over plain text")
		assert.Empty(t, srv.Delivered())
	})
}

// A relay that stops reading while the content is written (a content
// larger than the connection's buffers) ends the send at the deadline too;
// the final "." was never written, so the relay cannot have accepted it:
// not ambiguous, retried on the next attempt. (The deadline is
// longer here: go-mail encodes the whole content before writing it.)
func TestStallWhileWritingContentEndsAtDeadline(t *testing.T) {
	srv, s := stallSender(t, smtpmail.TLSNone)
	srv.StallAt(smtpstall.Content)
	m := message()
	m.HTML = ""
	m.Text = strings.Repeat("0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789\n", 100_000) // 7 MB
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := s.Send(ctx, m)
	late := time.Since(deadline)
	assert.LessOrEqual(t, late, stallSlack, "returned %v after the deadline", late)
	assert.GreaterOrEqual(t, late, -stallSlack, "stalled until the deadline: %v", err)
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeTimeout, automation.ErrorCode(err), "%v", err)
	assert.False(t, ne.Ambiguous, "the message was never terminated: nothing handed over")
	assert.True(t, notify.IsRetryable(err))
	assert.Contains(t, err.Error(), "content")
	assert.Zero(t, srv.Received())
}
