package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dueflow/dueflow/internal/localports"
)

// process is a child started in its own process group, with its output
// appended to a log file. Stop kills the group and every descendant that
// moved to a group of its own (the RIE starts its bootstrap that way).
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
	mu      sync.Mutex
	stopped bool
}

// startProcess starts bin with args and env (appended to a minimal base),
// in its own process group, stdout and stderr to logPath.
func startProcess(name, logPath string, env []string, dir string, bin string, args ...string) (*process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("start %s: log dir: %w", name, err)
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: log file: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: lf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id of the direct child.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the child has exited.
func (p *process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pids returns the child and all its live descendants.
func (p *process) Pids() []int {
	if p.Exited() {
		return nil
	}
	return append([]int{p.Pid()}, descendants(p.Pid())...)
}

// Kill sends SIGKILL to the child's process group and to the groups of all
// its descendants, then waits for the child to be reaped.
func (p *process) Kill(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if p.Exited() {
		return nil
	}
	pids := p.Pids()
	groups := map[int]bool{p.Pid(): true}
	for _, pid := range pids {
		if g, err := syscall.Getpgid(pid); err == nil {
			groups[g] = true
		}
	}
	for g := range groups {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", p.name, ctx.Err())
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop %s: pid %d did not exit", p.name, p.Pid())
	}
	// Descendants in other groups are reparented to init once the child is
	// gone; make sure they are gone too.
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids[1:] {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// Stop asks the process group to terminate with SIGTERM, then kills it
// after grace.
func (p *process) Stop(ctx context.Context, grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return p.Kill(ctx) // reap descendants in other groups
	case <-time.After(grace):
	case <-ctx.Done():
	}
	return p.Kill(ctx)
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the command in parentheses; Z = zombie.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// descendants lists every live descendant of pid, found through /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], n)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// ProcMem is the memory of one process read from /proc/<pid>/status.
type ProcMem struct {
	Pid    int
	Name   string // Name: line of /proc/<pid>/status
	Cmd    string // first bytes of the command line
	HWMKiB int64  // VmHWM: peak resident set size
	RSSKiB int64  // VmRSS: current resident set size
}

// ReadProcMem reads the peak and current RSS of pid.
func ReadProcMem(pid int) (ProcMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMem{}, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	defer f.Close()
	m := ProcMem{Pid: pid}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			m.Name = v
		case "VmHWM":
			m.HWMKiB, _ = strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		case "VmRSS":
			m.RSSKiB, _ = strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		c := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if len(c) > 80 {
			c = c[:80]
		}
		m.Cmd = c
	}
	return m, sc.Err()
}

// freePort asks the kernel for a free TCP port on 127.0.0.1 outside the
// demo's fixed ports.
func freePort() (int, error) { return localports.FreePort() }

// listen opens a TCP listener on 127.0.0.1:port (0 = any free port).
func listen(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
	}
	return l, nil
}

// waitTCP waits until something accepts connections on addr, or the
// process exits, or ctx ends.
func waitTCP(ctx context.Context, addr string, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before listening on %s (see %s)", p.name, addr, p.logPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after %s", addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// errClosed is returned by components used after Close.
var errClosed = errors.New("devstack: closed")

// ReadProcCPU returns the CPU time (user + system) pid has used so far.
func ReadProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("read cpu of %d: malformed stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu of %d: malformed stat", pid)
	}
	// fields after the command: state(0) ppid(1) ... utime(11) stime(12), in clock ticks (USER_HZ = 100)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// procStart is the start time (clock ticks since boot) of pid, or 0 when it
// does not run; with the pid it identifies a process across pid reuse.
func procStart(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return 0
	}
	v, _ := strconv.ParseInt(f[19], 10, 64)
	return v
}
