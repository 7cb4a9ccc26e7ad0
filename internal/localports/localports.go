// Package localports keeps the local stack's fixed ports bindable: it finds
// what holds a local TCP port (a listener and its process, or a leftover
// connection such as one in TIME-WAIT) from /proc, waits leftover
// connections out before the demo binds its ports, and keeps tests' own
// sockets off those ports (FreePort, DialContext). The fixed ports
// (Supabase CLI's 54321-54329) lie in Linux's ephemeral range
// (32768-60999), so any client connection may be given one of them as its
// local port, and its TIME-WAIT then blocks bind() for a minute.
package localports

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The range of ports the local stack binds (Supabase CLI's numbering:
// 54321 API gateway, 54322 Postgres, 54323 Studio / console, 54324 mail
// inbox, ...). Tests keep their own sockets out of it.
const (
	ReservedFirst = 54320
	ReservedLast  = 54329
)

// IsReserved reports whether port is one of the local stack's ports.
func IsReserved(port int) bool { return port >= ReservedFirst && port <= ReservedLast }

// TIMEWAIT is Linux's TIME-WAIT duration, fixed at 60 s (TCP_TIMEWAIT_LEN).
const TIMEWAIT = 60 * time.Second

// Holder is a socket whose local port is the port asked about.
type Holder struct {
	State   string         // LISTEN, ESTABLISHED, TIME_WAIT, ...
	Local   netip.AddrPort // its local address
	Remote  netip.AddrPort // its peer (zero for a listener)
	Inode   uint64         // 0 for TIME-WAIT (no socket left, only the kernel's record)
	PID     int            // the process holding it, 0 when unknown (no socket, or another user's process)
	Command string         // that process's command line, shortened
}

// Listening reports whether h is a listener (a server owns the port).
func (h Holder) Listening() bool { return h.State == "LISTEN" }

// String describes h for an error or progress line.
func (h Holder) String() string {
	s := fmt.Sprintf("%s %s", h.State, h.Local)
	if h.Remote.Port() != 0 {
		s += " -> " + h.Remote.String()
	}
	switch {
	case h.PID != 0:
		s += fmt.Sprintf(" (pid %d: %s)", h.PID, h.Command)
	case h.Listening():
		s += " (process not visible to this user)"
	}
	return s
}

// tcpStates are the st column values of /proc/net/tcp (include/net/tcp_states.h).
var tcpStates = map[string]string{
	"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
	"06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
	"0C": "NEW_SYN_RECV",
}

// Holders lists the TCP sockets (IPv4 and IPv6) whose local port is port,
// with the process that holds each when it is visible.
func Holders(port int) ([]Holder, error) {
	var hs []Holder
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		got, err := readTable(f, port)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		hs = append(hs, got...)
	}
	need := map[uint64]int{}
	for i, h := range hs {
		if h.Inode != 0 {
			need[h.Inode] = i
		}
	}
	if len(need) > 0 {
		findOwners(need, hs)
	}
	return hs, nil
}

