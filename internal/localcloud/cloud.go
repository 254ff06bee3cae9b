package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
)

// Credentials the local cloud prints for its users (Terraform, the AWS CLI). The emulator
// checks no signature; it only records the access key ID of each call.
const (
	AccessKeyID     = "AKIALOCALCLOUD000001"
	SecretAccessKey = "localcloud-secret"
)

// Placeholder IDs the examples under examples/ use; the local cloud has resources with these
// IDs so the examples apply as written.
const (
	ExampleSubnetA       = "subnet-0123456789abcdef0"
	ExampleSubnetB       = "subnet-0fedcba9876543210"
	ExampleSecurityGroup = "sg-0123456789abcdef0"
)

const markerFile = ".wsdirect-localcloud"

// Cloud is a running local cloud. Its methods are safe for concurrent use.
type Cloud struct {
	cfg     Config
	log     *slog.Logger
	sim     *ec2sim.Server
	account string

	// The Parameter Store (ssm.go): nil when Config.Services replaces it.
	ssm          *ssmsim.Server
	policyMu     sync.Mutex
	rolePolicies map[string]*ssmsim.Policy // by instance profile name

	ln  net.Listener
	srv *http.Server
	nat *nat

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	release      []ReleaseFile
	services     map[string]http.Handler // by SigV4 signing name
	releaseFiles http.Handler

	evMu   sync.Mutex
	events []event
	evKick chan struct{}

	mu        sync.Mutex
	instances map[string]*instance
	closed    bool
}

type event struct {
	kind string // booting, shutting-down, network
	id   string
}

// New starts a local cloud: the emulator behind the HTTP endpoint, the release server and
// the 1:1 NAT. Instances boot as they reach "running". Close stops everything.
func New(cfg Config) (*Cloud, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := prepareWorkDir(cfg.WorkDir); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	inheritFileLimit()

	c := &Cloud{cfg: cfg, log: log, instances: map[string]*instance{}, evKick: make(chan struct{}, 1), account: "123456789012"}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	sc := ec2sim.DefaultConfig()
	sc.Region, sc.Seed, sc.AccountID = cfg.Region, cfg.Seed, c.account
	sc.DefaultVPCCIDR = cfg.VPCCIDR
	sc.PublicPools = []netip.Prefix{cfg.PublicCIDR}
	sc.ElasticIPLimit = cfg.ElasticIPLimit
	sc.Lifecycle = hooks{c}
	sim, err := ec2sim.New(sc)
	if err != nil {
		return nil, err
	}
	base := cfg.VPCCIDR.Addr().As4()
	for i, sn := range []struct{ id, az string }{{ExampleSubnetA, "a"}, {ExampleSubnetB, "b"}} {
		cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], base[2] + byte(3+i), 0}), 24)
		if err := sim.AddSubnet(sn.id, "vpc-00000001", cidr.String(), cfg.Region+sn.az); err != nil {
			return nil, err
		}
	}
	if err := sim.AddSecurityGroup(ExampleSecurityGroup, "example", "vpc-00000001"); err != nil {
		return nil, err
	}
	c.sim = sim
	c.services = map[string]http.Handler{"ec2": sim, "sts": sim}
	if err := c.startSSM(); err != nil {
		return nil, err
	}
	for name, h := range cfg.Services {
		c.services[name] = h
		if name == "ssm" {
			c.ssm = nil
		}
	}

	if len(cfg.ReleaseBinaries) > 0 {
		dir := filepath.Join(cfg.WorkDir, "release", "v"+cfg.ReleaseVersion)
		files, err := BuildRelease(dir, cfg.ReleaseVersion, cfg.ReleaseArch, cfg.ReleaseBinaries)
		if err != nil {
			return nil, err
		}
		c.release = files
		c.releaseFiles = http.StripPrefix("/releases/", http.FileServer(http.Dir(filepath.Join(cfg.WorkDir, "release"))))
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("localcloud: listen %s: %w", cfg.Listen, err)
	}
	c.ln = ln
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	c.nat = newNAT(log, cfg.ScanInterval)
	c.wg.Add(3)
	go func() { defer c.wg.Done(); _ = c.srv.Serve(ln) }()
	go func() { defer c.wg.Done(); c.nat.run(c.ctx) }()
	go func() { defer c.wg.Done(); c.dispatch() }()

	info, _ := json.MarshalIndent(c.Info(), "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.WorkDir, "localcloud.json"), append(info, '\n'), 0o600); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	log.Info("local cloud up", "url", c.URL(), "work_dir", cfg.WorkDir, "vpc", cfg.VPCCIDR, "public", cfg.PublicCIDR)
	return c, nil
}

