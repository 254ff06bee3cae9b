package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/pebble"
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

// ssmClient is a real SDK client for the local cloud's Parameter Store, with the local
// cloud's own (administrator) credentials, as `aws ssm` after `wsdirect-localcloud env`.
func ssmClient(c *Cloud) *ssm.Client {
	return ssm.NewFromConfig(aws.Config{
		Region:       c.cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(c.URL()),
		HTTPClient:   ec2sim.HTTPClient(),
	})
}

// putSecrets stores the cluster's secrets under /<cluster>/ in the local cloud's Parameter
// Store, the way an operator does before applying (user data names them, nothing more).
func putSecrets(t testing.TB, c *Cloud, k testKeys, cluster string) {
	t.Helper()
	for name, v := range map[string]string{"gossip-key": k.gossip, "signing-key": k.priv, "users": k.users, "auth-public-keys": k.pub} {
		typ := ssmtypes.ParameterTypeSecureString
		if name == "auth-public-keys" {
			typ = ssmtypes.ParameterTypeString
		}
		if _, err := ssmClient(c).PutParameter(context.Background(), &ssm.PutParameterInput{
			Name: aws.String("/" + cluster + "/" + name), Value: aws.String(v), Type: typ, Overwrite: aws.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// renderUserData renders the real cloud-init for role, downloading from the cloud's release,
// with the cluster's secrets in the cloud's Parameter Store under /<cluster>/, and TLS from
// ACME: the CA is ca (testCA), as Let's Encrypt would be on EC2. A node orders an IP
// certificate for its public address (-advertise auto), an auth host one for its own
// (-tls-names auto).
func renderUserData(t testing.TB, c *Cloud, k testKeys, ca *pebble.Pebble, role, cluster string, mutate func(*userdata.Config)) string {
	t.Helper()
	putSecrets(t, c, k, cluster)
	info := c.Info()
	bin := "wsdirect-" + role
	cfg := userdata.DefaultConfigTLS(role, userdata.TLSACME)
	cfg.ReleaseURL = c.ReleaseURL() + "/" + ArchiveName(bin, c.cfg.ReleaseVersion, c.cfg.ReleaseArch)
	cfg.SHA256 = info.ReleaseSHA256[bin]
	cfg.GossipKeyParameter = "/" + cluster + "/gossip-key"
	cfg.JoinTag = "wsdirect:cluster=" + cluster
	root, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ACMEDirectory, cfg.ACMECARoot = ca.DirectoryURL(), string(root)
	if role == userdata.RoleNode {
		cfg.AuthPublicKeysParameter = "/" + cluster + "/auth-public-keys"
		cfg.MaxConns = 1000
	} else {
		cfg.SigningKeyParameter = "/" + cluster + "/signing-key"
		cfg.UsersParameter = "/" + cluster + "/users"
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

// testCA starts pebble, Let's Encrypt's test CA, for the instances of one test. It validates
// as Let's Encrypt does: http-01 on port 80 and tls-alpn-01 on port 443 of the address in the
// certificate, here an instance's public address, which the local cloud forwards to the
// instance. The units bind those ports, which needs root (or CAP_NET_BIND_SERVICE): the test
// is skipped without, except in CI.
func testCA(t *testing.T) *pebble.Pebble {
	t.Helper()
	ln, err := net.Listen("tcp", "127.30.255.254:443") // in the tests' VPC, never an instance's
	if err != nil {
		if errors.Is(err, syscall.EACCES) && os.Getenv("CI") == "" {
			t.Skipf("the rendered units listen on ports 443 and 80: %v", err)
		}
		if errors.Is(err, syscall.EACCES) {
			t.Fatalf("CI is set but ports below 1024 cannot be bound: %v", err)
		}
	} else {
		ln.Close()
	}
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort = 80, 443
	return pebble.Start(t, po)
}

// clientTLS is what a client trusts to reach the instances: the CA's roots.
func clientTLS(ca *pebble.Pebble) client.Option { return client.WithRootCAs(ca.RootPool()) }

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
