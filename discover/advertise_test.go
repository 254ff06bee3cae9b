package discover

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// fakeIMDS is an IMDSv2-only metadata server: GETs without a valid session
// token are refused, like an instance with HttpTokens=required.
type fakeIMDS struct {
	publicIPv4 string // "" = the instance has none (404)
	tokens     atomic.Int32
	gets       atomic.Int32
}

const fakeToken = "AQAEAFakeSessionToken=="

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		f.tokens.Add(1)
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		_, _ = w.Write([]byte(fakeToken))
	case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/public-ipv4":
		if r.Header.Get("X-aws-ec2-metadata-token") != fakeToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.gets.Add(1)
		if f.publicIPv4 == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(f.publicIPv4))
	default:
		http.NotFound(w, r)
	}
}

func newIMDS(t *testing.T, publicIPv4 string) (*fakeIMDS, *imds.Client) {
	t.Helper()
	f := &fakeIMDS{publicIPv4: publicIPv4}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, imds.New(imds.Options{Endpoint: srv.URL, Retryer: aws.NopRetryer{}})
}

func TestAdvertiseAuto(t *testing.T) {
	f, c := newIMDS(t, "203.0.113.7\n")
	got, err := Advertise(context.Background(), "auto", c)
	if err != nil {
		t.Fatal(err)
	}
	if got != "203.0.113.7" {
		t.Fatalf("Advertise(auto) = %q, want 203.0.113.7", got)
	}
	if f.tokens.Load() < 1 || f.gets.Load() != 1 {
		t.Fatalf("IMDS saw %d token PUTs and %d authorised GETs; want an IMDSv2 session", f.tokens.Load(), f.gets.Load())
	}
	if got, err := Advertise(context.Background(), " AUTO ", c); err != nil || got != "203.0.113.7" {
		t.Fatalf("Advertise(AUTO) = %q, %v", got, err)
	}
}

func TestAdvertiseAutoNoPublicIP(t *testing.T) {
	_, c := newIMDS(t, "")
	_, err := Advertise(context.Background(), "auto", c)
	if err == nil || !strings.Contains(err.Error(), "no public IPv4") {
		t.Fatalf("Advertise(auto) without public IP: err = %v", err)
	}
}

func TestAdvertiseAutoGarbage(t *testing.T) {
	_, c := newIMDS(t, "<html>captive portal</html>")
	_, err := Advertise(context.Background(), "auto", c)
	if err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
		t.Fatalf("Advertise(auto) with garbage metadata: err = %v", err)
	}
}

func TestAdvertiseLiteral(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "198.51.100.4", want: "198.51.100.4"},
		{in: " 10.0.0.1 ", want: "10.0.0.1"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "[2001:db8::1]", want: "2001:db8::1"},
		{in: "ws1.Example.com.", want: "ws1.example.com"},
		{in: "localhost", want: "localhost"},
		{in: "", err: "empty"},
		{in: "0.0.0.0", err: "unspecified"},
		{in: "::", err: "unspecified"},
		{in: "224.0.0.1", err: "multicast"},
		{in: "10.0.0.1:8080", err: "-advertise-port"},
		{in: "host.example.com:443", err: "-advertise-port"},
		{in: "bad_host", err: "invalid character"},
		{in: "-lead.example.com", err: "starts or ends"},
		{in: "a..b", err: "empty or longer"},
		{in: strings.Repeat("a", 64) + ".com", err: "empty or longer"},
		{in: "http://x", err: "invalid character"},
	} {
		got, err := Advertise(context.Background(), tc.in, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Advertise(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Advertise(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestWaitPublicIPv4: an instance whose public address comes after start
// (an Elastic IP associated after launch) waits for it, logging why; one
// that never gets one gives up within the bound with the reason.
func TestWaitPublicIPv4(t *testing.T) {
	f := &lateIMDS{after: 2, ip: "203.0.113.9"}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := imds.New(imds.Options{Endpoint: srv.URL, Retryer: aws.NopRetryer{}})
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	got, err := WaitPublicIPv4(context.Background(), c, 10*time.Millisecond, 20*time.Millisecond, 10*time.Second, log)
	if err != nil || got != "203.0.113.9" {
		t.Fatalf("WaitPublicIPv4 = %q, %v", got, err)
	}
	if n := strings.Count(logs.String(), "waiting for this instance's public IPv4 address"); n != 2 {
		t.Errorf("%d waiting lines, want 2:\n%s", n, logs.String())
	}

	_, never := newIMDS(t, "")
	start := time.Now()
	_, err = WaitPublicIPv4(context.Background(), never, 10*time.Millisecond, 20*time.Millisecond, 300*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "no public IPv4") {
		t.Fatalf("without a public IP: %v", err)
	}
	// Its own bound (300ms) ended it, not a hang: generous against a
	// loaded machine.
	if took := time.Since(start); took > time.Minute {
		t.Errorf("gave up after %v, bound 300ms", took)
	}
	if _, err := WaitPublicIPv4(context.Background(), never, 0, time.Second, time.Second, nil); err == nil {
		t.Error("zero retryMin accepted")
	}
}

// lateIMDS answers 404 for public-ipv4 on the first `after` reads, then ip.
type lateIMDS struct {
	after int32
	ip    string
	gets  atomic.Int32
}

func (f *lateIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
		_, _ = w.Write([]byte(fakeToken))
	case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/public-ipv4":
		if f.gets.Add(1) <= f.after {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(f.ip))
	default:
		http.NotFound(w, r)
	}
}
