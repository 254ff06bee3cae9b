package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// The package's tests use their own address ranges, apart from the defaults and from the
// other packages that run local clouds, since packages test in parallel.
const (
	testVPC    = "127.30.0.0/16"
	testPublic = "127.31.0.0/16"
)

var bins struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// binaries builds wsdirect-node and wsdirect-auth from this tree once per test run.
func binaries(t testing.TB) string {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "localcloud-bin-")
		if bins.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			bins.err = localcluster.BuildBinaries(ctx, bins.dir)
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.dir
}

// newTestCloud starts a local cloud with the built binaries as its release; it is closed at
// the end of the test.
func newTestCloud(t *testing.T, mutate func(*Config)) *Cloud {
	t.Helper()
	dir := binaries(t)
	cfg := DefaultConfig()
	cfg.WorkDir = filepath.Join(t.TempDir(), "lc")
	cfg.Listen = "127.0.0.1:0"
	cfg.VPCCIDR = mustPrefix(testVPC)
	cfg.PublicCIDR = mustPrefix(testPublic)
	cfg.BootDelay = 100 * time.Millisecond
	cfg.MaxStopTimeout = 15 * time.Second
	cfg.ScanInterval = 50 * time.Millisecond
	cfg.ReleaseBinaries = map[string]string{
		"wsdirect-node": filepath.Join(dir, "wsdirect-node"),
		"wsdirect-auth": filepath.Join(dir, "wsdirect-auth"),
	}
	cfg.ReleaseVersion = "0.0.0"
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			dumpConsoles(t, cfg.WorkDir)
		}
	})
	return c
}

func dumpConsoles(t *testing.T, work string) {
	logs, _ := filepath.Glob(filepath.Join(work, "instances", "*", "console.log"))
	for _, l := range logs {
		raw, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("==== %s\n%s", l, strings.Join(lines, "\n"))
	}
}

// ec2Client is a real SDK client pointed at the local cloud's endpoint.
func ec2Client(c *Cloud) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{
		Region:       c.cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(c.URL()),
		HTTPClient:   ec2sim.HTTPClient(),
	})
}

// testKeys is a cluster's secrets for rendering user data.
type testKeys struct {
	gossip, pub, priv, users string
	user, password           string
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := token.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := token.EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var g [32]byte
	_, _ = rand.Read(g[:])
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{gossip: base64.StdEncoding.EncodeToString(g[:]), pub: string(pubPEM), priv: string(privPEM),
		users: "alice:" + string(hash) + "\n", user: "alice", password: "s3cret"}
}

// renderUserData renders the real cloud-init for role, downloading from the cloud's release.
func renderUserData(t testing.TB, c *Cloud, k testKeys, role, cluster string, mutate func(*userdata.Config)) string {
	t.Helper()
	info := c.Info()
	bin := "wsdirect-" + role
	cfg := userdata.Config{
		Role:       role,
		ReleaseURL: c.ReleaseURL() + "/" + ArchiveName(bin, c.cfg.ReleaseVersion, c.cfg.ReleaseArch),
		SHA256:     info.ReleaseSHA256[bin],
		GossipKey:  k.gossip,
		JoinTag:    "wsdirect:cluster=" + cluster,
	}
	if role == userdata.RoleNode {
		cfg.AuthPublicKeys = k.pub
		cfg.MaxConns = 1000
	} else {
		cfg.SigningKey = k.priv
		cfg.Users = k.users
	}
	if mutate != nil {
		mutate(&cfg)
	}
	out, err := userdata.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// launch runs count instances with user data, tagged for cluster, with an auto public IP and
// an instance profile (the binaries join by tag with the role's credentials).
func launch(t testing.TB, cl *ec2.Client, count int, subnet, userData, cluster, role string) []string {
	t.Helper()
	out, err := cl.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: ec2types.InstanceTypeT3Small,
		MinCount: aws.Int32(int32(count)), MaxCount: aws.Int32(int32(count)),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("wsdirect-node")},
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet), AssociatePublicIpAddress: aws.Bool(true),
		}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String("wsdirect:cluster"), Value: aws.String(cluster)},
			{Key: aws.String("wsdirect:role"), Value: aws.String(role)},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	return ids
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusOf returns the local cloud's view of one instance.
func statusOf(c *Cloud, id string) (InstanceStatus, bool) {
	for _, s := range c.Status() {
		if s.ID == id {
			return s, true
		}
	}
	return InstanceStatus{}, false
}

// serving is nil when the instance booted, cloud-init is done and unit is active.
func serving(c *Cloud, id, unit string) error {
	s, ok := statusOf(c, id)
	if !ok {
		return fmt.Errorf("%s not known to the local cloud", id)
	}
	if s.Boot != bootDone {
		return fmt.Errorf("%s: boot %q %s", id, s.Boot, s.BootError)
	}
	for _, u := range s.Units {
		if u.Name == unit {
			if u.ActiveState != unitActive {
				return fmt.Errorf("%s: %s is %s (%s, exit %d): %v", id, unit, u.ActiveState, u.Result, u.ExitStatus, u.Log)
			}
			return nil
		}
	}
	return fmt.Errorf("%s has no %s", id, unit)
}
