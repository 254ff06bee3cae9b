package main

import (
	"io"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// TestUserDataFlagsParse: the command line the cloud-init renders for an
// auth host, in each TLS mode, is one this binary accepts.
func TestUserDataFlagsParse(t *testing.T) {
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := token.EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	base := userdata.Config{
		Role: userdata.RoleAuth, ReleaseURL: "https://example.com/wsdirect-auth", JoinTag: "k=v",
		GossipKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", SigningKey: string(pem), Users: "alice:$2a$10$x\n",
	}
	for name, mut := range map[string]func(*userdata.Config){
		"acme": func(c *userdata.Config) {
			c.TLSNames, c.ACMEDirectory = []string{"auth.example.com"}, "https://ca.example.com/dir"
		},
		"files":   func(c *userdata.Config) { c.TLS = userdata.TLSFiles },
		"offload": func(c *userdata.Config) { c.TLS = userdata.TLSOffload },
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			mut(&c)
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
