package main

import (
	"io"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

// TestUserDataFlagsParse: the command line the cloud-init renders for an
// auth host, in each TLS mode, is one this binary accepts.
func TestUserDataFlagsParse(t *testing.T) {
	for name, tc := range map[string]struct {
		mode  string
		names []string
	}{
		"acme name":       {userdata.TLSACME, []string{"auth.example.com"}},
		"acme by address": {userdata.TLSACME, nil},
		"files":           {userdata.TLSFiles, nil},
		"offload":         {userdata.TLSOffload, nil},
	} {
		t.Run(name, func(t *testing.T) {
			c := userdata.DefaultConfigTLS(userdata.RoleAuth, tc.mode)
			c.ReleaseURL, c.JoinTag = "https://example.com/wsdirect-auth", "k=v"
			c.GossipKeyParameter = "/wsdirect/test/gossip-key"
			c.SigningKeyParameter, c.UsersParameter = "/wsdirect/test/signing-key", "/wsdirect/test/users"
			c.TLSNames = tc.names
			if tc.mode == userdata.TLSACME {
				c.ACMEDirectory = "https://ca.example.com/dir"
			}
			out, err := userdata.Render(c)
			if err != nil {
				t.Fatal(err)
			}
			var args []string
			for _, line := range strings.Split(out, "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
					args = strings.Fields(strings.ReplaceAll(rest, "%%", "%"))[1:]
				}
			}
			if _, err := parseServeFlags(args, io.Discard); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
		})
	}
}
