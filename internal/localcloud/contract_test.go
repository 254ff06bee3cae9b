package localcloud

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

// TestCloudInitContract: the local cloud runs the unit the renderer writes, so a rendering
// change the binaries reject, a flag set that misses a required option, or a release whose
// SHA-256 does not match fails here, with the binary's or the installer's own message. Each
// case starts from the real rendered user data and changes one thing, as a regression in the
// renderer would.
func TestCloudInitContract(t *testing.T) {
	c := newTestCloud(t, nil)
	cl := ec2Client(c)
	k := newTestKeys(t)
	ca := testCA(t)

	// The control: the unchanged user data boots and stays up.
	good := launch(t, cl, 1, "subnet-00000001", renderUserData(t, c, k, ca, userdata.RoleAuth, "ct-good", nil), "ct-good", "auth")[0]

	cases := []struct {
		name, role, unit string
		change           func(string) string // edits the rendered user data
		mutate           func(*userdata.Config)
		wantBoot         string // in the boot log or boot error
		wantUnit         string // in the unit's log
		wantExit         int
	}{
		{
			name: "unknown flag", role: userdata.RoleNode, unit: "wsdirect-node.service",
			change: func(s string) string {
				return strings.Replace(s, " -advertise auto", " -advertise auto -no-such-flag", 1)
			},
			wantUnit: "flag provided but not defined: -no-such-flag", wantExit: 2,
		},
		{
			name: "no credential backend", role: userdata.RoleAuth, unit: "wsdirect-auth.service",
			change:   func(s string) string { return flagRe("-users").ReplaceAllString(s, "") },
			wantUnit: "give exactly one credential backend", wantExit: 2,
		},
		{
			name: "missing required option", role: userdata.RoleNode, unit: "wsdirect-node.service",
			change:   func(s string) string { return flagRe("-auth-keys").ReplaceAllString(s, "") },
			wantUnit: "-auth-keys is required", wantExit: 2,
		},
		{
			// A parameter the user data names but nobody created: the binary says which.
			name: "missing parameter", role: userdata.RoleNode, unit: "wsdirect-node.service",
			mutate:   func(u *userdata.Config) { u.GossipKeyParameter = "/ct-nobody/gossip-key" },
			wantUnit: "-gossip-key-file: SSM parameter /ct-nobody/gossip-key: does not exist", wantExit: 1,
		},
		{
			name: "bad sha256", role: userdata.RoleNode, unit: "wsdirect-node.service",
			mutate:   func(u *userdata.Config) { u.SHA256 = strings.Repeat("0", 64) },
			wantBoot: "SHA-256 of " + c.ReleaseURL(), wantUnit: "Failed to execute", wantExit: 203,
		},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		ud := renderUserData(t, c, k, ca, tc.role, "ct-"+strings.ReplaceAll(tc.name, " ", "-"), tc.mutate)
		if tc.change != nil {
			changed := tc.change(ud)
			if changed == ud {
				t.Fatalf("%s: the change does not apply to the rendered user data:\n%s", tc.name, ud)
			}
			ud = changed
		}
		ids[tc.name] = launch(t, cl, 1, "subnet-00000002", ud, "ct", tc.role)[0]
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := ids[tc.name]
			var st InstanceStatus
			probe.Until(t, 60*time.Second, "the unit to fail", func() error {
				st, _ = statusOf(c, id)
				if st.Boot == bootPending || st.Boot == bootRunning {
					return fmt.Errorf("boot %q", st.Boot)
				}
				for _, u := range st.Units {
					if u.Name == tc.unit && u.ExitStatus != 0 {
						return nil
					}
				}
				return fmt.Errorf("units %+v", st.Units)
			})
			u := st.Units[0]
			if u.ExitStatus != tc.wantExit || !containsLine(u.Log, tc.wantUnit) {
				t.Fatalf("%s exited %d, want %d with %q in its log:\n%s", u.Name, u.ExitStatus, tc.wantExit, tc.wantUnit, strings.Join(u.Log, "\n"))
			}
			if tc.wantBoot != "" {
				if st.Boot != bootError || !containsLine(append(st.BootLog, st.BootError), tc.wantBoot) {
					t.Fatalf("boot %q (%s), want an error with %q:\n%s", st.Boot, st.BootError, tc.wantBoot, strings.Join(st.BootLog, "\n"))
				}
			}
		})
	}

	// The control really ran all along: started once, never restarted.
	if err := serving(c, good, "wsdirect-auth.service"); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(c, good); st.Units[0].Restarts != 0 {
		t.Fatalf("the unchanged auth unit restarted %d times:\n%s", st.Units[0].Restarts, strings.Join(st.Units[0].Log, "\n"))
	}
}

// flagRe matches one flag of the unit's ExecStart with its value.
func flagRe(flag string) *regexp.Regexp { return regexp.MustCompile(` ` + flag + ` \S+`) }

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}
