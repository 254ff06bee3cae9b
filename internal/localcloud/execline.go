package localcloud

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// execCommand is an ExecStart line after systemd's processing.
type execCommand struct {
	Argv         []string
	IgnoreFailed bool             // the '-' prefix: a failing exit status counts as success
	Listens      []netip.AddrPort // listen addresses the adaptation made (private address, port)
}

// specifierEnv are the values of systemd's unit specifiers for one unit of one instance.
type specifierEnv struct {
	Unit     string // e.g. wsdirect-node.service
	Hostname string // e.g. ip-127-10-1-23
	User     string // User= or "root"
	Home     string
	Machine  string // 32 hex digits
	Boot     string // 32 hex digits
}

// expandSpecifiers resolves systemd's %-specifiers. An unknown specifier is an error, as in
// systemd ("Failed to resolve unit specifiers").
func expandSpecifiers(s string, env specifierEnv) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	prefix := strings.TrimSuffix(env.Unit, filepath.Ext(env.Unit))
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("trailing %% in %q", s)
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteString(env.Unit)
		case 'N', 'p', 'P':
			b.WriteString(prefix)
		case 'i', 'I', 'j', 'J':
			// not a template unit: the instance name is empty
		case 'H':
			b.WriteString(env.Hostname)
		case 'l':
			h, _, _ := strings.Cut(env.Hostname, ".")
			b.WriteString(h)
		case 'm':
			b.WriteString(env.Machine)
		case 'b':
			b.WriteString(env.Boot)
		case 'u':
			b.WriteString(env.User)
		case 'h':
			b.WriteString(env.Home)
		case 't':
			b.WriteString("/run")
		case 'S':
			b.WriteString("/var/lib")
		case 'C':
			b.WriteString("/var/cache")
		case 'L':
			b.WriteString("/var/log")
		case 'E':
			b.WriteString("/etc")
		case 'T':
			b.WriteString("/tmp")
		case 'V':
			b.WriteString("/var/tmp")
		default:
			return "", fmt.Errorf("unknown specifier %%%c in %q", s[i], s)
		}
	}
	return b.String(), nil
}

// parseExecLine turns one ExecStart value into an argv: specifiers first, then the split into
// words (quotes, escapes), then environment variables ($VAR as a whole word splits into words
// at whitespace, ${VAR} is replaced in place, $$ is a literal $), as systemd.service(5)
// describes under "Command lines".
func parseExecLine(line string, spec specifierEnv, env map[string]string) (execCommand, error) {
	var cmd execCommand
	expanded, err := expandSpecifiers(line, spec)
	if err != nil {
		return cmd, err
	}
	words, err := splitWords(expanded)
	if err != nil {
		return cmd, err
	}
	if len(words) == 0 {
		return cmd, fmt.Errorf("empty ExecStart=")
	}
	exe := words[0]
	substitute := true
	for len(exe) > 0 && strings.ContainsRune("-@:+!", rune(exe[0])) {
		switch exe[0] {
		case '-':
			cmd.IgnoreFailed = true
		case ':':
			substitute = false
		default:
			return cmd, fmt.Errorf("ExecStart prefix %q is not supported by the local cloud", exe[0])
		}
		exe = exe[1:]
	}
	words[0] = exe
	for i, w := range words {
		if !substitute {
			cmd.Argv = append(cmd.Argv, w)
			continue
		}
		if i > 0 && strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "$$") && !strings.HasPrefix(w, "${") && isVarName(w[1:]) {
			cmd.Argv = append(cmd.Argv, strings.Fields(env[w[1:]])...)
			continue
		}
		cmd.Argv = append(cmd.Argv, substituteVars(w, env))
	}
	if !filepath.IsAbs(cmd.Argv[0]) {
		return cmd, fmt.Errorf("executable path %q is not absolute", cmd.Argv[0])
	}
	return cmd, nil
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// substituteVars replaces ${VAR} and $$ within a word.
func substituteVars(w string, env map[string]string) string {
	if !strings.Contains(w, "$") {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '$' || i+1 >= len(w) {
			b.WriteByte(w[i])
			continue
		}
		switch {
		case w[i+1] == '$':
			b.WriteByte('$')
			i++
		case w[i+1] == '{':
			end := strings.IndexByte(w[i+2:], '}')
			if end < 0 {
				b.WriteByte(w[i])
				continue
			}
			b.WriteString(env[w[i+2:i+2+end]])
			i += end + 2
		default:
			b.WriteByte(w[i])
		}
	}
	return b.String()
}

// readEnvironmentFile reads KEY=VALUE lines (comments with # or ;, optional quotes around the
// value), as systemd's EnvironmentFile=.
func readEnvironmentFile(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || !isVarName(strings.TrimSpace(k)) {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out = append(out, strings.TrimSpace(k)+"="+v)
	}
	return out, nil
}

// adaptArgs applies the local cloud's two argument adaptations (listed in the package
// comment): a listen address on every interface ("0.0.0.0:P", "[::]:P", ":P") becomes the
// instance's primary private address, because all instances share this machine's loopback
// and would collide on one port; and an absolute path names the file inside the instance's
// root. Both also apply to the value of a "-flag=value" argument. It returns the adapted argv
// and the listen addresses it made, which the 1:1 NAT forwards from the start.
func adaptArgs(argv []string, root string, private netip.Addr) ([]string, []netip.AddrPort) {
	out := make([]string, len(argv))
	var listens []netip.AddrPort
	adapt := func(v string) string {
		if port, ok := wildcardPort(v); ok {
			ap := netip.AddrPortFrom(private, port)
			listens = append(listens, ap)
			return ap.String()
		}
		if strings.HasPrefix(v, "/") {
			return rootPath(root, v)
		}
		return v
	}
	for i, a := range argv {
		switch {
		case i == 0:
			out[i] = rootPath(root, a)
		case strings.HasPrefix(a, "-"):
			if name, val, ok := strings.Cut(a, "="); ok {
				out[i] = name + "=" + adapt(val)
			} else {
				out[i] = a
			}
		default:
			out[i] = adapt(a)
		}
	}
	return out, listens
}

// wildcardPort reports whether v is a listen address on every interface, and its port.
func wildcardPort(v string) (uint16, bool) {
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return 0, false
	}
	host, p := v[:i], v[i+1:]
	if host != "" && host != "0.0.0.0" && host != "[::]" {
		return 0, false
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0, false
	}
	return uint16(port), true
}

// rootPath maps an absolute path as the instance sees it to the host path inside its root.
// Cleaning it as an absolute path first keeps ".." from leaving the root.
func rootPath(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}
