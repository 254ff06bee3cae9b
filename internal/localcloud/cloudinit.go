package localcloud

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// cloudInitSource is the console prefix of cloud-init's own lines.
const cloudInitSource = "cloud-init"

// cloudConfigModules are the #cloud-config keys the local cloud carries out. Any other key
// fails the boot: running an instance without a module its user data asked for would be a
// different instance from the one EC2 boots.
var cloudConfigModules = map[string]bool{"write_files": true, "runcmd": true}

// writeFileEntry is one write_files item (cloud-init's cc_write_files).
type writeFileEntry struct {
	Path        string `yaml:"path"`
	Content     string `yaml:"content"`
	Encoding    string `yaml:"encoding"`
	Owner       string `yaml:"owner"`
	Permissions any    `yaml:"permissions"`
	Append      bool   `yaml:"append"`
	Defer       bool   `yaml:"defer"`
}

// parseCloudConfig checks the user data's format and modules and returns write_files and
// runcmd. Only "#cloud-config" user data is run; shell scripts, MIME multipart and include
// files would run host commands the local cloud cannot confine to an instance.
func parseCloudConfig(userData []byte) ([]writeFileEntry, []any, error) {
	if len(userData) >= 2 && userData[0] == 0x1f && userData[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(userData))
		if err != nil {
			return nil, nil, fmt.Errorf("gzip user data: %w", err)
		}
		if userData, err = io.ReadAll(io.LimitReader(zr, 1<<20)); err != nil {
			return nil, nil, fmt.Errorf("gzip user data: %w", err)
		}
	}
	first, _, _ := strings.Cut(string(userData), "\n")
	if strings.TrimSpace(first) != "#cloud-config" {
		return nil, nil, fmt.Errorf("user data starting %q is not #cloud-config; the local cloud runs only #cloud-config user data", truncate(first, 40))
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(userData, &top); err != nil {
		return nil, nil, fmt.Errorf("cloud-config is not valid YAML: %w", err)
	}
	for k := range top {
		if !cloudConfigModules[k] {
			return nil, nil, fmt.Errorf("cloud-config key %q is not supported by the local cloud (it carries out write_files and runcmd)", k)
		}
	}
	var files []writeFileEntry
	if n, ok := top["write_files"]; ok {
		var raw []yaml.Node
		if err := n.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("write_files: %w", err)
		}
		for i, item := range raw {
			if item.Kind != yaml.MappingNode {
				return nil, nil, fmt.Errorf("write_files[%d] is not a mapping", i)
			}
			for j := 0; j+1 < len(item.Content); j += 2 {
				switch k := item.Content[j].Value; k {
				case "path", "content", "encoding", "owner", "permissions", "append", "defer":
				default:
					return nil, nil, fmt.Errorf("write_files[%d]: key %q is not supported by the local cloud", i, k)
				}
			}
			var f writeFileEntry
			if err := item.Decode(&f); err != nil {
				return nil, nil, fmt.Errorf("write_files[%d]: %w", i, err)
			}
			if f.Path == "" || !strings.HasPrefix(f.Path, "/") {
				return nil, nil, fmt.Errorf("write_files[%d]: path %q must be absolute", i, f.Path)
			}
			files = append(files, f)
		}
	}
	var cmds []any
	if n, ok := top["runcmd"]; ok {
		if err := n.Decode(&cmds); err != nil {
			return nil, nil, fmt.Errorf("runcmd: %w", err)
		}
	}
	return files, cmds, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// content decodes a write_files content by its encoding.
