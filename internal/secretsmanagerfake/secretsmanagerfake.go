// Package secretsmanagerfake is a stand-in for AWS Secrets Manager's
// GetSecretValue, speaking its wire format (AWS JSON 1.1: POST /,
// X-Amz-Target secretsmanager.GetSecretValue, Content-Type
// application/x-amz-json-1.1, body {"SecretId": ...}; errors as
// {"__type": ..., "message": ...} with status 400), for tests and local
// runs. Point the AWS SDK at it with AWS_ENDPOINT_URL_SECRETS_MANAGER and
// any credentials. It also provides a server that accepts connections and
// never answers (a stalled endpoint).
package secretsmanagerfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Region and account of the ARNs the stand-in makes up.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

const jsonType = "application/x-amz-json-1.1"

type secret struct {
	name, arn, value, version string
	created                   time.Time
}

// Server is the stand-in. Its zero value is not usable: call Start.
type Server struct {
	srv   *httptest.Server
	mu    sync.Mutex
	byKey map[string]*secret // by name and by ARN
	calls atomic.Int64
	fail  atomic.Int64 // answer the next n calls with 500 InternalServiceError
}

// Start starts the stand-in on a free loopback port.
func Start() *Server {
	s := &Server{byKey: map[string]*secret{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the stand-in.
func (s *Server) Close() { s.srv.Close() }

// Env returns the environment that points the AWS SDK at the stand-in with
// dummy credentials, as KEY=value lines.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + s.URL(),
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=AKIDSTANDIN",
		"AWS_SECRET_ACCESS_KEY=standin",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Put stores a new current version of secret name with the SecretString
// value, creating the secret if needed, and returns its ARN.
func (s *Server) Put(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.byKey[name]
	if !ok {
		sec = &secret{name: name, arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", Region, Account, name), created: time.Now()}
		s.byKey[name], s.byKey[sec.arn] = sec, sec
	}
	sec.value, sec.version = value, uuid.NewString()
	return sec.arn
}

// PutJSON is Put with the JSON object of values.
func (s *Server) PutJSON(name string, values map[string]string) string {
	b, _ := json.Marshal(values) // a map of strings always encodes
	return s.Put(name, string(b))
}

// FailNext answers the next n calls with a 500 InternalServiceError.
func (s *Server) FailNext(n int) { s.fail.Store(int64(n)) }

// Calls is the number of GetSecretValue requests received.
func (s *Server) Calls() int { return int(s.calls.Load()) }

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", jsonType)
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "secretsmanager.GetSecretValue" {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, jsonType) {
		writeError(w, http.StatusBadRequest, "SerializationException", "Content-Type must be "+jsonType)
		return
	}
	s.calls.Add(1)
	var in struct {
		SecretID     *string `json:"SecretId"`
		VersionID    *string `json:"VersionId"`
		VersionStage *string `json:"VersionStage"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.SecretID == nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
		return
	}
	if n := s.fail.Load(); n > 0 && s.fail.CompareAndSwap(n, n-1) {
		writeError(w, http.StatusInternalServerError, "InternalServiceError", "An error occurred on the server side.")
		return
	}
	s.mu.Lock()
	sec, ok := s.byKey[*in.SecretID]
	var out map[string]any
	if ok {
		out = map[string]any{
			"ARN": sec.arn, "Name": sec.name, "SecretString": sec.value, "VersionId": sec.version,
			"VersionStages": []string{"AWSCURRENT"}, "CreatedDate": float64(sec.created.UnixMilli()) / 1000,
		}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	w.Header().Set("Content-Type", jsonType)
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	_ = json.NewEncoder(w).Encode(out)
}

// Staller accepts TCP connections and never answers: a stalled endpoint.
type Staller struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

// StartStaller listens on a free loopback port.
func StartStaller() (*Staller, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("staller: listen: %w", err)
	}
	st := &Staller{ln: ln, done: make(chan struct{})}
	go st.accept()
	return st, nil
}

func (st *Staller) accept() {
	defer close(st.done)
	for {
		c, err := st.ln.Accept()
		if err != nil {
			return
		}
		st.mu.Lock()
		st.conns = append(st.conns, c)
		st.mu.Unlock()
	}
}

// URL is the staller's http:// URL.
func (st *Staller) URL() string { return "http://" + st.ln.Addr().String() }

// Close stops listening and closes every accepted connection.
func (st *Staller) Close() {
	_ = st.ln.Close()
	<-st.done
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range st.conns {
		_ = c.Close()
	}
}