// prepareWorkDir creates the work directory, or checks that an existing one is empty or was
// a local cloud's, and clears what an earlier run left.
func prepareWorkDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	case err != nil:
		return err
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("localcloud: work directory %s is not empty and not a local cloud's (no %s); refusing to use it", dir, markerFile)
		}
		for _, sub := range []string{"instances", "release", "localcloud.json"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				return err
			}
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("work directory of wsdirect-localcloud\n"), 0o600)
}

// inheritFileLimit makes child processes inherit the raised RLIMIT_NOFILE soft limit (Go raises
// its own at start-up and, unless the program sets the limit itself, gives children the
// original one back); units then lower theirs with LimitNOFILE as systemd would.
func inheritFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// URL is the base URL of the AWS endpoint, e.g. http://127.0.0.1:4599.
func (c *Cloud) URL() string { return "http://" + c.ln.Addr().String() }

// Sim is the emulator behind the endpoint, for tests that inspect or fault it.
func (c *Cloud) Sim() *ec2sim.Server { return c.sim }

// ReleaseURL is the base URL of the published release (modules/cluster's release_url), or ""
// when none is served.
func (c *Cloud) ReleaseURL() string {
	if len(c.release) == 0 {
		return ""
	}
	return c.URL() + "/releases/v" + c.cfg.ReleaseVersion
}

func (c *Cloud) serviceNames() []string {
	names := make([]string, 0, len(c.services))
	for n := range c.services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Env is the environment a Terraform run (or any AWS SDK or CLI) needs to use the local cloud:
// one AWS_ENDPOINT_URL_<SERVICE> per service, the region and static credentials.
func (c *Cloud) Env() []string {
	env := []string{
		"AWS_REGION=" + c.cfg.Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		// Keep the caller's instance role out of it: there is no real IMDS here.
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for _, n := range c.serviceNames() {
		env = append(env, "AWS_ENDPOINT_URL_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_"))+"="+c.URL())
	}
	return env
}

// Subnet describes one subnet of the local cloud's VPC.
type Subnet struct {
	ID               string `json:"id"`
	CIDR             string `json:"cidr"`
	AvailabilityZone string `json:"availability_zone"`
}

// Info is what a user of the local cloud needs to point Terraform at it (also written to
// <work dir>/localcloud.json).
type Info struct {
	URL            string            `json:"url"`
	Region         string            `json:"region"`
	Env            []string          `json:"env"`
	VPC            string            `json:"vpc"`
	Subnets        []Subnet          `json:"subnets"`
	SecurityGroups []string          `json:"security_groups"`
	ReleaseURL     string            `json:"release_url,omitempty"`
	ReleaseVersion string            `json:"release_version,omitempty"`
	ReleaseSHA256  map[string]string `json:"release_sha256,omitempty"` // by binary name
	WorkDir        string            `json:"work_dir"`
	PID            int               `json:"pid"`
}

