package devstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quiet asserts that nothing arrives on c for a moment (the server stalls).
func quiet(t *testing.T, raw net.Conn, c *textproto.Conn) {
	t.Helper()
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err := c.ReadLine()
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "no answer, the connection open: %v", err)
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(5*time.Second)))
}

// converse dials the capture and talks SMTP up to (not including) stage's
// answer.
func converse(t *testing.T, c *SMTPCapture, stage SMTPStage) (net.Conn, *textproto.Conn) {
	t.Helper()
	raw, err := net.Dial("tcp", c.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(5*time.Second)))
	tc := textproto.NewConn(raw)
	if stage == StallGreeting {
		return raw, tc
	}
	_, _, err = tc.ReadResponse(220)
	require.NoError(t, err)
	require.NoError(t, tc.PrintfLine("EHLO client.test"))
	if stage == StallEHLO {
		return raw, tc
	}
	_, _, err = tc.ReadResponse(250)
	require.NoError(t, err)
	require.NoError(t, tc.PrintfLine("MAIL FROM:<from@example.test>"))
	if stage == StallMail {
		return raw, tc
	}
	_, _, err = tc.ReadResponse(250)
	require.NoError(t, err)
	require.NoError(t, tc.PrintfLine("RCPT TO:<to@example.test>"))
	_, _, err = tc.ReadResponse(250)
	require.NoError(t, err)
	require.NoError(t, tc.PrintfLine("DATA"))
	_, _, err = tc.ReadResponse(354)
	require.NoError(t, err)
	w := tc.DotWriter()
	_, err = io.WriteString(w, "From: from@example.test\r\nTo: to@example.test\r\nSubject: hi\r\n\r\nhello\r\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return raw, tc
}

// Each stall stage leaves a real TCP client without an answer until the
// stall ends; then the conversation is closed and nothing was recorded.
// DropAfterData closes the connection after the content, without a reply.
func TestSMTPCaptureStallsAndDrops(t *testing.T) {
	c, err := StartSMTPCapture(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	for _, stage := range []SMTPStage{StallGreeting, StallEHLO, StallMail, StallDataEnd} {
		t.Run(stage.String(), func(t *testing.T) {
			before := c.Stalled()
			c.Stall(stage)
			raw, tc := converse(t, c, stage)
			quiet(t, raw, tc)
			assert.Equal(t, before+1, c.Stalled())
			c.Stall(StallNone)
			// the stall ends: a 421 for a stalled command, or the connection closed
			line, err := tc.ReadLine()
			if err == nil {
				assert.Regexp(t, `^421 `, line)
			}
			assert.Zero(t, c.Count(), "nothing stalled is recorded")
		})
	}

	t.Run("drop after data", func(t *testing.T) {
		c.DropAfterData(1)
		_, tc := converse(t, c, StallNone)
		_, err := tc.ReadLine()
		assert.ErrorIs(t, err, io.EOF, "closed without a reply")
		assert.Equal(t, 1, c.Dropped())
		assert.Zero(t, c.Count())

		_, tc = converse(t, c, StallNone)
		_, _, err = tc.ReadResponse(250)
		require.NoError(t, err, "the next message is accepted")
		assert.Equal(t, 1, c.Count())
	})
}
