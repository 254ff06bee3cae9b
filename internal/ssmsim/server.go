package ssmsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Error codes the emulator answers with, as Parameter Store and IAM name
// them. The SDK turns the modeled ones into typed errors
// (types.ParameterNotFound, ...).
const (
	codeParameterNotFound        = "ParameterNotFound"
	codeParameterVersionNotFound = "ParameterVersionNotFound"
	codeParameterAlreadyExists   = "ParameterAlreadyExists"
	codeParameterLimitExceeded   = "ParameterLimitExceeded"
	codeHierarchyLevelLimit      = "HierarchyLevelLimitExceededException"
	codeHierarchyTypeMismatch    = "HierarchyTypeMismatchException"
	codePatternMismatch          = "ParameterPatternMismatchException"
	codeInvalidAllowedPattern    = "InvalidAllowedPatternException"
	codeInvalidKeyID             = "InvalidKeyId"
	codeUnsupportedType          = "UnsupportedParameterType"
	codeAccessDenied             = "AccessDeniedException"
	codeValidation               = "ValidationException"
	codeThrottling               = "ThrottlingException"
	codeInternalServerError      = "InternalServerError"
	codeUnrecognizedClient       = "UnrecognizedClientException"
	codeMissingAuthToken         = "MissingAuthenticationTokenException"
	codeUnknownOperation         = "UnknownOperationException"
	codeSerialization            = "SerializationException"
)

// apiError is an answer in the JSON 1.1 error shape.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// statusFor is the HTTP status AWS's JSON services send with a code.
func statusFor(code string) int {
	switch code {
	case codeInternalServerError:
		return http.StatusInternalServerError
	case "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case codeMissingAuthToken:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest // ThrottlingException and AccessDeniedException included, as SSM sends them
	}
}

// Principal is who signed a request: its ARN, which AccessDeniedException
// messages name, and its identity policy.
type Principal struct {
	ARN string
	// Policy decides what the principal may do. nil means everything, as
	// for the account's administrator.
	Policy *Policy
}

// Call records one request, for tests that check what a client did.
type Call struct {
	Operation   string
	AccessKeyID string
	Names       []string // the parameter names the request named
	ErrorCode   string   // empty on success
}

// Server is the Parameter Store endpoint: an http.Handler speaking the JSON
// 1.1 protocol, usable on a listener of its own (Start) or mounted beside
// other emulators. Its methods are safe for concurrent use.
type Server struct {
	cfg Config

	ln  net.Listener
	srv *http.Server

	mu         sync.Mutex
	params     map[string]*parameter
	keys       map[string]*kmsKey // by key ID
	managedKey *kmsKey
	principals map[string]Principal // by access key ID
	failNext   map[string][]string
	calls      []Call
	requestSeq uint64
}

const maxCallLog = 10000

// New builds the emulator without a listener; serve it with ServeHTTP.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{
		cfg:        cfg,
		params:     map[string]*parameter{},
		keys:       map[string]*kmsKey{},
		principals: map[string]Principal{},
		failNext:   map[string][]string{},
	}, nil
}

// Start is New plus a listener on a free loopback port; URL is its
// endpoint and Close stops it.
func Start(cfg Config) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ssmsim: listen on loopback: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the endpoint to give the SDK (BaseEndpoint, AWS_ENDPOINT_URL_SSM),
// or "" for a server made by New.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the listener of a server made by Start.
func (s *Server) Close() {
	if s.srv != nil {
		_ = s.srv.Close()
	}
}

// SetPrincipal makes requests signed with accessKeyID come from p.
func (s *Server) SetPrincipal(accessKeyID string, p Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principals[accessKeyID] = p
}

// FailNext makes the next count calls of op ("GetParameter", ...) fail with
// the error code (ThrottlingException, InternalServerError, ...), before any
// other check. Queued failures add up.
func (s *Server) FailNext(op, code string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range count {
		s.failNext[op] = append(s.failNext[op], code)
	}
}

// Calls returns the most recent requests (at most 10,000), oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallCount returns how many requests of op arrived, failed ones included.
func (s *Server) CallCount(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Operation == op {
			n++
		}
	}
	return n
}

const targetPrefix = "AmazonSSM."

// ServeHTTP answers one JSON 1.1 request: POST, X-Amz-Target
// AmazonSSM.<Operation>, Content-Type application/x-amz-json-1.1.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := s.nextRequestID()
	if r.Method != http.MethodPost {
		writeError(w, reqID, errorf(codeUnknownOperation, "ssmsim accepts only POST"))
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok || op == "" {
		writeError(w, reqID, errorf(codeUnknownOperation, "X-Amz-Target must be %s<Operation>", targetPrefix))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, reqID, errorf(codeSerialization, "Content-Type %q, want application/x-amz-json-1.1", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, reqID, errorf(codeSerialization, "reading the body: %v", err))
		return
	}
	keyID := accessKeyID(r.Header.Get("Authorization"))
	out, err := s.handle(op, keyID, body)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errorf(codeInternalServerError, "%v", err)
		}
		writeError(w, reqID, ae)
		return
	}
	payload, err := json.Marshal(out)
	if err != nil {
		writeError(w, reqID, errorf(codeInternalServerError, "encoding the answer: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// writeError sends AWS's JSON error shape: the code in X-Amzn-ErrorType and
// in __type, the text in message.
func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	payload, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", reqID)
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(statusFor(e.Code))
	_, _ = w.Write(payload)
}

// handle runs one operation under the lock.
func (s *Server) handle(op, keyID string, body []byte) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Operation: op, AccessKeyID: keyID}
	out, err := s.dispatchLocked(op, keyID, body, &call)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			call.ErrorCode = ae.Code
		} else {
			call.ErrorCode = codeInternalServerError
		}
		s.logf("ssmsim %s %v -> %v", op, call.Names, err)
	} else {
		s.logf("ssmsim %s %v -> ok", op, call.Names)
	}
	if len(s.calls) >= maxCallLog {
		s.calls = slices.Delete(s.calls, 0, len(s.calls)-maxCallLog+1)
	}
	s.calls = append(s.calls, call)
	return out, err
}