// Info describes the running local cloud.
func (c *Cloud) Info() Info {
	base := c.cfg.VPCCIDR.Addr().As4()
	sub := func(id string, off byte, az string) Subnet {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], base[2] + off, 0}), 24)
		return Subnet{ID: id, CIDR: p.String(), AvailabilityZone: c.cfg.Region + az}
	}
	info := Info{
		URL: c.URL(), Region: c.cfg.Region, Env: c.Env(), VPC: "vpc-00000001",
		Subnets: []Subnet{
			sub("subnet-00000001", 1, "a"), sub("subnet-00000002", 2, "b"),
			sub(ExampleSubnetA, 3, "a"), sub(ExampleSubnetB, 4, "b"),
		},
		SecurityGroups: []string{"sg-00000001", "sg-00000002", ExampleSecurityGroup},
		ReleaseURL:     c.ReleaseURL(),
		WorkDir:        c.cfg.WorkDir,
		PID:            os.Getpid(),
	}
	if len(c.release) > 0 {
		info.ReleaseVersion = c.cfg.ReleaseVersion
		info.ReleaseSHA256 = map[string]string{}
		for bin := range c.cfg.ReleaseBinaries {
			name := ArchiveName(bin, c.cfg.ReleaseVersion, c.cfg.ReleaseArch)
			for _, f := range c.release {
				if f.Name == name {
					info.ReleaseSHA256[bin] = f.SHA256
				}
			}
		}
	}
	return info
}