// readTable reads one /proc/net/tcp* table's rows whose local port is port.
func readTable(path string, port int) ([]Holder, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hs []Holder
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		local, err := parseAddr(fs[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if int(local.Port()) != port {
			continue
		}
		remote, err := parseAddr(fs[2])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		inode, _ := strconv.ParseUint(fs[9], 10, 64)
		state := tcpStates[strings.ToUpper(fs[3])]
		if state == "" {
			state = "state " + fs[3]
		}
		hs = append(hs, Holder{State: state, Local: local, Remote: remote, Inode: inode})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return hs, nil
}

// parseAddr parses "0100007F:1F90" (IPv4) or a 32-digit IPv6 address: the
// address in host byte order per 32-bit word, the port big-endian.
func parseAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("malformed address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("malformed address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("malformed port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// findOwners fills PID and Command of hs from the /proc/<pid>/fd links
// ("socket:[inode]") of the processes this user may read.
func findOwners(need map[uint64]int, hs []Holder) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if i, ok := need[inode]; ok && hs[i].PID == 0 {
				hs[i].PID, hs[i].Command = pid, commandLine(pid)
			}
		}
	}
}

// commandLine is pid's command line, at most 80 characters.
func commandLine(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	c := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if r := []rune(c); len(r) > 80 {
		c = string(r[:79]) + "…"
	}
	return c
}

// ListenerError says that a server already listens on a port the caller
// needs: waiting does not help.
type ListenerError struct {
	Port      int
	Listeners []Holder
}

func (e *ListenerError) Error() string {
	ls := make([]string, len(e.Listeners))
	for i, h := range e.Listeners {
		ls[i] = h.String()
	}
	return fmt.Sprintf("port %d is taken by a listening server: %s; stop it (an earlier dueflow demo? another local Supabase?) and try again",
		e.Port, strings.Join(ls, "; "))
}

// WaitFree returns once no socket uses any of ports as its local port. A
// listener is an error at once (*ListenerError, naming its process); a
// leftover connection (TIME-WAIT, or one still open) is waited out, at most
// maxWait, saying so once per port through progress.
func WaitFree(ctx context.Context, ports []int, maxWait time.Duration, progress func(string)) error {
	deadline := time.Now().Add(maxWait)
	said := map[int]bool{}
	for _, port := range ports {
		for {
			hs, err := Holders(port)
			if err != nil {
				return fmt.Errorf("find what holds port %d: %w", port, err)
			}
			if len(hs) == 0 {
				break
			}
			var ls []Holder
			for _, h := range hs {
				if h.Listening() {
					ls = append(ls, h)
				}
			}
			if len(ls) > 0 {
				return &ListenerError{Port: port, Listeners: ls}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("port %d is still used by %s after waiting %s", port, summarize(hs), maxWait)
			}
			if !said[port] && progress != nil {
				progress(fmt.Sprintf("port %d is the local port of %s left by an earlier program: waiting until the kernel releases it (TIME-WAIT lasts %s; at most %s)",
					port, summarize(hs), TIMEWAIT, time.Until(deadline).Round(time.Second)))
				said[port] = true
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for port %d: %w", port, ctx.Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// summarize counts holders by state: "2 connections (TIME_WAIT, ESTABLISHED)".
func summarize(hs []Holder) string {
	seen := map[string]bool{}
	var states []string
	for _, h := range hs {
		if !seen[h.State] {
			seen[h.State] = true
			states = append(states, h.State)
		}
	}
	sort.Strings(states)
	noun := "connection"
	if len(hs) > 1 {
		noun = "connections"
	}
	return fmt.Sprintf("%d %s (%s)", len(hs), noun, strings.Join(states, ", "))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and is
// not one of the local stack's ports.
func FreePort() (int, error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 32 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !IsReserved(port) {
			l.Close()
			return port, nil
		}
		held = append(held, l) // keep it so that the next try gets another
	}
	return 0, errors.New("free port: only the local stack's ports were offered")
}

// Dialer is a net.Dialer that never keeps a connection whose local
// (ephemeral) port is one of the local stack's ports: it dials again and
// resets the unwanted connection (SO_LINGER 0: no TIME-WAIT is left). For
// test harnesses' and the local stack's clients.
type Dialer struct{ net.Dialer }

// DialContext is Dialer's zero value's DialContext, e.g. for pgx's
// ConnConfig.DialFunc.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&Dialer{}).DialContext(ctx, network, addr)
}

// DialContext connects to addr as net.Dialer does, off the reserved ports.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var bad []net.Conn
	defer func() {
		for _, c := range bad {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}
	}()
	for range 32 {
		c, err := d.Dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		ta, ok := c.LocalAddr().(*net.TCPAddr)
		if !ok || !IsReserved(ta.Port) {
			return c, nil
		}
		bad = append(bad, c) // held open so that the next dial gets another port
	}
	return nil, fmt.Errorf("dial %s: only the local stack's ports were given as local ports", addr)
}
