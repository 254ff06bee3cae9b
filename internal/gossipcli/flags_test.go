package gossipcli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

func parse(t *testing.T, args ...string) (*Flags, error) {
	t.Helper()
	var f Flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &f, nil
}

func TestFlagsParse(t *testing.T) {
	f, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	want := Flags{Bind: "0.0.0.0:7946", LogLevel: slog.LevelInfo}
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("defaults %+v, want %+v", *f, want)
	}

	f, err = parse(t, "-gossip-bind", "127.0.0.1:7000", "-gossip-advertise", "10.0.0.1", "-gossip-key-file", "k",
		"-dev", "-join", "a", "-join", " b:1 , c,", "-join", "[::1]", "-join-ec2-tag", "k=v", "-ec2-endpoint", "http://e",
		"-log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	want = Flags{Bind: "127.0.0.1:7000", Advertise: "10.0.0.1", KeyFile: "k", Dev: true,
		Join: []string{"a", "b:1", "c", "[::1]"}, JoinEC2Tag: "k=v", EC2Endpoint: "http://e", LogLevel: slog.LevelDebug}
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("parsed %+v, want %+v", *f, want)
	}
	if _, err := parse(t, "-log-level", "loud"); err == nil || !strings.Contains(err.Error(), "-log-level") {
		t.Errorf("bad level: %v", err)
	}
}

// TestFlagsHelp: both commands register the same flags, so their help
// lists the same gossip lines.
func TestFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&out)
	new(Flags).Register(fs)
	fs.PrintDefaults()
	for _, name := range []string{"-gossip-bind", "-gossip-advertise", "-gossip-key-file", "-dev", "-join", "-join-ec2-tag", "-ec2-endpoint", "-log-level"} {
		if !strings.Contains(out.String(), "  "+name+" ") && !strings.Contains(out.String(), "  "+name+"\n") {
			t.Errorf("help lacks %s:\n%s", name, out.String())
		}
	}
}

func TestFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{[]string{"-dev"}, ""},
		{[]string{"-gossip-key-file", "k"}, ""},
		{[]string{"-dev", "-gossip-bind", ":7000", "-gossip-advertise", "[::1]", "-join", "h,10.0.0.1:1", "-join-ec2-tag", "a=b=c"}, ""},
		{nil, "-gossip-key-file is required"},
		{[]string{"-gossip-key-file", "ssm:///wsdirect/prod/gossip-key"}, ""},
		{[]string{"-gossip-key-file", "ssm://wsdirect/prod/gossip-key"}, "-gossip-key-file: SSM parameter name"},
		{[]string{"-dev", "-gossip-bind", "h:x"}, "-gossip-bind"},
		{[]string{"-dev", "-gossip-advertise", "h:99999"}, "-gossip-advertise"},
		{[]string{"-dev", "-gossip-advertise", ":7000"}, "-gossip-advertise"},
		{[]string{"-dev", "-join", "ok,h:0"}, "-join"},
		{[]string{"-dev", "-join", ":7946"}, "-join"},
		{[]string{"-dev", "-join-ec2-tag", "novalue"}, "-join-ec2-tag"},
		{[]string{"-dev", "-join-ec2-tag", "=v"}, "-join-ec2-tag"},
	} {
		f, err := parse(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		err = f.Validate()
		if tc.want == "" && err != nil {
			t.Errorf("%q: %v", tc.args, err)
		}
		if tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%q: error %v, want one starting %q", tc.args, err, tc.want)
		}
	}
}

func TestClusterConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "gossip.key")
	key := bytes.Repeat([]byte{7}, cluster.KeySize)
	if err := os.WriteFile(keyFile, []byte(cluster.EncodeKey(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := NewLogger(io.Discard, slog.LevelInfo)
	f := &Flags{Bind: ":7000", Advertise: "10.0.0.9", KeyFile: keyFile}
	c, err := f.ClusterConfig("auth-1", cluster.RoleAuth, log)
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.DefaultConfig()
	want.Name, want.Role, want.Logger = "auth-1", cluster.RoleAuth, log
	want.BindAddr, want.BindPort = "0.0.0.0", 7000
	want.AdvertiseAddr, want.AdvertisePort = "10.0.0.9", 0 // the bound port
	want.SecretKey = key
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config\n%+v\nwant\n%+v", c, want)
	}

	c, err = (&Flags{Bind: "127.0.0.1", Advertise: "[::1]:9", Dev: true}).ClusterConfig("n", cluster.RoleNode, log)
	if err != nil {
		t.Fatal(err)
	}
	if c.BindAddr != "127.0.0.1" || c.BindPort != DefaultPort || c.AdvertiseAddr != "::1" || c.AdvertisePort != 9 || !c.Dev || c.SecretKey != nil {
		t.Errorf("config %+v", c)
	}

	// Two keys while rotating: the first sends, both are accepted.
	other := bytes.Repeat([]byte{8}, cluster.KeySize)
	if err := os.WriteFile(keyFile, []byte(cluster.EncodeKey(key)+"\n"+cluster.EncodeKey(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = f.ClusterConfig("auth-1", cluster.RoleAuth, log); err != nil || !bytes.Equal(c.SecretKey, key) ||
		len(c.ExtraKeys) != 1 || !bytes.Equal(c.ExtraKeys[0], other) {
		t.Errorf("two keys: %v", err)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kf := range []string{filepath.Join(dir, "missing"), empty, bad} {
		_, err := (&Flags{Bind: "127.0.0.1:0", KeyFile: kf}).ClusterConfig("n", cluster.RoleNode, log)
		if err == nil || !strings.HasPrefix(err.Error(), "-gossip-key-file") {
			t.Errorf("key file %s: error %v, want one naming -gossip-key-file", filepath.Base(kf), err)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var out bytes.Buffer
	log := NewLogger(&out, slog.LevelWarn)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, out.String())
	}
	if line["msg"] != "shown" || line["level"] != "WARN" || line["k"] != 1.0 {
		t.Errorf("line %v", line)
	}
}

func TestFlagsJoinConfig(t *testing.T) {
	log := NewLogger(io.Discard, slog.LevelInfo)
	jc, err := (&Flags{Join: []string{"a", "b:1"}}).JoinConfig(context.Background(), log)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jc.Addrs, []string{"a", "b:1"}) || jc.Lookup != nil || jc.MinBackoff != DefaultJoinConfig().MinBackoff {
		t.Errorf("join config %+v", jc)
	}

	awsEnv(t)
	if _, err := (&Flags{JoinEC2Tag: "k=v", EC2Endpoint: "not a url"}).JoinConfig(context.Background(), log); err == nil || !strings.Contains(err.Error(), "-join-ec2-tag") {
		t.Errorf("bad endpoint: %v", err)
	}
	t.Setenv("AWS_REGION", "")
	if _, err := (&Flags{JoinEC2Tag: "k=v", EC2Endpoint: "http://127.0.0.1:1"}).JoinConfig(context.Background(), log); err == nil || !strings.HasPrefix(err.Error(), "-join-ec2-tag: ") {
		t.Errorf("no region: %v", err)
	}
}

// awsEnv points the AWS SDK's default configuration chain at the emulator's
// test credentials, and away from this machine's files and IMDS.
func awsEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", ec2sim.TestAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ec2sim.TestSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
