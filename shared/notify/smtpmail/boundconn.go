package smtpmail

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// boundConn is a net.Conn whose deadlines never reach past the deadline of
// the send it is bound to, and which stops every read and write at once
// when that send's context ends. go-mail takes no context once connected:
// it sets its own deadlines (now + Config.Timeout) before each stage, and
// they pass through here (TLS included: a tls.Conn sets the deadlines of
// the conn under it).
type boundConn struct {
	net.Conn
	stop func() bool // stops the context watch of the current binding; owned by the binder

	mu              sync.Mutex
	gen             uint64    // binding generation; a stale context watch does nothing
	limit           time.Time // the bound context's deadline; zero = none
	ended           bool      // the bound context has ended
	read, write     time.Time // the deadlines asked for
	endedWhileBound bool      // the context ended during the current binding
	ioTimedOut      bool      // a read or write failed on a deadline during the current binding
}

// past is a deadline that has passed: I/O fails at once.
var past = time.Unix(1, 0)

// bind limits every deadline to ctx's and ends I/O when ctx ends, until
// release.
func (c *boundConn) bind(ctx context.Context) {
	c.mu.Lock()
	c.gen++
	gen := c.gen
	c.limit, _ = ctx.Deadline()
	c.ended, c.endedWhileBound, c.ioTimedOut = ctx.Err() != nil, ctx.Err() != nil, false
	c.applyLocked()
	c.mu.Unlock()
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen == gen {
			c.ended, c.endedWhileBound = true, true
			c.applyLocked()
		}
	})
}

// release ends the binding and restores the deadlines asked for. It
// reports whether the bound context ended meanwhile (I/O may then have been
// cut in the middle: the session is not to be reused).
func (c *boundConn) release() (ended bool) {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	ended = c.endedWhileBound || (!c.limit.IsZero() && !time.Now().Before(c.limit))
	c.limit, c.ended, c.endedWhileBound, c.ioTimedOut = time.Time{}, false, false, false
	c.applyLocked()
	return ended
}

// timedOut reports whether a read or write failed on a deadline (the
// bound send's or Config.Timeout), or the bound send's deadline has passed
// or its context ended, during the current binding: no answer came in time.
func (c *boundConn) timedOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ioTimedOut || c.ended || (!c.limit.IsZero() && !time.Now().Before(c.limit))
}

// Read reads, noting a deadline reached.
func (c *boundConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.note(err)
	return n, err
}

// Write writes, noting a deadline reached.
func (c *boundConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.note(err)
	return n, err
}

func (c *boundConn) note(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		c.ioTimedOut = true
		c.mu.Unlock()
	}
}

// SetDeadline sets both deadlines, limited to the bound send's.
func (c *boundConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read, c.write = t, t
	return c.Conn.SetDeadline(c.clampLocked(t))
}

// SetReadDeadline sets the read deadline, limited to the bound send's.
func (c *boundConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = t
	return c.Conn.SetReadDeadline(c.clampLocked(t))
}

// SetWriteDeadline sets the write deadline, limited to the bound send's.
func (c *boundConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write = t
	return c.Conn.SetWriteDeadline(c.clampLocked(t))
}

func (c *boundConn) clampLocked(t time.Time) time.Time {
	switch {
	case c.ended:
		return past
	case !c.limit.IsZero() && (t.IsZero() || c.limit.Before(t)):
		return c.limit
	}
	return t
}

func (c *boundConn) applyLocked() {
	_ = c.Conn.SetReadDeadline(c.clampLocked(c.read))
	_ = c.Conn.SetWriteDeadline(c.clampLocked(c.write))
}
