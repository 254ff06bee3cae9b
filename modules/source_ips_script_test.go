package modules_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHAProxySourceIPsScript runs modules/haproxy/scripts/source-ips.sh
// with stand-ins for curl (answering like IMDSv2) and ip (recording what
// it is asked to do), so its parsing and output are checked without EC2
// or root.
func TestHAProxySourceIPsScript(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	script, err := filepath.Abs(filepath.Join("haproxy", "scripts", "source-ips.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ipLog := filepath.Join(dir, "ip.log")
	stubs := map[string]string{
		// The last argument is the URL; answer like IMDSv2 for an instance
		// with one primary and four secondary IPs.
		"curl": `#!/bin/sh
for a in "$@"; do url="$a"; done
case "$url" in
  */api/token) echo TOKEN ;;
  */meta-data/mac) echo 0a:1b:2c:3d:4e:5f ;;
  */subnet-ipv4-cidr-block) echo 10.0.1.0/24 ;;
  */local-ipv4s) printf '10.0.1.5\n10.0.1.20\n10.0.1.21\n10.0.1.22\n10.0.1.23\n' ;;
  *) echo "unexpected URL $url" >&2; exit 22 ;;
esac
`,
		// "ip -o link" lists the interface; "ip -o addr show" says 10.0.1.20
		// is already configured; everything else is logged.
		"ip": `#!/bin/sh
case "$*" in
  "-o link") echo '1: lo: <LOOPBACK> mtu 65536 link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00'
             echo '2: ens5: <BROADCAST> mtu 9001 link/ether 0a:1b:2c:3d:4e:5f brd ff:ff:ff:ff:ff:ff' ;;
  "-o addr show dev ens5") echo '2: ens5    inet 10.0.1.5/24 brd 10.0.1.255 scope global ens5'
                           echo '2: ens5    inet 10.0.1.20/24 scope global secondary ens5' ;;
  *) echo "$*" >> "` + ipLog + `" ;;
esac
`,
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	envFile := filepath.Join(dir, "sources.env")
	cmd := exec.Command("sh", script, "3", envFile)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script failed: %v\n%s", err, out)
	}
	got, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "WSDIRECT_SRC1=10.0.1.20\nWSDIRECT_SRC2=10.0.1.21\nWSDIRECT_SRC3=10.0.1.22\n"
	if string(got) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", got, want)
	}
	log, _ := os.ReadFile(ipLog)
	wantIP := "addr add 10.0.1.21/24 dev ens5\naddr add 10.0.1.22/24 dev ens5\n"
	if string(log) != wantIP {
		t.Errorf("ip calls:\n%s\nwant (10.0.1.20 exists, only 3 wanted):\n%s", log, wantIP)
	}

	// Asking for more secondary IPs than the instance has must fail, not
	// hand HAProxy an empty source address. Cap the wait: the script
	// retries, so give it a tiny loop by faking sleep.
	if err := os.WriteFile(filepath.Join(bin, "sleep"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sh", script, "6", filepath.Join(dir, "too-many.env"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want 6 secondary IPs, metadata shows 4") {
		t.Errorf("script with too few IPs: err=%v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "too-many.env")); err == nil {
		t.Error("an env file was written despite the failure")
	}
}
