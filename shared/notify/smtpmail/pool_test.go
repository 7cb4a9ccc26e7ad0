package smtpmail_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/notify"
	"github.com/dueflow/dueflow/shared/notify/smtpmail"
)

func TestSessionReusedForManyMessages(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	b := &backend{user: "relayuser", pass: "s3cret"}
	host, port, cc := startCountingServer(t, b, serverTLS, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLSConfig: clientTLS, Username: "relayuser", Password: "s3cret", Timeout: 5 * time.Second})
	require.NoError(t, err)
	for range 5 {
		_, err := s.Send(context.Background(), message())
		require.NoError(t, err)
	}
	require.Len(t, b.msgs, 5)
	for _, m := range b.msgs {
		assert.Equal(t, "relayuser", m.User, "every message on the authenticated session")
		assert.Equal(t, []string{"ana@client.test"}, m.To, "no recipient carried over from an earlier message")
	}
	accepted, open, _ := cc.stats()
	assert.Equal(t, 1, accepted, "one STARTTLS+AUTH session for all five")
	assert.Equal(t, 1, open, "kept open for the next send")

	require.NoError(t, s.Close())
	assert.Eventually(t, func() bool { _, open, _ := cc.stats(); return open == 0 }, 5*time.Second, 10*time.Millisecond, "Close ends the session")
	_, err = s.Send(context.Background(), message())
	require.Error(t, err, "closed")
	assert.False(t, notify.IsAmbiguous(err))
}

func TestDroppedIdleSessionIsReplacedTransparently(t *testing.T) {
	b := &backend{}
	host, port, cc := startCountingServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Send(context.Background(), message())
	require.NoError(t, err)

	cc.dropAll() // the relay closes the idle connection
	assert.Eventually(t, func() bool { _, open, _ := cc.stats(); return open == 0 }, 5*time.Second, 10*time.Millisecond)
	res, err := s.Send(context.Background(), message())
	require.NoError(t, err, "MAIL FROM failed before any hand-over: re-sent on a new connection")
	assert.NotEmpty(t, res.MessageID)
	require.Len(t, b.msgs, 2, "delivered exactly once")
	accepted, _, _ := cc.stats()
	assert.Equal(t, 2, accepted)

	// A 421 "closing channel" to MAIL FROM on a reused session likewise.
	b.mu.Lock()
	b.mailErrOnce = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "idle too long, closing"}
	b.mu.Unlock()
	_, err = s.Send(context.Background(), message())
	require.NoError(t, err)
	require.Len(t, b.msgs, 3)
	accepted, _, _ = cc.stats()
	assert.Equal(t, 3, accepted)
}

func TestRejectedMessageDoesNotPoisonSession(t *testing.T) {
	b := &backend{reject: map[string]*smtp.SMTPError{
		"nobody@client.test": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"},
		"busy@client.test":   {Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"},
	}}
	host, port, cc := startCountingServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	for _, bad := range []string{"nobody@client.test", "busy@client.test"} {
		m := message()
		m.To = bad
		_, err = s.Send(context.Background(), m)
		require.Error(t, err)
		assert.False(t, notify.IsAmbiguous(err))
		_, err = s.Send(context.Background(), message())
		require.NoError(t, err, "the next message after %s goes through", bad)
	}
	b.mu.Lock()
	b.dataErr = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big"}
	b.mu.Unlock()
	_, err = s.Send(context.Background(), message())
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, notify.CodeRejected, automation.ErrorCode(err))
	assert.False(t, ne.Ambiguous)
	b.mu.Lock()
	b.dataErr = nil
	b.mu.Unlock()
	_, err = s.Send(context.Background(), message())
	require.NoError(t, err)

	require.Len(t, b.msgs, 3)
	for _, m := range b.msgs {
		assert.Equal(t, []string{"ana@client.test"}, m.To, "no recipient of a rejected message carried over")
	}
	accepted, _, _ := cc.stats()
	assert.Equal(t, 1, accepted, "rejections answered by the server keep the session")
}

func TestConcurrencyBounded(t *testing.T) {
	b := &backend{delay: 20 * time.Millisecond}
	host, port, cc := startCountingServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second, MaxConnections: 3})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			_, err := s.Send(context.Background(), message())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Len(t, b.msgs, 30)
	accepted, _, peak := cc.stats()
	assert.LessOrEqual(t, peak, 3, "never more sessions than MaxConnections")
	assert.LessOrEqual(t, accepted, 3, "the three sessions carried all thirty messages")
	assert.GreaterOrEqual(t, peak, 2, "sends ran concurrently")
	assert.LessOrEqual(t, b.peakData, 3)
}

