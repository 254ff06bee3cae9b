package main

import (
	"io"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// execArgs renders c and returns the unit's ExecStart arguments after the
// binary, with the host name specifier expanded as systemd would.
func execArgs(t *testing.T, c userdata.Config) []string {
	t.Helper()
	out, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
			rest = strings.NewReplacer("%H", "ip-10-0-1-5.ec2.internal", "%l", "ip-10-0-1-5").Replace(rest)
			rest = strings.ReplaceAll(rest, "%%", "%")
			return strings.Fields(rest)[1:]
		}
	}
	t.Fatal("no ExecStart in the rendered user data")
	return nil
}

// TestUserDataFlagsParse: the command line the cloud-init renders, in each
// TLS mode, is one this binary accepts.
func TestUserDataFlagsParse(t *testing.T) {
	pub, _, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := token.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mode string
		mut  func(*userdata.Config)
	}{
		"acme ip": {userdata.TLSACME, func(*userdata.Config) {}},
		"acme names": {userdata.TLSACME, func(c *userdata.Config) {
			c.Advertise, c.ACMEEmail, c.ACMEProfile = "%l.ws.example.com", "ops@example.com", "tlsserver"
		}},
		"files":   {userdata.TLSFiles, func(*userdata.Config) {}},
		"offload": {userdata.TLSOffload, func(c *userdata.Config) { c.AdvertisePort = 443 }},
	} {
		t.Run(name, func(t *testing.T) {
			c := userdata.DefaultConfigTLS(userdata.RoleNode, tc.mode)
			c.ReleaseURL, c.JoinTag = "https://example.com/wsdirect-node", "k=v"
			c.GossipKeyParameter, c.AuthPublicKeys = "/wsdirect/test/gossip-key", string(pem)
			tc.mut(&c)
			args := execArgs(t, c)
			o, err := parseFlags(args, io.Discard)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if string(o.tls.Mode) != tc.mode {
				t.Errorf("mode %s, want %s", o.tls.Mode, tc.mode)
			}
		})
	}
}