func (s *Server) dispatchLocked(op, keyID string, body []byte, call *Call) (any, error) {
	var in any
	switch op {
	case "GetParameter":
		in = &getParameterInput{}
	case "GetParameters":
		in = &getParametersInput{}
	case "PutParameter":
		in = &putParameterInput{}
	case "DeleteParameter":
		in = &deleteParameterInput{}
	default:
		return nil, errorf(codeUnknownOperation, "ssmsim does not model %s", op)
	}
	decodeErr := decode(body, in)
	switch v := in.(type) {
	case *getParameterInput:
		call.Names = []string{v.Name}
	case *getParametersInput:
		call.Names = v.Names
	case *putParameterInput:
		call.Names = []string{v.Name}
	case *deleteParameterInput:
		call.Names = []string{v.Name}
	}
	if q := s.failNext[op]; len(q) > 0 {
		s.failNext[op] = q[1:]
		return nil, errorf(q[0], "injected by ssmsim.FailNext")
	}
	if keyID == "" {
		return nil, errorf(codeMissingAuthToken, "Request is missing Authentication Token")
	}
	p, ok := s.principals[keyID]
	if !ok {
		if s.cfg.Authenticate != nil {
			p, ok = s.cfg.Authenticate(keyID)
		} else {
			p, ok = Principal{ARN: "arn:aws:iam::" + s.cfg.AccountID + ":user/ssmsim-admin"}, true
		}
	}
	if !ok {
		return nil, errorf(codeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	switch v := in.(type) {
	case *getParameterInput:
		return s.getParameterLocked(p, *v)
	case *getParametersInput:
		return s.getParametersLocked(p, *v)
	case *putParameterInput:
		return s.putParameterLocked(p, *v)
	default:
		return s.deleteParameterLocked(p, *in.(*deleteParameterInput))
	}
}

// decode reads a JSON body strictly: a field the operation does not have
// is a SerializationException, so a client sending something the emulator
// would silently ignore fails loudly instead.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return errorf(codeSerialization, "%v", err)
	}
	return nil
}

// authorizeLocked checks one IAM action on one resource for p.
func (s *Server) authorizeLocked(p Principal, action, resource string, ctx map[string]string) error {
	if p.Policy == nil {
		return nil
	}
	switch p.Policy.evaluate(action, resource, ctx) {
	case allowed:
		return nil
	case explicitDeny:
		return errorf(codeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy", p.ARN, action, resource)
	default:
		return errorf(codeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", p.ARN, action, resource, action)
	}
}

// authorizeKMSLocked checks a KMS action on key through Parameter Store for
// the parameter at arn. A managed key's key policy allows the whole account
// through SSM, so only an explicit Deny stops it; a customer managed key
// needs an IAM Allow.
func (s *Server) authorizeKMSLocked(p Principal, action string, k *kmsKey, arn string) error {
	if p.Policy == nil {
		return nil
	}
	// Context keys in lower case, as evaluate matches them.
	ctx := map[string]string{
		"kms:viaservice":                      "ssm." + s.cfg.Region + ".amazonaws.com",
		"kms:calleraccount":                   s.cfg.AccountID,
		"kms:encryptioncontext:parameter_arn": arn,
	}
	d := p.Policy.evaluate(action, k.arn, ctx)
	if d == allowed || (d == implicitDeny && k.managed) {
		return nil
	}
	why := "because no identity-based policy allows the " + action + " action"
	if d == explicitDeny {
		why = "with an explicit deny in an identity-based policy"
	}
	return errorf(codeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)", p.ARN, action, k.arn, why)
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Server) nextRequestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requestSeq++
	return fmt.Sprintf("55a55a55-0000-4000-8000-%012x", s.requestSeq)
}

// accessKeyID takes the access key ID from a SigV4 Authorization header.
func accessKeyID(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// UseForProcess points this process's default AWS configuration at s, as
// the access key accessKeyID: the SSM endpoint, a region, static
// credentials, and empty shared config and credentials files, so nothing
// of the machine's own AWS setup is read. It is for a test binary's
// TestMain, where package secret builds one SSM client per process from
// those settings; done removes the empty files (the environment stays,
// the process is ending).
func (s *Server) UseForProcess(accessKeyID string) (done func(), err error) {
	dir, err := os.MkdirTemp("", "ssmsim-process")
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SSM": s.URL(), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE":     "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		if err := os.Setenv(k, v); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return func() { os.RemoveAll(dir) }, nil
}