func TestSessionLimits(t *testing.T) {
	b := &backend{}
	host, port, cc := startCountingServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second,
		MaxMessagesPerConnection: 3, IdleTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for range 7 {
		_, err := s.Send(context.Background(), message())
		require.NoError(t, err)
	}
	accepted, _, _ := cc.stats()
	assert.Equal(t, 3, accepted, "at most three messages per session")

	assert.Eventually(t, func() bool { _, open, _ := cc.stats(); return open == 0 }, 5*time.Second, 10*time.Millisecond,
		"a session idle for IdleTimeout is closed without waiting for the next send")
	_, err = s.Send(context.Background(), message())
	require.NoError(t, err)
	accepted, _, _ = cc.stats()
	assert.Equal(t, 4, accepted, "an idle-expired session is not reused")
	require.Len(t, b.msgs, 8)
}

// TestLostAfterDataOnReusedSessionIsNotRetried: a reused session that breaks
// after the content was sent is ambiguous and never re-sent, even though a
// break before the hand-over would be.
func TestLostAfterDataOnReusedSessionIsNotRetried(t *testing.T) {
	port, accepts := rawPeer(t, 2)
	s, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: port, TLS: smtpmail.TLSNone, Timeout: 3 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Send(context.Background(), message())
	require.NoError(t, err)
	_, err = s.Send(context.Background(), message())
	var ne *notify.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, notify.IsAmbiguous(err), "%v", err)
	assert.Equal(t, int32(1), accepts.Load(), "not retried on a new connection")
}

// rawPeer is a TCP peer that speaks just enough SMTP to take messages on one
// connection and hangs up, without the final reply, after the content of
// message number hangUpAt. It counts the connections it accepts.
func rawPeer(t *testing.T, hangUpAt int) (int, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var accepts atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			go serveRaw(c, hangUpAt)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, &accepts
}

func serveRaw(c net.Conn, hangUpAt int) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	var in strings.Builder
	_, _ = c.Write([]byte("220 localhost ESMTP\r\n"))
	data, n := false, 0
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		in.WriteString(string(buf[:k]))
		for {
			s := in.String()
			if data {
				i := strings.Index(s, "\r\n.\r\n")
				if i < 0 {
					break
				}
				n++
				if n == hangUpAt {
					return // hang up instead of "250 queued"
				}
				_, _ = c.Write([]byte("250 queued\r\n"))
				data = false
				in.Reset()
				in.WriteString(s[i+5:])
				continue
			}
			i := strings.Index(s, "\r\n")
			if i < 0 {
				break
			}
			line := strings.ToUpper(s[:i])
			in.Reset()
			in.WriteString(s[i+2:])
			switch {
			case strings.HasPrefix(line, "EHLO"), strings.HasPrefix(line, "HELO"):
				_, _ = c.Write([]byte("250 localhost\r\n"))
			case strings.HasPrefix(line, "DATA"):
				_, _ = c.Write([]byte("354 go ahead\r\n"))
				data = true
			case strings.HasPrefix(line, "QUIT"):
				_, _ = c.Write([]byte("221 bye\r\n"))
				return
			default:
				_, _ = c.Write([]byte("250 ok\r\n"))
			}
		}
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	b := &backend{}
	host, port := startServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Send(context.Background(), message()) // leaves a pooled session
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Send(ctx, message())
	require.Error(t, err)
	assert.True(t, notify.IsRetryable(err))
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Len(t, b.msgs, 1, "not sent on the pooled session either")
}

func TestCloseWhileSending(t *testing.T) {
	b := &backend{delay: 30 * time.Millisecond}
	host, port, cc := startCountingServer(t, b, nil, false)
	s, err := smtpmail.New(smtpmail.Config{Host: host, Port: port, TLS: smtpmail.TLSNone, Timeout: 5 * time.Second, MaxConnections: 2})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var sent atomic.Int32
	for range 6 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), message()); err == nil {
				sent.Add(1)
			} else {
				assert.False(t, notify.IsAmbiguous(err), "refused sends were never handed over: %v", err)
			}
		})
	}
	time.Sleep(40 * time.Millisecond)
	require.NoError(t, s.Close())
	wg.Wait()
	b.mu.Lock()
	assert.Len(t, b.msgs, int(sent.Load()), "every send reported sent was received, no other")
	b.mu.Unlock()
	assert.Eventually(t, func() bool { _, open, _ := cc.stats(); return open == 0 }, 5*time.Second, 10*time.Millisecond,
		"sessions in use at Close are closed when their send ends")
}
