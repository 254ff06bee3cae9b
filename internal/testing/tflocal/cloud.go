package tflocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
)

// CloudConfig starts a wsdirect-localcloud process.
type CloudConfig struct {
	// WorkDir is the local cloud's -work-dir. Required.
	WorkDir string
	// Listen is its -listen address; port 0 picks one.
	Listen string
	// VPCCIDR and PublicCIDR are its address ranges (-vpc-cidr, -public-cidr).
	VPCCIDR, PublicCIDR netip.Prefix
	// BootDelay and MaxStopTimeout are passed on (-boot-delay, -max-stop-timeout).
	BootDelay, MaxStopTimeout time.Duration
	// EIPLimit is the Elastic IP quota (-eip-limit).
	EIPLimit int
	// StartTimeout bounds the wait for the local cloud to answer.
	StartTimeout time.Duration
}

// DefaultCloudConfig is the local cloud's own defaults (wsdirect-localcloud serve -h), a
// short boot and a 30 s cap on stops; WorkDir must be set.
func DefaultCloudConfig() CloudConfig {
	d := localcloud.DefaultConfig()
	return CloudConfig{
		Listen: d.Listen, VPCCIDR: d.VPCCIDR, PublicCIDR: d.PublicCIDR,
		BootDelay: 500 * time.Millisecond, MaxStopTimeout: 30 * time.Second, EIPLimit: d.ElasticIPLimit,
		StartTimeout: time.Minute,
	}
}

// Cloud is a running wsdirect-localcloud process.
type Cloud struct {
	Info    localcloud.Info
	workDir string
	build   *Build
	cmd     *exec.Cmd
	done    chan error
	log     string
}

