package localcloud

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// systemctl carries out a systemctl command line inside the instance and returns its exit
// status and output. It knows the verbs cloud-init's runcmd uses; others exit 1 with a
// message rather than doing nothing.
func (in *instance) systemctl(args []string) (int, string) {
	var out strings.Builder
	now := false
	var verb string
	var units []string
	for _, a := range args {
		switch {
		case a == "--now":
			now = true
		case a == "-q" || a == "--quiet" || a == "--no-block" || a == "--no-reload" || a == "--system" || a == "--no-pager":
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(&out, "systemctl: option %s is not supported by the local cloud\n", a)
			return 1, out.String()
		case verb == "":
			verb = a
		default:
			units = append(units, a)
		}
	}
	for i, u := range units {
		switch ext := path.Ext(u); ext {
		case "":
			units[i] = u + ".service"
		case ".service":
		default:
			fmt.Fprintf(&out, "systemctl: %s units (%s) are not supported by the local cloud\n", ext, u)
			return 1, out.String()
		}
	}
	needUnits := func() bool {
		if len(units) == 0 {
			fmt.Fprintf(&out, "Too few arguments.\n")
			return false
		}
		return true
	}
	code := 0
	switch verb {
	case "daemon-reload":
		// Units are read from disk whenever they start.
	case "enable", "disable":
		if !needUnits() {
			return 1, out.String()
		}
		for _, u := range units {
			spec, err := loadUnit(in.root, u)
			if err != nil {
				fmt.Fprintf(&out, "Failed to %s unit: %v\n", verb, err)
				return 1, out.String()
			}
			if len(spec.WantedBy) == 0 {
				fmt.Fprintf(&out, "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.\n")
			}
			for _, target := range spec.WantedBy {
				link := in.wantsDir(target) + "/" + u
				if verb == "enable" {
					if err := os.MkdirAll(in.wantsDir(target), 0o755); err != nil {
						fmt.Fprintf(&out, "Failed to enable unit: %v\n", err)
						return 1, out.String()
					}
					if _, err := os.Lstat(link); err != nil {
						if err := os.Symlink("/etc/systemd/system/"+u, link); err != nil {
							fmt.Fprintf(&out, "Failed to enable unit: %v\n", err)
							return 1, out.String()
						}
						fmt.Fprintf(&out, "Created symlink /etc/systemd/system/%s.wants/%s → /etc/systemd/system/%s.\n", target, u, u)
					}
				} else if err := os.Remove(link); err == nil {
					fmt.Fprintf(&out, "Removed \"/etc/systemd/system/%s.wants/%s\".\n", target, u)
				}
			}
			if now {
				if verb == "enable" {
					if err := in.service(u).start(); err != nil {
						fmt.Fprintln(&out, err)
						code = 1
					}
				} else {
					in.service(u).stop(in.c.cfg.MaxStopTimeout)
				}
			}
		}
	case "start", "restart", "try-restart", "reload-or-restart":
		if !needUnits() {
			return 1, out.String()
		}
		for _, u := range units {
			s := in.service(u)
			if verb != "start" {
				if verb == "try-restart" && s.status().ActiveState != unitActive {
					continue
				}
				s.stop(in.c.cfg.MaxStopTimeout)
			}
			if err := s.start(); err != nil {
				fmt.Fprintln(&out, err)
				code = 1
			}
		}
	case "stop":
		if !needUnits() {
			return 1, out.String()
		}
		for _, u := range units {
			in.service(u).stop(in.c.cfg.MaxStopTimeout)
		}
	case "is-active", "status":
		if !needUnits() {
			return 1, out.String()
		}
		for _, u := range units {
			st := in.service(u).status()
			fmt.Fprintln(&out, st.ActiveState)
			if st.ActiveState != unitActive {
				code = 3
			}
		}
	case "is-enabled":
		if !needUnits() {
			return 1, out.String()
		}
		for _, u := range units {
			enabled := false
			for _, t := range []string{"multi-user.target", "default.target"} {
				if _, err := os.Lstat(in.wantsDir(t) + "/" + u); err == nil {
					enabled = true
				}
			}
			if enabled {
				fmt.Fprintln(&out, "enabled")
			} else {
				fmt.Fprintln(&out, "disabled")
				code = 1
			}
		}
	case "":
		fmt.Fprintln(&out, "systemctl: listing units is not supported by the local cloud")
		code = 1
	default:
		fmt.Fprintf(&out, "systemctl %s is not supported by the local cloud\n", verb)
		code = 1
	}
	return code, out.String()
}
