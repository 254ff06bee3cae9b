package localcloud

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestClusterOnLocalCloud boots an auth host and two nodes from the real cloud-init the
// renderer writes: the installer downloads the release archive and checks its SHA-256, the
// units start with the rendered flags, the nodes find each other by EC2 tag through the
// emulator with their instance role's credentials, and -advertise auto reads each node's
// public IP from its own IMDS. Every instance obtains an IP certificate for its public
// address from an ACME CA (pebble), validated through the local cloud's 1:1 NAT. A client
// that trusts that CA reaches auth at https:// on its public address and is sent to a node at
// wss:// on its public address; the node that serves it is the one auth assigned. Then a fault
// (one unit killed, restarted by Restart=on-failure), a whole-instance crash, and termination,
// after which no process and no instance file is left.
func TestClusterOnLocalCloud(t *testing.T) {
	c := newTestCloud(t, nil)
	cl := ec2Client(c)
	k := newTestKeys(t)
	ca := testCA(t)
	const admin = "lc-admin-token"
	if _, err := ssmClient(c).PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String("/lc/admin-token"), Value: aws.String(admin), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	authIDs := launch(t, cl, 1, "subnet-00000001", renderUserData(t, c, k, ca, userdata.RoleAuth, "lc",
		func(u *userdata.Config) { u.AdminTokenParameter = "/lc/admin-token" }), "lc", "auth")
	nodeIDs := launch(t, cl, 2, "subnet-00000002", renderUserData(t, c, k, ca, userdata.RoleNode, "lc", nil), "lc", "node")
	all := append(append([]string{}, authIDs...), nodeIDs...)

	for _, id := range nodeIDs {
		probe.Until(t, 60*time.Second, id+" serving", func() error { return serving(c, id, "wsdirect-node.service") })
	}
	probe.Until(t, 60*time.Second, "auth serving", func() error { return serving(c, authIDs[0], "wsdirect-auth.service") })

	auth, _ := statusOf(c, authIDs[0])
	authURL := "https://" + auth.PublicIP
	hostByPublic := map[string]string{}
	for _, id := range nodeIDs {
		s, _ := statusOf(c, id)
		hostByPublic[s.PublicIP] = s.Hostname
		if !strings.HasPrefix(s.Hostname, "ip-127-30-") {
			t.Fatalf("node hostname %q", s.Hostname)
		}
		// The unit's wildcard binds became the private address; its paths are in the root.
		u := s.Units[0]
		argv := strings.Join(u.Argv, " ")
		if !strings.Contains(argv, "-bind "+s.PrivateIP+":443") || !strings.Contains(argv, "-acme-http-bind "+s.PrivateIP+":80") ||
			!strings.Contains(argv, "-gossip-bind "+s.PrivateIP+":7946") ||
			!strings.Contains(argv, "-name "+s.Hostname) || !strings.Contains(argv, c.cfg.WorkDir) {
			t.Fatalf("adapted command line: %s", argv)
		}
	}

	// Clients: auth at its public address; each assignment names a node by host name and
	// sends the client to that node's public address.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	creds := client.Credentials{Username: k.user, Password: k.password}
	// Both nodes in auth's view, alive and ready (certificate obtained, token floor passed):
	// asked through the admin API, since every token minted while waiting would count
	// against the user's limit of unused tokens.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.RootPool()}}}
	probe.Until(t, 60*time.Second, "both nodes assignable", func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL+wire.NodesPath, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var ns []wire.NodeStatus
		if err := json.NewDecoder(resp.Body).Decode(&ns); err != nil {
			return fmt.Errorf("GET %s: %s: %v", wire.NodesPath, resp.Status, err)
		}
		ready := 0
		for _, n := range ns {
			if n.Alive && n.Ready && !n.Draining {
				ready++
			}
		}
		if ready < 2 {
			return fmt.Errorf("auth's view: %+v", ns)
		}
		return nil
	})
	for range 10 { // at most 10 unused tokens per user at once (authsvc.DefaultMaxUserTokens)
		conn, resp, err := client.Dial(ctx, authURL, creds, clientTLS(ca))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(resp.URL)
		if err != nil {
			t.Fatal(err)
		}
		if hostByPublic[u.Hostname()] != resp.NodeID {
			t.Fatalf("auth assigned %s at %s, but that public IP belongs to %s", resp.NodeID, u.Host, hostByPublic[u.Hostname()])
		}
		// The connection reaches, through the public address, the node that was assigned: its
		// private address is where the node named resp.NodeID listens.
		if u.Scheme != "wss" || u.Port() != "" {
			t.Fatalf("auth handed out %s, want wss:// on the default port", resp.URL)
		}
		to, ok := c.PublicEndpoint(netip.AddrPortFrom(netip.MustParseAddr(u.Hostname()), 443))
		if !ok {
			t.Fatalf("%s does not forward", u.Host)
		}
		if want := privateOfHost(t, c, resp.NodeID); to.Addr().String() != want {
			t.Fatalf("%s forwards to %s, want %s (%s)", u.Host, to, want, resp.NodeID)
		}
		if err := conn.WriteMessage(1, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := conn.ReadMessage(); err != nil || string(msg) != "hello" {
			t.Fatalf("echo: %q %v", msg, err)
		}
		conn.Close()
	}

	// The instances' own calls used their role's credentials (from IMDS), not the test's.
	roleCalls := 0
	for _, call := range c.Sim().Calls() {
		if call.Action == "DescribeInstances" && strings.HasPrefix(call.AccessKeyID, "ASIA") {
			roleCalls++
		}
	}
	if roleCalls == 0 {
		t.Fatal("no DescribeInstances call with instance role credentials: -join-ec2-tag did not go through the emulator")
	}

	// Fault injection: kill one unit; Restart=on-failure brings it back after RestartSec.
	victim := nodeIDs[0]
	before, _ := statusOf(c, victim)
	if err := c.Kill(victim, "wsdirect-node"); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "restart after kill", func() error {
		s, _ := statusOf(c, victim)
		u := s.Units[0]
		if u.Restarts != 1 || u.ActiveState != unitActive || u.PID == before.Units[0].PID {
			return fmt.Errorf("unit %s restarts %d pid %d", u.ActiveState, u.Restarts, u.PID)
		}
		return nil
	})
	// A crash: everything dies and nothing restarts; EC2 still says running.
	if err := c.Kill(nodeIDs[1], ""); err != nil {
		t.Fatal(err)
	}
	crashed, _ := statusOf(c, nodeIDs[1])
	if crashed.Phase != phaseCrashed || crashed.State != "running" || len(crashed.PIDs()) != 0 {
		t.Fatalf("after crash: phase %s state %s pids %v", crashed.Phase, crashed.State, crashed.PIDs())
	}

	// Terminate: SIGTERM, then the instance is gone with its processes and its root.
	var pids []int
	for _, id := range all {
		s, _ := statusOf(c, id)
		pids = append(pids, s.PIDs()...)
	}
	if _, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: all}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "terminated", func() error {
		for _, id := range all {
			s, _ := statusOf(c, id)
			if s.Phase != phaseGone || s.State != "terminated" {
				return fmt.Errorf("%s: %s/%s", id, s.State, s.Phase)
			}
		}
		return nil
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still alive after termination", pid)
		}
	}
	for _, id := range all {
		if _, err := os.Stat(rootPath(c.cfg.WorkDir, "/instances/"+id+"/root")); err == nil {
			t.Errorf("%s: root volume left after termination", id)
		}
	}
	if rules := c.nat.Rules(); len(rules) != 0 {
		t.Errorf("NAT rules left: %v", rules)
	}
}