// ServeHTTP routes the local cloud's endpoint: the control API, the release, and the AWS APIs
// by the service name in the request's SigV4 credential scope (unsigned requests go to EC2).
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/localcloud/"):
		c.control(w, r)
	case strings.HasPrefix(r.URL.Path, "/releases/"):
		if c.releaseFiles == nil {
			http.NotFound(w, r)
			return
		}
		c.releaseFiles.ServeHTTP(w, r)
	default:
		svc := signingService(r.Header.Get("Authorization"))
		if svc == "" {
			svc = "ec2"
		}
		h, ok := c.services[svc]
		if !ok {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnknownService</Code><Message>the local cloud serves %s, not %s</Message></Error></Errors></Response>`,
				strings.Join(c.serviceNames(), ", "), svc)
			return
		}
		h.ServeHTTP(w, r)
	}
}

// signingService reads the service from "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...".
func signingService(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(scope, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// hooks is the emulator's Lifecycle: it queues events for dispatch (it runs under the
// emulator's lock and must not block or call back).
type hooks struct{ c *Cloud }

func (h hooks) Booting(in ec2sim.Instance)      { h.c.post(event{"booting", in.ID}) }
func (h hooks) ShuttingDown(in ec2sim.Instance) { h.c.post(event{"shutting-down", in.ID}) }
func (h hooks) NetworkChanged()                 { h.c.post(event{kind: "network"}) }

func (c *Cloud) post(e event) {
	c.evMu.Lock()
	c.events = append(c.events, e)
	c.evMu.Unlock()
	select {
	case c.evKick <- struct{}{}:
	default:
	}
}

// dispatch hands events to their instances in order.
func (c *Cloud) dispatch() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.evKick:
		}
		c.evMu.Lock()
		evs := c.events
		c.events = nil
		c.evMu.Unlock()
		network := false
		for _, e := range evs {
			switch e.kind {
			case "network":
				network = true
			case "booting":
				in, err := c.instanceFor(e.id)
				if err != nil {
					c.log.Error("local cloud: instance", "id", e.id, "err", err)
					continue
				}
				in.booting()
			case "shutting-down":
				if in, err := c.instanceFor(e.id); err == nil {
					in.shuttingDown()
				}
			}
		}
		if network {
			c.syncNAT()
		}
	}
}

func (c *Cloud) instanceFor(id string) (*instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in, ok := c.instances[id]; ok {
		return in, nil
	}
	if c.closed {
		return nil, errors.New("local cloud closed")
	}
	in, err := c.newInstance(id)
	if err != nil {
		return nil, err
	}
	c.instances[id] = in
	return in, nil
}

// syncNAT maps every public address of an instance that holds its addresses to the private
// address behind it.
func (c *Cloud) syncNAT() {
	rules := map[netip.Addr]netip.Addr{}
	for _, in := range c.sim.Instances() {
		if in.State == "terminated" {
			continue
		}
		for _, ni := range in.NetworkInterfaces {
			for i, priv := range ni.PrivateIPs {
				if i >= len(ni.PublicIPs) || ni.PublicIPs[i] == "" {
					continue
				}
				pub, err1 := netip.ParseAddr(ni.PublicIPs[i])
				pr, err2 := netip.ParseAddr(priv)
				if err1 != nil || err2 != nil {
					c.log.Error("local cloud: the emulator reported an address that does not parse", "public", ni.PublicIPs[i], "private", priv)
					continue
				}
				rules[pub] = pr
			}
		}
	}
	c.nat.setRules(rules)
}

// Status reports every instance the local cloud has booted, in launch order of their IDs'
// first appearance.
func (c *Cloud) Status() []InstanceStatus {
	c.mu.Lock()
	ins := make([]*instance, 0, len(c.instances))
	for _, in := range c.instances {
		ins = append(ins, in)
	}
	c.mu.Unlock()
	order := map[string]int{}
	for i, s := range c.sim.Instances() {
		order[s.ID] = i
	}
	sort.Slice(ins, func(a, b int) bool {
		oa, okA := order[ins[a].id]
		ob, okB := order[ins[b].id]
		if okA != okB {
			return okA
		}
		if oa != ob {
			return oa < ob
		}
		return ins[a].id < ins[b].id
	})
	out := make([]InstanceStatus, 0, len(ins))
	for _, in := range ins {
		out = append(out, in.status())
	}
	return out
}

// Kill is the fault injection: with unit empty, every process of the instance is SIGKILLed
// and nothing restarts (the instance crashed; EC2 still says running). With a unit, only that
// service's processes are SIGKILLed and its Restart= setting decides what follows.
func (c *Cloud) Kill(id, unit string) error {
	c.mu.Lock()
	in, ok := c.instances[id]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("no instance %s", id)
	}
	if unit == "" {
		in.crash()
		return nil
	}
	if !strings.HasSuffix(unit, ".service") {
		unit += ".service"
	}
	in.mu.Lock()
	s, ok := in.services[unit]
	in.mu.Unlock()
	if !ok || !s.kill() {
		return fmt.Errorf("instance %s runs no %s", id, unit)
	}
	return nil
}

// PublicEndpoint reports whether public (an instance's public address and a port) forwards
// to a listener now, and to which private address.
func (c *Cloud) PublicEndpoint(public netip.AddrPort) (netip.AddrPort, bool) {
	return c.nat.forwarding(public)
}

// Close stops every instance's processes (SIGTERM, then SIGKILL after the grace period or
// when ctx ends) and shuts the local cloud down. The emulator's state goes with it.
func (c *Cloud) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ins := make([]*instance, 0, len(c.instances))
	for _, in := range c.instances {
		ins = append(ins, in)
	}
	c.mu.Unlock()
	// First nothing new may start: boots are cut short, units refuse to start or restart once
	// the context is done, and every instance's current boot or shutdown step ends.
	for _, in := range ins {
		in.mu.Lock()
		if in.bootCancel != nil {
			in.bootCancel()
		}
		in.mu.Unlock()
	}
	c.cancel()
	for _, in := range ins {
		<-in.done
	}
	// Then every unit stops within its grace period, all at once.
	grace := c.cfg.MaxStopTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < grace {
		grace = max(time.Until(d), 0)
	}
	var svcs []*service
	for _, in := range ins {
		in.mu.Lock()
		for _, s := range in.services {
			svcs = append(svcs, s)
		}
		in.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Add(1)
		go func() { defer wg.Done(); s.stop(grace) }()
	}
	wg.Wait()
	for _, in := range ins {
		in.imds.close()
		in.con.close()
	}
	err := c.srv.Close()
	c.wg.Wait()
	// Nothing answers at the URL any more: tools reading localcloud.json should say so.
	if rerr := os.Remove(filepath.Join(c.cfg.WorkDir, "localcloud.json")); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

func randRead(b []byte) (int, error) { return rand.Read(b) }
