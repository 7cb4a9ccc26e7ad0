package localports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests use ports FreePort picks, never the local stack's own: a test
// must not leave a connection on 54321-54329.

func TestParseAddr(t *testing.T) {
	a, err := parseAddr("0100007F:D47F")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:54399", a.String())
	a, err = parseAddr("00000000000000000000000001000000:1F90")
	require.NoError(t, err)
	assert.Equal(t, "[::1]:8080", a.String())
	a, err = parseAddr("0000000000000000FFFF00000100007F:0050")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:80", a.String(), "v4-mapped")
	_, err = parseAddr("zz:1")
	assert.Error(t, err)
}

func TestReservedRange(t *testing.T) {
	for _, p := range []int{54321, 54322, 54323, 54324, 54325} {
		assert.True(t, IsReserved(p), "%d", p)
	}
	assert.False(t, IsReserved(54330))
	assert.False(t, IsReserved(5432))
	for range 50 {
		p, err := FreePort()
		require.NoError(t, err)
		assert.False(t, IsReserved(p))
	}
}

// A listener held by this test: named with this process, and WaitFree
// refuses at once instead of waiting.
func TestListenerIsNamedWithItsProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	hs, err := Holders(port)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, "LISTEN", hs[0].State)
	assert.Equal(t, os.Getpid(), hs[0].PID)
	assert.Contains(t, hs[0].Command, "localports.test")

	start := time.Now()
	err = WaitFree(t.Context(), []int{port}, time.Minute, func(string) { t.Error("a listener is not waited for") })
	var le *ListenerError
	require.ErrorAs(t, err, &le)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), fmt.Sprintf("port %d is taken by a listening server: LISTEN 127.0.0.1:%d (pid %d: ", port, port, os.Getpid()))
}

// dialFrom connects from local port `from` to ln (a client that was given
// that port as its ephemeral port).
func dialFrom(t *testing.T, from int, to net.Addr) *net.TCPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: from}}
	c, err := d.Dial("tcp", to.String())
	require.NoError(t, err)
	return c.(*net.TCPConn)
}

// server accepts connections and hands them to the test.
func server(t *testing.T) (net.Listener, <-chan net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	ch := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return l, ch
}

// timeWait leaves a TIME-WAIT on a free port (a client given it as local
// port that closed first) and returns the port.
func timeWait(t *testing.T) int {
	t.Helper()
	port, err := FreePort()
	require.NoError(t, err)
	l, accepted := server(t)
	c := dialFrom(t, port, l.Addr())
	srv := <-accepted
	require.NoError(t, c.Close()) // the client closes first: its side goes to TIME-WAIT
	buf := make([]byte, 1)
	_, _ = srv.Read(buf) // EOF
	srv.Close()
	require.Eventually(t, func() bool {
		hs, err := Holders(port)
		require.NoError(t, err)
		return len(hs) == 1 && hs[0].State == "TIME_WAIT"
	}, 5*time.Second, 20*time.Millisecond)
	return port
}

// The real thing: a TIME-WAIT is waited out (Linux keeps it 60 s), then the
// port binds. (About a minute, in parallel with the other tests.)
func TestTimeWaitIsWaitedOut(t *testing.T) {
	t.Parallel()
	port := timeWait(t)
	start := time.Now()
	require.NoError(t, WaitFree(t.Context(), []int{port}, 75*time.Second, nil))
	waited := time.Since(start)
	assert.Greater(t, waited, 30*time.Second, "the TIME-WAIT lasted")
	assert.Less(t, waited, 70*time.Second)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "the port binds once the TIME-WAIT has gone")
	ln.Close()
}

// A client that closed first leaves its local port in TIME-WAIT: bind()
// fails although nothing listens (the failure the demo met on 54322).
// WaitFree says what it waits for and gives up after its bound.
func TestTimeWaitIsFoundAndWaitedFor(t *testing.T) {
	t.Parallel()
	port := timeWait(t)
	hs, _ := Holders(port)
	assert.Equal(t, 0, hs[0].PID, "a TIME-WAIT has no process")
	assert.Equal(t, "127.0.0.1", hs[0].Remote.Addr().String())

	_, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.Error(t, err, "bind fails while the TIME-WAIT lasts")
	assert.True(t, errors.Is(err, syscall.EADDRINUSE), "%v", err)

	var said []string
	start := time.Now()
	err = WaitFree(t.Context(), []int{port}, 1500*time.Millisecond, func(m string) { said = append(said, m) })
	require.Error(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond)
	assert.Contains(t, err.Error(), fmt.Sprintf("port %d is still used by 1 connection (TIME_WAIT) after waiting 1.5s", port))
	require.Len(t, said, 1, "said once")
	assert.Contains(t, said[0], fmt.Sprintf("port %d is the local port of 1 connection (TIME_WAIT) left by an earlier program: waiting until the kernel releases it (TIME-WAIT lasts 1m0s; at most ", port))
}

// A connection still open on the port is waited out: once it has gone,
// WaitFree returns and the port binds.
func TestLeftoverConnectionIsWaitedOut(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	l, accepted := server(t)
	c := dialFrom(t, port, l.Addr())
	srv := <-accepted

	var mu sync.Mutex
	var said []string
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- WaitFree(t.Context(), []int{port}, 30*time.Second, func(m string) { mu.Lock(); said = append(said, m); mu.Unlock() })
	}()
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("returned while the connection was open: %v", err)
	default:
	}
	// the server closes first: the TIME-WAIT lands on the server's port,
	// the client's port is released when the client closes
	require.NoError(t, srv.Close())
	buf := make([]byte, 1)
	_, _ = c.Read(buf)
	require.NoError(t, c.Close())
	require.NoError(t, <-done)
	assert.Less(t, time.Since(start), 10*time.Second)
	mu.Lock()
	require.Len(t, said, 1)
	assert.Contains(t, said[0], "1 connection (ESTABLISHED)")
	mu.Unlock()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "the port binds once the connection has gone")
	ln.Close()
}

// DialContext connects like a net.Dialer; its local port is never one of
// the stack's.
func TestDialContext(t *testing.T) {
	l, accepted := server(t)
	for range 20 {
		c, err := DialContext(t.Context(), "tcp", l.Addr().String())
		require.NoError(t, err)
		assert.False(t, IsReserved(c.LocalAddr().(*net.TCPAddr).Port))
		(<-accepted).Close()
		c.Close()
	}
	_, err := DialContext(t.Context(), "tcp", "127.0.0.1:1")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "refused"), "%v", err)
}
