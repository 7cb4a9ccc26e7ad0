package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dueflow/dueflow/internal/localports"
)

// FunctionSpec describes one function to run under the Lambda Runtime
// Interface Emulator.
type FunctionSpec struct {
	Name      string   // action name, e.g. "send-reminder"
	Bootstrap string   // path of the built bootstrap binary
	Env       []string // the function's environment (KEY=value)
	Instances int      // concurrent execution environments (default 1)
	TimeoutS  int      // AWS_LAMBDA_FUNCTION_TIMEOUT (default 60)
}

// Function is one function running as a pool of RIE instances. Like Lambda,
// each instance handles one invocation at a time; invocations wait for a
// free instance.
type Function struct {
	spec    FunctionSpec
	rie     string
	logDir  string
	logger  *slog.Logger
	client  *http.Client
	free    chan *rieInstance
	mu      sync.Mutex
	all     []*rieInstance
	started bool
}

type rieInstance struct {
	idx     int
	port    int
	apiPort int
	proc    *process
}

// NewFunction prepares (does not start) a function pool.
func NewFunction(spec FunctionSpec, riePath, logDir string, logger *slog.Logger) *Function {
	if spec.Instances <= 0 {
		spec.Instances = 1
	}
	if spec.TimeoutS <= 0 {
		spec.TimeoutS = 60
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Function{
		spec:   spec,
		rie:    riePath,
		logDir: logDir,
		logger: logger,
		client: &http.Client{Transport: &http.Transport{DialContext: localports.DialContext, MaxIdleConnsPerHost: spec.Instances, IdleConnTimeout: 30 * time.Second}},
		free:   make(chan *rieInstance, spec.Instances),
	}
}

// Name is the function's action name.
func (f *Function) Name() string { return f.spec.Name }

// LogPath is the log file of instance i.
func (f *Function) LogPath(i int) string {
	return filepath.Join(f.logDir, fmt.Sprintf("%s-%d.log", f.spec.Name, i))
}

// Start starts every instance and waits until each RIE listens.
func (f *Function) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return nil
	}
	for i := 0; i < f.spec.Instances; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		apiPort, err := freePort()
		if err != nil {
			return err
		}
		inst := &rieInstance{idx: i, port: port, apiPort: apiPort}
		if err := f.startInstance(ctx, inst); err != nil {
			return err
		}
		f.all = append(f.all, inst)
		f.free <- inst
	}
	f.started = true
	return nil
}

func (f *Function) startInstance(ctx context.Context, inst *rieInstance) error {
	env := append(baseEnv(),
		"AWS_LAMBDA_FUNCTION_NAME="+f.spec.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(f.spec.TimeoutS),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_REGION=us-east-1",
	)
	env = append(env, f.spec.Env...)
	p, err := startProcess("rie "+f.spec.Name, f.LogPath(inst.idx), env, filepath.Dir(f.spec.Bootstrap), f.rie,
		"--log-level", "warn",
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", inst.port),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", inst.apiPort),
		f.spec.Bootstrap)
	if err != nil {
		return err
	}
	inst.proc = p
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", inst.port), p, 15*time.Second); err != nil {
		_ = p.Kill(context.Background())
		return fmt.Errorf("function %s: %w", f.spec.Name, err)
	}
	return nil
}

// baseEnv is the environment every child gets before its own variables.
func baseEnv() []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir(), "TZ=UTC", "LANG=C.UTF-8"}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

// Invoke runs one synchronous invocation with payload on a free instance.
// functionError reports a Lambda function error (the handler failed or the
// runtime crashed); err reports that the emulator could not be reached or
// that ctx ended first. As on Lambda, an invocation whose caller went away
// keeps running (up to the function timeout) and keeps its instance busy.
func (f *Function) Invoke(ctx context.Context, payload []byte) (result []byte, functionError bool, err error) {
	var inst *rieInstance
	select {
	case inst = <-f.free:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("invoke %s: waiting for a free instance: %w", f.spec.Name, ctx.Err())
	}
	type answer struct {
		body  []byte
		fnErr bool
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() { f.free <- inst }()
		// detached from ctx: the invocation runs to its end like on Lambda
		ictx, cancel := context.WithTimeout(context.Background(), time.Duration(f.spec.TimeoutS)*time.Second+5*time.Second)
		defer cancel()
		b, fe, e := f.invokeInstance(ictx, inst, payload)
		done <- answer{b, fe, e}
	}()
	select {
	case a := <-done:
		return a.body, a.fnErr, a.err
	case <-ctx.Done():
		return nil, false, fmt.Errorf("invoke %s: %w", f.spec.Name, ctx.Err())
	}
}

func (f *Function) invokeInstance(ctx context.Context, inst *rieInstance, payload []byte) ([]byte, bool, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", inst.port)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, false, fmt.Errorf("invoke %s: %w", f.spec.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("invoke %s: %w", f.spec.Name, err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxFunctionURLPayload)
	if err != nil {
		return nil, false, fmt.Errorf("invoke %s: read result: %w", f.spec.Name, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		f.logger.Warn("function error", "function", f.spec.Name, "status", resp.StatusCode, "instance", inst.idx)
		return body, true, nil
	}
	return body, false, nil
}

// Kill sends SIGKILL to every instance's process groups (RIE and its
// bootstrap), like a crashed execution environment. Invocations fail until
// Restart.
func (f *Function) Kill(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, inst := range f.all {
		if inst.proc != nil {
			errs = append(errs, inst.proc.Kill(ctx))
		}
	}
	return errors.Join(errs...)
}

// Restart starts again every instance that is not running, on its ports.
func (f *Function) Restart(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inst := range f.all {
		if inst.proc != nil && !inst.proc.Exited() {
			continue
		}
		if err := f.startInstance(ctx, inst); err != nil {
			return err
		}
	}
	return nil
}

// Pids lists the processes of every instance (RIE and bootstrap).
func (f *Function) Pids() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, inst := range f.all {
		if inst.proc != nil {
			out = append(out, inst.proc.Pids()...)
		}
	}
	return out
}

// Stop kills every instance for good.
func (f *Function) Stop(ctx context.Context) error {
	err := f.Kill(ctx)
	f.client.CloseIdleConnections()
	return err
}
