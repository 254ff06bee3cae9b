//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jsclient "github.com/wsdirect/terraform-provider-wsdirect/client/js"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
)

// jsClientDir is client/js, relative to this package's directory (where go
// test runs).
const jsClientDir = "../../../client/js"

// realClientTool finds an external program a real-client test needs: the
// first of candidates that is an executable file or is on PATH. Without one
// the test skips, unless CI is set: there a missing tool is a failure, so the
// test cannot silently stop running.
func realClientTool(t *testing.T, what, hint string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if strings.ContainsRune(c, '/') {
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				abs, err := filepath.Abs(c)
				if err == nil {
					return abs
				}
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (tried %q); CI must have it: %s", what, candidates, hint)
	}
	t.Skipf("%s not found (tried %q), skipping; %s", what, candidates, hint)
	return ""
}

// envOr is the tool path in environment variable name when it is set (an
// explicit choice that must not silently fall back), else defaults.
func envOr(name string, defaults ...string) []string {
	if v := os.Getenv(name); v != "" {
		return []string{v}
	}
	return defaults
}

// killGroupOnCancel runs cmd in its own process group and kills the whole
// group when the context ends, so a Chromium started by node, or anything
// started by k6, cannot outlive the test.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
}

// ensurePlaywright installs client/js's locked devDependencies (just
// playwright-core; it downloads no browser) when node_modules lacks them.
func ensurePlaywright(t *testing.T, npm string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(jsClientDir, "node_modules", "playwright-core", "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = jsClientDir
	killGroupOnCancel(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in client/js: %v\n%s", err, out)
	}
}

// sameOriginDemo serves auth instance a's API with the demo page mounted
// under /demo/ (jsclient.WithDemo), on a listener of its own, exactly as
// wsdirect-auth does: the page's POST /v1/connect is same-origin and needs
// no CORS. The WebSocket to the node is cross-origin, as in production.
// It is served over https with a certificate from the cluster's CA: a page
// on https may open only wss:// sockets.
func sameOriginDemo(t *testing.T, c *testcluster.Cluster, a *testcluster.Auth) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := c.CA.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: jsclient.WithDemo(a.Server.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String() + jsclient.Prefix
}

// nssHome makes a home directory whose NSS database (~/.pki/nssdb, where
// Chromium on Linux keeps the certificates the user trusts) trusts caPEM
// as a CA for servers, with certutil from Debian's libnss3-tools.
func nssHome(t *testing.T, certutil string, caPEM []byte) string {
	t.Helper()
	home := t.TempDir()
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + db, "--empty-password"},
		{"-A", "-d", "sql:" + db, "-n", "wsdirect test CA", "-t", "C,,", "-i", caFile},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return home
}

// browserEvent is one line of client/js/test/browser.mjs's output.
type browserEvent struct {
	Event          string   `json:"event"`
	Message        string   `json:"message"`
	NodeID         string   `json:"nodeId"`
	BrowserVersion string   `json:"browserVersion"`
	FirstNode      string   `json:"firstNode"`
	SecondNode     string   `json:"secondNode"`
	State          string   `json:"state"`
	Connects       int      `json:"connects"`
	Received       []string `json:"received"`
	StateText      string   `json:"stateText"`
	NodeText       string   `json:"nodeText"`
	ConnectMs      int      `json:"connectMs"`
	ReconnectMs    int      `json:"reconnectMs"`
	PageErrors     []string `json:"pageErrors"`
	ConsoleErrors  []string `json:"consoleErrors"`
	Log            string   `json:"log"`
}

