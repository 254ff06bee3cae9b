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
	for _, mode := range []string{userdata.TLSACME, userdata.TLSFiles, userdata.TLSOffload} {
		t.Run(mode, func(t *testing.T) {
			c := userdata.DefaultConfigTLS(userdata.RoleAuth, mode)
			c.ReleaseURL, c.JoinTag = "https://example.com/wsdirect-auth", "k=v"
			c.GossipKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
			c.SigningKey, c.Users = string(pem), "alice:$2a$10$x\n"
			if mode == userdata.TLSACME {
				c.TLSNames, c.ACMEDirectory = []string{"auth.example.com"}, "https://ca.example.com/dir"
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