func privateOfHost(t *testing.T, c *Cloud, host string) string {
	for _, s := range c.Status() {
		if s.Hostname == host {
			return s.PrivateIP
		}
	}
	t.Fatalf("no instance with host name %s", host)
	return ""
}

// TestServiceRouting: the endpoint routes by the SigV4 service name, so a service added
// beside EC2 and STS (SSM, say) gets its requests and its AWS_ENDPOINT_URL_<NAME>.
func TestServiceRouting(t *testing.T) {
	ssm := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"target":%q}`, r.Header.Get("X-Amz-Target"))
	})
	c := newTestCloud(t, func(cfg *Config) {
		cfg.ReleaseBinaries = nil
		cfg.Services = map[string]http.Handler{"ssm": ssm}
	})
	post := func(service, target string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, c.URL()+"/", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=00")
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := post("ssm", "AmazonSSM.GetParameter"); code != http.StatusOK || body != `{"target":"AmazonSSM.GetParameter"}` {
		t.Fatalf("ssm: %d %s", code, body)
	}
	if code, body := post("sqs", "x"); code != http.StatusBadRequest || !strings.Contains(body, "UnknownService") || !strings.Contains(body, "ec2, ssm, sts") {
		t.Fatalf("unknown service: %d %s", code, body)
	}
	if !slices.Contains(c.Env(), "AWS_ENDPOINT_URL_SSM="+c.URL()) {
		t.Fatalf("Env lacks the SSM endpoint: %v", c.Env())
	}
	// EC2 through the same endpoint, as the SDK signs it.
	if _, err := ec2Client(c).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
}
