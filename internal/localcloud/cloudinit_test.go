package localcloud

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

func TestParseCloudConfig(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("compressed\n"))
	zw.Close()
	ud := "#cloud-config\nwrite_files:\n" +
		"  - path: /etc/a\n    content: plain\n    permissions: '0600'\n    owner: root:root\n" +
		"  - path: /etc/b\n    content: " + base64.StdEncoding.EncodeToString([]byte("b64")) + "\n    encoding: b64\n" +
		"  - path: /etc/c\n    content: " + base64.StdEncoding.EncodeToString(gz.Bytes()) + "\n    encoding: gz+b64\n    permissions: 0755\n" +
		"runcmd:\n  - [/usr/local/bin/install.sh, --flag]\n  - [systemctl, enable, --now, app.service]\n"
	files, cmds, err := parseCloudConfig([]byte(ud))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || len(cmds) != 2 {
		t.Fatalf("%d files, %d commands", len(files), len(cmds))
	}
	for i, want := range []struct {
		content string
		mode    os.FileMode
	}{{"plain", 0o600}, {"b64", 0o644}, {"compressed\n", 0o755}} {
		data, err := files[i].content()
		if err != nil || string(data) != want.content {
			t.Errorf("file %d content %q %v, want %q", i, data, err, want.content)
		}
		if m, err := files[i].mode(); err != nil || m != want.mode {
			t.Errorf("file %d mode %v %v, want %v", i, m, err, want.mode)
		}
	}
	if argv, err := runcmdArgv(cmds[0]); err != nil || strings.Join(argv, " ") != "/usr/local/bin/install.sh --flag" {
		t.Errorf("runcmd 0: %q %v", argv, err)
	}

	// Gzipped user data is unpacked first, as cloud-init does.
	var whole bytes.Buffer
	zw = gzip.NewWriter(&whole)
	zw.Write([]byte("#cloud-config\nruncmd: []\n"))
	zw.Close()
	if _, _, err := parseCloudConfig(whole.Bytes()); err != nil {
		t.Errorf("gzipped user data: %v", err)
	}

	for name, tc := range map[string]struct{ ud, want string }{
		"shell script":  {"#!/bin/sh\necho hi\n", "not #cloud-config"},
		"other module":  {"#cloud-config\npackages: [haproxy]\n", `"packages" is not supported`},
		"bad yaml":      {"#cloud-config\nruncmd: [\n", "not valid YAML"},
		"relative path": {"#cloud-config\nwrite_files:\n  - path: etc/x\n    content: x\n", "must be absolute"},
		"unknown key":   {"#cloud-config\nwrite_files:\n  - path: /x\n    source: {uri: http://x}\n", `key "source" is not supported`},
	} {
		if _, _, err := parseCloudConfig([]byte(tc.ud)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := runcmdArgv("echo hi > /etc/motd"); err == nil {
		t.Error("a shell-string runcmd entry was accepted")
	}
}

// TestRendererOutputParses keeps the local cloud's cloud-init reader in step with the YAML
// the renderer writes: every file and command of a rendered node is understood.
func TestRendererOutputParses(t *testing.T) {
	k := newTestKeys(t)
	cfg := userdata.DefaultConfig(userdata.RoleNode)
	cfg.ReleaseURL, cfg.GossipKeyParameter, cfg.JoinTag, cfg.AuthPublicKeys = "http://127.0.0.1/x.tar.gz", "/k/gossip-key", "k=v", k.pub
	raw, err := userdata.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files, cmds, err := parseCloudConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		if _, err := f.mode(); err != nil {
			t.Error(err)
		}
	}
	if !regexp.MustCompile(`/etc/systemd/system/wsdirect-node.service`).MatchString(strings.Join(paths, " ")) {
		t.Errorf("no unit among %v", paths)
	}
	for _, c := range cmds {
		if _, err := runcmdArgv(c); err != nil {
			t.Error(err)
		}
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFileThenExecWhileForking: runcmd runs a script write_files has just written while
// other instances fork their own processes. A child forked while the script was open for
// writing kept it open until its exec, and the script's exec then failed with ETXTBSY ("text
// file busy"): the installer did not run and its unit restarted forever with 203/EXEC (the
// likely cause of a CI failure of TestClusterModuleOnLocalCloud). writeUserFile keeps the
// descriptor from every child. The loops are bounded in count and time; without the lock, 3
// to 13 of about 375 execs failed here on a 2-core machine.
func TestWriteFileThenExecWhileForking(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	root := t.TempDir()
	stop := make(chan struct{})
	var forks sync.WaitGroup
	for range 2 {
		forks.Add(1)
		go func() {
			defer forks.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = exec.Command(sh, "-c", ":").Run()
			}
		}()
	}
	const perWriter, writers = 300, 2
	deadline := time.Now().Add(3 * time.Second)
	var mu sync.Mutex
	var busy, runs int
	var other []error
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter && time.Now().Before(deadline); i++ {
				f := writeFileEntry{Path: fmt.Sprintf("/usr/local/lib/x/install-%d-%d.sh", w, i), Content: "#!/bin/sh\nexit 0\n", Permissions: "0755"}
				if _, _, err := writeUserFile(root, f); err != nil {
					t.Error(err)
					return
				}
				err := exec.Command(rootPath(root, f.Path)).Run()
				mu.Lock()
				runs++
				switch {
				case errors.Is(err, syscall.ETXTBSY):
					busy++
				case err != nil:
					other = append(other, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	forks.Wait()
	if busy > 0 || len(other) > 0 {
		t.Fatalf("%d of %d execs of a just-written file failed with ETXTBSY; other errors: %v", busy, runs, other)
	}
	t.Logf("%d execs of just-written files, none busy", runs)
}