// TestBrowserReconnectsElsewhere drives the demo page in headless Chromium
// over https:// (page and auth) and wss:// (nodes): log in through auth,
// connect to the assigned node, echo; then crash that node and check the
// page went back to auth and reconnected to a different node, and echoes
// there. Chromium trusts the cluster's test CA through an NSS database in
// its home directory, and a run without it shows the certificate is really
// checked. Needs node, npm, Chromium and certutil (Debian packages nodejs,
// npm, chromium, libnss3-tools); CHROMIUM overrides /usr/bin/chromium.
func TestBrowserReconnectsElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	hint := "apt-get install nodejs npm chromium libnss3-tools"
	node := realClientTool(t, "node", hint, "node")
	npm := realClientTool(t, "npm", hint, "npm")
	chromium := realClientTool(t, "Chromium", hint, envOr("CHROMIUM", "/usr/bin/chromium", "chromium")...)
	certutil := realClientTool(t, "certutil", hint, "certutil")
	ensurePlaywright(t, npm)

	c := startCluster(t, func(o *testcluster.Options) {
		o.Nodes, o.Auths, o.TLS, o.ClusterConfig = 3, 1, true, testcluster.QuickFailureDetection
	})
	pageURL := sameOriginDemo(t, c, c.Auth(0))

	dir := t.TempDir()
	shot := filepath.Join(dir, "demo.png")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Without the CA in its NSS database Chromium refuses the page.
	untrusted := exec.CommandContext(ctx, node, filepath.Join(jsClientDir, "test", "browser.mjs"), pageURL, shot, filepath.Join(dir, "profile-untrusted"))
	untrusted.Env = append(os.Environ(), "CHROMIUM="+chromium, "HOME="+t.TempDir(), "EXPECT_CERT_ERROR=1")
	killGroupOnCancel(untrusted)
	if out, err := untrusted.CombinedOutput(); err != nil || !bytes.Contains(out, []byte(`"cert_refused"`)) {
		t.Fatalf("Chromium without the CA: %v\n%s", err, out)
	} else {
		t.Logf("without the CA: %s", bytes.TrimSpace(out))
	}

	cmd := exec.CommandContext(ctx, node, filepath.Join(jsClientDir, "test", "browser.mjs"), pageURL, shot, filepath.Join(dir, "profile"))
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "HOME="+nssHome(t, certutil, c.CA.PEM))
	killGroupOnCancel(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		stdin.Close()
		cancel()
		<-exited
	}()

	events := make(chan browserEvent, 4)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var ev browserEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Logf("browser.mjs: %s", sc.Bytes())
				continue
			}
			events <- ev
		}
		exited <- cmd.Wait()
	}()
	next := func(want string) browserEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("browser.mjs exited before %q\nstderr:\n%s", want, stderr.String())
			}
			if ev.Event != want {
				t.Fatalf("browser.mjs: got %q, want %q: %s\npage errors: %q\nconsole errors: %q\npage log:\n%s\nstderr:\n%s",
					ev.Event, want, ev.Message, ev.PageErrors, ev.ConsoleErrors, ev.Log, stderr.String())
			}
			return ev
		case <-ctx.Done():
			t.Fatalf("browser.mjs: no %q before the deadline\nstderr:\n%s", want, stderr.String())
		}
		return browserEvent{}
	}

	first := next("connected")
	victim := c.NodeByName(first.NodeID)
	if victim == nil {
		t.Fatalf("the page reports node %q, which is not in the cluster", first.NodeID)
	}
	// The page can see its socket open a moment before the node registers it.
	probe.Until(t, 10*time.Second, victim.Name+" to hold the page's connection", func() error {
		return probe.Check(victim.Conns() == 1, "counts %v", c.ConnsByNode())
	})
	t.Logf("page connected to %s in %d ms; killing it", first.NodeID, first.ConnectMs)
	c.KillNode(victim.Index)
	if _, err := io.WriteString(stdin, "killed\n"); err != nil {
		t.Fatalf("tell browser.mjs: %v", err)
	}

	done := next("done")
	t.Logf("%s: reconnected from %s to %s in %d ms (%d connects)", done.BrowserVersion, done.FirstNode, done.SecondNode, done.ReconnectMs, done.Connects)
	if done.FirstNode != first.NodeID || done.SecondNode == "" || done.SecondNode == done.FirstNode {
		t.Errorf("page moved from %q to %q; want a different node than %q", done.FirstNode, done.SecondNode, first.NodeID)
	}
	if n := c.NodeByName(done.SecondNode); n == nil || n.Conns() != 1 {
		t.Errorf("node %q should hold the page's connection; counts %v", done.SecondNode, c.ConnsByNode())
	}
	if done.State != "open" || done.StateText != "open" || done.NodeText != done.SecondNode {
		t.Errorf("page shows state %q (%q) and node %q; want open on %s", done.State, done.StateText, done.NodeText, done.SecondNode)
	}
	if strings.Join(done.Received, ",") != "echo-1,echo-2" {
		t.Errorf("page received %q, want the echoes [echo-1 echo-2]", done.Received)
	}
	if done.Connects < 2 {
		t.Errorf("page opened %d sockets, want at least 2", done.Connects)
	}
	if len(done.PageErrors) > 0 {
		t.Errorf("uncaught errors in the page: %q", done.PageErrors)
	}
	for _, want := range []string{"connected to " + first.NodeID, "back to auth in", "connected to " + done.SecondNode} {
		if !strings.Contains(done.Log, want) {
			t.Errorf("page log lacks %q:\n%s", want, done.Log)
		}
	}
	// The token is a credential: it must never reach the page's own log.
	if strings.Contains(done.Log, "token=") {
		t.Errorf("page log shows a token:\n%s", done.Log)
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 4096 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot %s is not a sensible PNG (%d bytes)", shot, len(png))
	}
	if keep := os.Getenv("WSDIRECT_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, png, 0o644); err != nil {
			t.Errorf("copy screenshot: %v", err)
		}
	}

	stdin.Close()
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Errorf("browser.mjs: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("browser.mjs did not exit after reporting")
	}
}

// lockedBuffer is a bytes.Buffer safe for exec's copying goroutine and the
// test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