func (f writeFileEntry) content() ([]byte, error) {
	switch strings.ToLower(f.Encoding) {
	case "", "text/plain":
		return []byte(f.Content), nil
	case "b64", "base64":
		return base64.StdEncoding.DecodeString(f.Content)
	case "gz", "gzip":
		zr, err := gzip.NewReader(strings.NewReader(f.Content))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		raw, err := base64.StdEncoding.DecodeString(f.Content)
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return nil, fmt.Errorf("unknown encoding %q", f.Encoding)
}

// mode parses permissions ("0640" or an integer); cloud-init's default is 0644.
func (f writeFileEntry) mode() (os.FileMode, error) {
	switch p := f.Permissions.(type) {
	case nil:
		return 0o644, nil
	case int:
		// YAML 1.1 octal literals (0644) arrive as decimal ints already converted.
		return os.FileMode(p) & os.ModePerm, nil
	case string:
		n, err := strconv.ParseUint(strings.TrimPrefix(p, "0o"), 8, 32)
		if err != nil {
			return 0, fmt.Errorf("permissions %q are not octal", p)
		}
		return os.FileMode(n) & os.ModePerm, nil
	}
	return 0, fmt.Errorf("permissions %v are not octal", f.Permissions)
}

// runCloudInit carries out the user data once per instance: write_files, then each runcmd
// command in order. Like the script cloud-init makes of runcmd, a failing command does not stop
// the ones after it; the boot is reported as an error if any failed.
func (in *instance) runCloudInit(ctx context.Context, userData []byte) error {
	in.con.printf(cloudInitSource, "Cloud-init (local cloud) running modules for instance %s", in.id)
	files, cmds, err := parseCloudConfig(userData)
	if err != nil {
		return err
	}
	for _, f := range files {
		n, mode, err := writeUserFile(in.root, f)
		if err != nil {
			return fmt.Errorf("write_files %s: %w", f.Path, err)
		}
		in.con.printf(cloudInitSource, "write_files: %s (%d bytes, mode %04o)", f.Path, n, mode)
	}
	var failed []string
	for i, c := range cmds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		argv, err := runcmdArgv(c)
		if err != nil {
			return fmt.Errorf("runcmd[%d]: %w", i, err)
		}
		code, err := in.runCommand(ctx, argv)
		if err != nil {
			in.con.printf(cloudInitSource, "runcmd[%d] %s: %v", i, strings.Join(argv, " "), err)
			failed = append(failed, fmt.Sprintf("%s: %v", strings.Join(argv, " "), err))
			continue
		}
		if code != 0 {
			in.con.printf(cloudInitSource, "runcmd[%d] %s: exit status %d", i, strings.Join(argv, " "), code)
			failed = append(failed, fmt.Sprintf("%s: exit status %d", strings.Join(argv, " "), code))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("runcmd failed: %s", strings.Join(failed, "; "))
	}
	in.con.printf(cloudInitSource, "Cloud-init (local cloud) finished")
	return nil
}

// writeUserFile carries out one write_files entry in the instance's root and returns the bytes
// written and the mode.
//
// The file is open for writing only while syscall.ForkLock is held for reading, so no child
// this process forks meanwhile (another instance's runcmd, a unit's start) inherits the
// descriptor. Such a child holds the file open for writing until its own exec closes it
// (close-on-exec), and an exec of the file in that window fails with ETXTBSY, "text file busy"
// (go.dev/issue/22315). runcmd runs the installer microseconds after write_files wrote it, so
// with instances booting together an installer failed so now and then (a few boots in 200 with
// 40 instances at once), and the unit it was to install then restarted forever with 203/EXEC.
// Nothing inside the window takes ForkLock itself, and a write of user data is short.
func writeUserFile(root string, f writeFileEntry) (int, os.FileMode, error) {
	data, err := f.content()
	if err != nil {
		return 0, 0, err
	}
	mode, err := f.mode()
	if err != nil {
		return 0, 0, err
	}
	p := rootPath(root, f.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, 0, err
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if f.Append {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	syscall.ForkLock.RLock()
	fh, err := os.OpenFile(p, flags, mode)
	if err != nil {
		syscall.ForkLock.RUnlock()
		return 0, 0, err
	}
	_, werr := fh.Write(data)
	cerr := fh.Close()
	syscall.ForkLock.RUnlock()
	if err := errors.Join(werr, cerr, os.Chmod(p, mode)); err != nil {
		return 0, 0, err
	}
	return len(data), mode, nil
}

// runcmdArgv accepts the list form of a runcmd entry. The string form is a shell command line,
// which would run the host's commands on the host; the local cloud refuses it.
func runcmdArgv(c any) ([]string, error) {
	list, ok := c.([]any)
	if !ok {
		return nil, fmt.Errorf("%v: the local cloud runs runcmd entries given as lists (argv), not shell strings", c)
	}
	if len(list) == 0 {
		return nil, errors.New("empty command")
	}
	argv := make([]string, len(list))
	for i, a := range list {
		switch v := a.(type) {
		case string:
			argv[i] = v
		case int, float64, bool:
			argv[i] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("argument %d (%v) is not a scalar", i, a)
		}
	}
	return argv, nil
}

// runCommand runs one runcmd command: systemctl goes to the instance's service manager; an
// absolute path runs that file of the instance's root, with DESTDIR set to the root (the
// installer's way of installing into another root). Bare command names are refused: they
// would be the host's own tools acting on the host.
func (in *instance) runCommand(ctx context.Context, argv []string) (int, error) {
	switch argv[0] {
	case "systemctl", "/bin/systemctl", "/usr/bin/systemctl":
		code, out := in.systemctl(argv[1:])
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if l != "" {
				in.con.line(cloudInitSource, l)
			}
		}
		return code, nil
	}
	if !strings.HasPrefix(argv[0], "/") {
		return 0, fmt.Errorf("%q is not an absolute path; the local cloud runs only files of the instance and systemctl", argv[0])
	}
	exe := rootPath(in.root, argv[0])
	if _, err := os.Stat(exe); err != nil {
		return 0, fmt.Errorf("%s: no such file in the instance", argv[0])
	}
	in.con.printf(cloudInitSource, "runcmd: %s", strings.Join(argv, " "))
	cmd := exec.Command(exe, argv[1:]...)
	cmd.Dir = in.root
	cmd.Env = in.runcmdEnv()
	out := in.con.writer(cloudInitSource)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = processAttr()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	code, _ := exitOf(cmd.ProcessState, err)
	if ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, nil
}