// StartCloud runs wsdirect-localcloud from the build, publishing the built wsdirect-node and
// wsdirect-auth as its release, and waits until it answers.
func (b *Build) StartCloud(ctx context.Context, cfg CloudConfig) (*Cloud, error) {
	if cfg.WorkDir == "" || cfg.StartTimeout <= 0 {
		return nil, errors.New("tflocal: CloudConfig needs WorkDir and a positive StartTimeout")
	}
	if err := os.MkdirAll(filepath.Dir(cfg.WorkDir), 0o755); err != nil {
		return nil, err
	}
	logPath := cfg.WorkDir + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(b.BinDir, "wsdirect-localcloud"), "serve",
		"-work-dir", cfg.WorkDir, "-listen", cfg.Listen,
		"-vpc-cidr", cfg.VPCCIDR.String(), "-public-cidr", cfg.PublicCIDR.String(),
		"-boot-delay", cfg.BootDelay.String(), "-max-stop-timeout", cfg.MaxStopTimeout.String(),
		"-eip-limit", strconv.Itoa(cfg.EIPLimit),
		"-release-bin-dir", b.BinDir, "-release-version", b.Version)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If this process dies, the local cloud (and with it every instance) goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Cloud{build: b, workDir: cfg.WorkDir, cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() { c.done <- cmd.Wait() }()
	deadline := time.Now().Add(cfg.StartTimeout)
	for {
		raw, err := os.ReadFile(filepath.Join(cfg.WorkDir, "localcloud.json"))
		if err == nil && json.Unmarshal(raw, &c.Info) == nil && c.Info.PID == cmd.Process.Pid {
			if _, err := c.get(ctx, "/localcloud/v1/info"); err == nil {
				return c, nil
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			return nil, fmt.Errorf("tflocal: wsdirect-localcloud exited: %v\n%s", err, tail(logPath, 20))
		case <-ctx.Done():
			_ = c.Stop(context.Background())
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = c.Stop(context.Background())
			return nil, fmt.Errorf("tflocal: wsdirect-localcloud did not answer within %v\n%s", cfg.StartTimeout, tail(logPath, 20))
		}
	}
}

// Release is a published release: modules/cluster's release_url, release_version and
// release_sha256.
type Release struct {
	URL     string            `json:"release_url"`
	Version string            `json:"release_version"`
	SHA256  map[string]string `json:"release_sha256"`
}

// Release is the release the local cloud publishes from the start.
func (c *Cloud) Release() Release {
	return Release{URL: c.Info.ReleaseURL, Version: c.Info.ReleaseVersion, SHA256: c.Info.ReleaseSHA256}
}

// PublishRelease publishes the build's wsdirect-node and wsdirect-auth once more, as version
// (another archive name, so a different checksum and user data: what an upgrade looks like to
// modules/cluster), beside the first release on the local cloud's release server.
func (c *Cloud) PublishRelease(version string) (Release, error) {
	arch := localcloud.DefaultConfig().ReleaseArch
	bins := map[string]string{}
	for _, b := range []string{"wsdirect-node", "wsdirect-auth"} {
		bins[b] = filepath.Join(c.build.BinDir, b)
	}
	files, err := localcloud.BuildRelease(filepath.Join(c.workDir, "release", "v"+version), version, arch, bins)
	if err != nil {
		return Release{}, err
	}
	r := Release{URL: c.Info.URL + "/releases/v" + version, Version: version, SHA256: map[string]string{}}
	for b := range bins {
		for _, f := range files {
			if f.Name == localcloud.ArchiveName(b, version, arch) {
				r.SHA256[b] = f.SHA256
			}
		}
	}
	return r, nil
}

// PID is the local cloud process's ID.
func (c *Cloud) PID() int { return c.cmd.Process.Pid }

// Log returns the last lines of the local cloud's own log.
func (c *Cloud) Log(lines int) string { return tail(c.log, lines) }

var httpClient = &http.Client{Timeout: 10 * time.Second}

func (c *Cloud) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Info.URL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// Status is the local cloud's view of every instance it booted.
func (c *Cloud) Status(ctx context.Context) ([]localcloud.InstanceStatus, error) {
	raw, err := c.get(ctx, "/localcloud/v1/status")
	if err != nil {
		return nil, err
	}
	var out []localcloud.InstanceStatus
	return out, json.Unmarshal(raw, &out)
}

// Env is the environment of a Terraform run against the local cloud: the local cloud's
// endpoints and credentials, the CLI configuration with the provider mirror, and nothing of
// the caller's AWS or Terraform settings (HOME is a directory of the run's own).
func (c *Cloud) Env(home string) map[string]string {
	env := map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        home,
		"TF_CLI_CONFIG_FILE":          c.build.CLIConfig,
		"CHECKPOINT_DISABLE":          "1",
		"AWS_CONFIG_FILE":             filepath.Join(home, ".aws", "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, ".aws", "credentials"),
	}
	for _, kv := range c.Info.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// Terraform returns a terraform-exec runner for the configuration in dir, set up for the
// local cloud; its output goes to out (may be nil).
func (c *Cloud) Terraform(terraform, dir string, out io.Writer) (*tfexec.Terraform, error) {
	tf, err := tfexec.NewTerraform(dir, terraform)
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, ".home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := tf.SetEnv(c.Env(home)); err != nil {
		return nil, err
	}
	if out != nil {
		tf.SetStdout(out)
		tf.SetStderr(out)
	}
	return tf, nil
}

// Stop sends SIGTERM (the local cloud stops every instance, each within its grace period)
// and waits for the process to exit; when ctx ends first it is SIGKILLed.
func (c *Cloud) Stop(ctx context.Context) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		err := <-c.done
		c.done <- err
		return fmt.Errorf("tflocal: local cloud did not stop in time: %w", ctx.Err())
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ProcessesUnder lists the processes whose executable lives under dir: after a destroy, no
// instance process may be left.
func ProcessesUnder(dir string) ([]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if strings.HasPrefix(exe, prefix) {
			out = append(out, fmt.Sprintf("%d %s", pid, exe))
		}
	}
	return out, nil
}
