package ec2sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	ec2Version   = "2016-11-15"
	ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
	stsVersion   = "2011-06-15"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	maxCallLog   = 10000
)

// Server is an in-process EC2 (and minimal STS) Query-API endpoint. All methods are safe for
// concurrent use.
type Server struct {
	cfg Config

	httpSrv  *http.Server
	listener net.Listener

	mu         sync.Mutex
	idRand     *rand.Rand // resource IDs
	ipRand     *rand.Rand // private and public IP picking
	faultRand  *rand.Rand // ThrottleRate draws
	ids        map[string]bool
	requestSeq uint64

	vpcs       map[string]*vpc
	subnets    map[string]*subnet
	groups     map[string]*securityGroup
	itypes     map[string]*instanceType
	instances  map[string]*instance
	order      []*instance // creation order, for stable describe output and paging
	enis       map[string]*eni
	eips       map[string]*elasticIP // by allocation ID
	eipOrder   []*elasticIP
	tokens     map[string]*reservation // ClientToken -> reservation
	publicUsed map[netip.Addr]bool

	failNext map[string][]string // action -> queued error codes
	counts   map[string]int
	calls    []Call
	assumed  []AssumedRole
}

// Call records one request, for tests that check what a client sent.
type Call struct {
	Action      string
	AccessKeyID string // from the SigV4 Authorization header; empty if unsigned
	ErrorCode   string // empty on success
}

// NewServer builds the emulator with its default VPC, subnets, security groups and instance
// types (New), and starts serving on a free loopback port; Close stops it.
func NewServer(cfg Config) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ec2sim: listen on loopback: %w", err)
	}
	s.listener = ln
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(ln) }()
	return s, nil
}

// New builds the emulator without a listener: mount it (it is an http.Handler) where the
// caller serves HTTP. URL is empty for such a server. cfg must pass validation (see Config).
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.PublicPools = slices.Clone(cfg.PublicPools)
	s := &Server{
		cfg:        cfg,
		idRand:     rand.New(rand.NewSource(cfg.Seed)),
		ipRand:     rand.New(rand.NewSource(cfg.Seed + 1)),
		faultRand:  rand.New(rand.NewSource(cfg.Seed + 2)),
		ids:        map[string]bool{},
		vpcs:       map[string]*vpc{},
		subnets:    map[string]*subnet{},
		groups:     map[string]*securityGroup{},
		itypes:     map[string]*instanceType{},
		instances:  map[string]*instance{},
		enis:       map[string]*eni{},
		eips:       map[string]*elasticIP{},
		tokens:     map[string]*reservation{},
		publicUsed: map[netip.Addr]bool{},
		failNext:   map[string][]string{},
		counts:     map[string]int{},
	}
	base := cfg.DefaultVPCCIDR
	s.vpcs["vpc-00000001"] = &vpc{id: "vpc-00000001", cidr: base, isDefault: true, tags: map[string]string{}}
	s.ids["vpc-00000001"] = true
	s.addSubnetLocked("subnet-00000001", "vpc-00000001", netip.PrefixFrom(addrAdd(base.Addr(), 1<<8), 24), cfg.Region+"a", true)
	s.addSubnetLocked("subnet-00000002", "vpc-00000001", netip.PrefixFrom(addrAdd(base.Addr(), 2<<8), 24), cfg.Region+"b", true)
	s.groups["sg-00000001"] = &securityGroup{id: "sg-00000001", name: "default", description: "default VPC security group", vpcID: "vpc-00000001", tags: map[string]string{}}
	s.groups["sg-00000002"] = &securityGroup{id: "sg-00000002", name: "wsdirect", description: "wsdirect nodes", vpcID: "vpc-00000001", tags: map[string]string{}}
	s.ids["sg-00000001"], s.ids["sg-00000002"] = true, true
	for _, t := range builtinTypes {
		s.itypes[t.name] = &t
	}
	return s, nil
}

// builtinTypes carries the real per-type ENI and IPv4-per-ENI limits (EC2 documentation,
// "IP addresses per network interface per instance type").
var builtinTypes = []instanceType{
	{name: "t3.nano", maxENIs: 2, ipv4PerENI: 2, vcpus: 2, memoryMiB: 512, currentGen: true, ipv6PerENI: 2, netPerfString: "Up to 5 Gigabit"},
	{name: "t3.micro", maxENIs: 2, ipv4PerENI: 2, vcpus: 2, memoryMiB: 1024, currentGen: true, ipv6PerENI: 2, netPerfString: "Up to 5 Gigabit"},
	{name: "t3.small", maxENIs: 3, ipv4PerENI: 4, vcpus: 2, memoryMiB: 2048, currentGen: true, ipv6PerENI: 4, netPerfString: "Up to 5 Gigabit"},
	{name: "t3.medium", maxENIs: 3, ipv4PerENI: 6, vcpus: 2, memoryMiB: 4096, currentGen: true, ipv6PerENI: 6, netPerfString: "Up to 5 Gigabit"},
	{name: "t3.large", maxENIs: 3, ipv4PerENI: 12, vcpus: 2, memoryMiB: 8192, currentGen: true, ipv6PerENI: 12, netPerfString: "Up to 5 Gigabit"},
	{name: "t3.xlarge", maxENIs: 4, ipv4PerENI: 15, vcpus: 4, memoryMiB: 16384, currentGen: true, ipv6PerENI: 15, netPerfString: "Up to 5 Gigabit"},
	{name: "c5.large", maxENIs: 3, ipv4PerENI: 10, vcpus: 2, memoryMiB: 4096, currentGen: true, ipv6PerENI: 10, netPerfString: "Up to 10 Gigabit"},
	{name: "c5.xlarge", maxENIs: 4, ipv4PerENI: 15, vcpus: 4, memoryMiB: 8192, currentGen: true, ipv6PerENI: 15, netPerfString: "Up to 10 Gigabit"},
	{name: "c5.2xlarge", maxENIs: 4, ipv4PerENI: 15, vcpus: 8, memoryMiB: 16384, currentGen: true, ipv6PerENI: 15, netPerfString: "Up to 10 Gigabit"},
	{name: "c5.4xlarge", maxENIs: 8, ipv4PerENI: 30, vcpus: 16, memoryMiB: 32768, currentGen: true, ipv6PerENI: 30, netPerfString: "Up to 10 Gigabit"},
	{name: "m5.large", maxENIs: 3, ipv4PerENI: 10, vcpus: 2, memoryMiB: 8192, currentGen: true, ipv6PerENI: 10, netPerfString: "Up to 10 Gigabit"},
	{name: "m5.xlarge", maxENIs: 4, ipv4PerENI: 15, vcpus: 4, memoryMiB: 16384, currentGen: true, ipv6PerENI: 15, netPerfString: "Up to 10 Gigabit"},
	{name: "c6i.large", maxENIs: 3, ipv4PerENI: 10, vcpus: 2, memoryMiB: 4096, currentGen: true, ipv6PerENI: 10, netPerfString: "Up to 12.5 Gigabit"},
	{name: "c6i.xlarge", maxENIs: 4, ipv4PerENI: 15, vcpus: 4, memoryMiB: 8192, currentGen: true, ipv6PerENI: 15, netPerfString: "Up to 12.5 Gigabit"},
}

// URL is the base endpoint to give the SDK, e.g. "http://127.0.0.1:43121".
func (s *Server) URL() string {
	if s.listener == nil {
		return ""
	}
	return "http://" + s.listener.Addr().String()
}

// Close stops the HTTP server.
func (s *Server) Close() {
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
	}
}

// UpdateConfig changes the configuration of a running server, for example to start or stop
// throttling in the middle of a test. Region, AccountID, Seed, DefaultVPCCIDR, PublicPools and
// Lifecycle keep their original values (resources and generators already depend on them);
// PendingDescribes and NotFoundAfterCreate apply to instances launched afterwards,
// ShutdownDescribes to instances terminated or stopped afterwards. A change
// that fails validation is refused and nothing changes.
func (s *Server) UpdateConfig(fn func(*Config)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	c.PublicPools = slices.Clone(c.PublicPools)
	fn(&c)
	c.Region, c.AccountID, c.Seed = s.cfg.Region, s.cfg.AccountID, s.cfg.Seed
	c.DefaultVPCCIDR, c.PublicPools, c.Lifecycle = s.cfg.DefaultVPCCIDR, s.cfg.PublicPools, s.cfg.Lifecycle
	if err := c.validate(); err != nil {
		return err
	}
	s.cfg = c
	return nil
}

// FailNext makes the next count calls of action fail with the AWS error code (HTTP status
// as AWS sends it for that code). Queued failures add up.
func (s *Server) FailNext(action, code string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range count {
		s.failNext[action] = append(s.failNext[action], code)
	}
}

// CallCount returns how many requests named action arrived, failed ones included.
func (s *Server) CallCount(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[action]
}

// Calls returns the most recent requests (at most 10,000), oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Instances returns snapshots of every instance still visible, in creation order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTerminated()
	out := make([]Instance, 0, len(s.order))
	for _, in := range s.order {
		out = append(out, s.snapshotOf(in))
	}
	return out
}

// Instance returns a snapshot of one visible instance.
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireTerminated()
	in := s.instances[id]
	if in == nil {
		return Instance{}, false
	}
	return s.snapshotOf(in), true
}

// Addresses returns snapshots of every allocated Elastic IP, in allocation order.
func (s *Server) Addresses() []Address {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Address, 0, len(s.eipOrder))
	for _, ip := range s.eipOrder {
		out = append(out, ip.snapshot())
	}
	return out
}

// AddSubnet adds a subnet (and its VPC, if new, with a /16 around the subnet and a "default"
// security group). The CIDR must be an IPv4 /16 to /28 inside the VPC, and overlap no other
// subnet of that VPC.
func (s *Server) AddSubnet(id, vpcID, cidr, az string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 || p.Bits() < 16 {
		return fmt.Errorf("ec2sim: AddSubnet %s: CIDR %q must be an IPv4 /16../28", id, cidr)
	}
	if !strings.HasPrefix(id, subnetIDPrefix) || s.ids[id] {
		return fmt.Errorf("ec2sim: AddSubnet %s: the ID must start with %q and be new", id, subnetIDPrefix)
	}
	if !strings.HasPrefix(vpcID, "vpc-") {
		return fmt.Errorf("ec2sim: AddSubnet %s: VPC ID %q must start with \"vpc-\"", id, vpcID)
	}
	for _, other := range s.subnets {
		if other.vpcID == vpcID && other.cidr.Overlaps(p) {
			return fmt.Errorf("ec2sim: AddSubnet %s: %s overlaps %s (%s)", id, cidr, other.id, other.cidr)
		}
	}
	if v, ok := s.vpcs[vpcID]; ok && !v.cidr.Contains(p.Addr()) {
		return fmt.Errorf("ec2sim: AddSubnet %s: %s is outside %s %s", id, cidr, vpcID, v.cidr)
	}
	if _, ok := s.vpcs[vpcID]; !ok {
		vp, _ := p.Addr().Prefix(16)
		s.vpcs[vpcID] = &vpc{id: vpcID, cidr: vp, tags: map[string]string{}}
		s.ids[vpcID] = true
		// Every VPC has a "default" security group, used when a launch names none.
		sg := s.newID("sg-")
		s.groups[sg] = &securityGroup{id: sg, name: "default", description: "default VPC security group", vpcID: vpcID, tags: map[string]string{}}
	}
	s.addSubnetLocked(id, vpcID, p, az, false)
	return nil
}

func (s *Server) addSubnetLocked(id, vpcID string, p netip.Prefix, az string, isDefault bool) {
	p = p.Masked()
	s.subnets[id] = &subnet{id: id, vpcID: vpcID, az: az, cidr: p, used: map[netip.Addr]*eni{}, isDef: isDefault, tags: map[string]string{}}
	s.ids[id] = true
}

// AddSecurityGroup adds a security group in the given (existing) VPC. The ID must start with
// "sg-" and be new.
func (s *Server) AddSecurityGroup(id, name, vpcID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !groupIDRe.MatchString(id) || s.ids[id] {
		return fmt.Errorf("ec2sim: AddSecurityGroup %s: the ID must be sg- and 8 or 17 hex digits, and new", id)
	}
	if _, ok := s.vpcs[vpcID]; !ok {
		return fmt.Errorf("ec2sim: AddSecurityGroup %s: unknown VPC %s", id, vpcID)
	}
	s.groups[id] = &securityGroup{id: id, name: name, description: name, vpcID: vpcID, tags: map[string]string{}}
	s.ids[id] = true
	return nil
}

// AddInstanceType adds or replaces an instance type with the given network limits.
func (s *Server) AddInstanceType(name string, maxENIs, ipv4PerENI int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.itypes[name] = &instanceType{name: name, maxENIs: maxENIs, ipv4PerENI: ipv4PerENI, ipv6PerENI: ipv4PerENI, currentGen: true}
}

// ServeHTTP answers one Query-API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "ec2sim accepts POST (or GET) Query-API requests", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(encodeError(false, "ec2sim-unparsed", errorf(codeInvalidParameterValue, "cannot parse the form body: %v", err)))
		return
	}
	p := params{v: r.Form}
	action := p.str("Action")
	isSTS := p.str("Version") == stsVersion || (p.str("Version") == "" && stsActions[action])

	status, payload := s.handle(action, isSTS, p, accessKeyID(r.Header.Get("Authorization")))
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(payload)
}

// handle runs one request under the lock and returns the encoded answer, so that writing to a
// slow client never holds up other requests.
func (s *Server) handle(action string, isSTS bool, p params, keyID string) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reqID := s.nextRequestID()
	s.counts[action]++
	call := Call{Action: action, AccessKeyID: keyID}

	var body any
	err := s.injectedFault(action)
	if err == nil {
		if isSTS {
			body, err = s.handleSTS(action, p, keyID)
		} else {
			body, err = s.handleEC2(action, p)
		}
	}
	var payload []byte
	if err == nil {
		payload, err = encodeBody(isSTS, action, reqID, body)
	}
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = errorf(codeInternalError, "%v", err)
		}
		call.ErrorCode = ae.Code
		s.record(call)
		s.logf("ec2sim %s -> %s: %s", action, ae.Code, ae.Message)
		return statusFor(ae.Code), encodeError(isSTS, reqID, ae)
	}
	s.record(call)
	s.logf("ec2sim %s -> ok", action)
	if s.owned() && networkActions[action] {
		s.cfg.Lifecycle.NetworkChanged()
	}
	return http.StatusOK, payload
}

// networkActions may change which public address maps to which private one.
var networkActions = map[string]bool{
	"RunInstances": true, "StartInstances": true, "StopInstances": true, "TerminateInstances": true,
	"AssociateAddress": true, "DisassociateAddress": true,
	"AssignPrivateIpAddresses": true, "UnassignPrivateIpAddresses": true,
}

func (s *Server) record(c Call) {
	if len(s.calls) >= maxCallLog {
		s.calls = slices.Delete(s.calls, 0, len(s.calls)-maxCallLog+1)
	}
	s.calls = append(s.calls, c)
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// injectedFault applies FailNext queues first, then the random throttle.
func (s *Server) injectedFault(action string) error {
	if q := s.failNext[action]; len(q) > 0 {
		code := q[0]
		s.failNext[action] = q[1:]
		return errorf(code, "Injected fault: %s failed with %s.", action, code)
	}
	if s.cfg.ThrottleRate > 0 && s.faultRand.Float64() < s.cfg.ThrottleRate {
		return errorf(codeRequestLimitExceeded, "Request limit exceeded.")
	}
	return nil
}

// accessKeyID extracts the key ID from "AWS4-HMAC-SHA256 Credential=AKID/date/region/svc/aws4_request, ...".
func accessKeyID(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// nextRequestID is deterministic (a counter), so request IDs do not disturb the seeded streams.
func (s *Server) nextRequestID() string {
	s.requestSeq++
	return fmt.Sprintf("%08x-ec25-4000-8000-%012x", uint32(s.cfg.Seed), s.requestSeq)
}

// ec2Error and stsError are the two error envelopes (ec2query and awsquery protocols).
type ec2Error struct {
	XMLName   xml.Name       `xml:"Response"`
	Errors    []ec2ErrorItem `xml:"Errors>Error"`
	RequestID string         `xml:"RequestID"`
}

type ec2ErrorItem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type stsError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func encodeError(isSTS bool, reqID string, e *apiError) []byte {
	var v any = ec2Error{Errors: []ec2ErrorItem{{Code: e.Code, Message: e.Message}}, RequestID: reqID}
	if isSTS {
		typ := "Sender"
		if statusFor(e.Code) >= 500 {
			typ = "Receiver"
		}
		v = stsError{Xmlns: stsNamespace, Type: typ, Code: e.Code, Message: e.Message, RequestID: reqID}
	}
	out, err := xml.Marshal(v)
	if err != nil {
		// Only strings go in, so this cannot fail; keep a valid envelope regardless.
		return []byte(`<Response><Errors><Error><Code>InternalError</Code></Error></Errors></Response>`)
	}
	return append([]byte(xml.Header), out...)
}

// encodeBody wraps an action's result in <ActionResponse xmlns=...> for EC2, or in
// <ActionResponse><ActionResult>...</ActionResult><ResponseMetadata> for STS.
func encodeBody(isSTS bool, action, reqID string, body any) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	buf.WriteString(xml.Header)
	if isSTS {
		buf.WriteString(`<` + action + `Response xmlns="` + stsNamespace + `">`)
		if err := enc.EncodeElement(body, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
			return nil, fmt.Errorf("encode %s: %w", action, err)
		}
		if err := enc.Flush(); err != nil {
			return nil, err
		}
		buf.WriteString(`<ResponseMetadata><RequestId>` + reqID + `</RequestId></ResponseMetadata></` + action + `Response>`)
		return buf.Bytes(), nil
	}
	if rb, ok := body.(interface{ setRequestID(string) }); ok {
		rb.setRequestID(reqID)
	}
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ec2Namespace}}}
	if err := enc.EncodeElement(body, start); err != nil {
		return nil, fmt.Errorf("encode %s: %w", action, err)
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// handleEC2 dispatches an EC2 action. Handlers run with s.mu held.
func (s *Server) handleEC2(action string, p params) (any, error) {
	if v := p.str("Version"); v != "" && v != ec2Version {
		return nil, errorf("InvalidParameterValue", "Version %q is not supported; ec2sim speaks %s.", v, ec2Version)
	}
	h, ok := ec2Handlers[action]
	if !ok {
		if action == "" {
			return nil, errorf(codeMissingParameter, "The request must contain the parameter Action")
		}
		return nil, errorf(codeInvalidAction, "The action %s is not valid for this web service.", action)
	}
	return h(s, p)
}

var ec2Handlers map[string]func(*Server, params) (any, error)

func init() {
	ec2Handlers = map[string]func(*Server, params) (any, error){
		"RunInstances":                    (*Server).runInstances,
		"DescribeInstances":               (*Server).describeInstances,
		"TerminateInstances":              (*Server).terminateInstances,
		"StopInstances":                   (*Server).stopInstances,
		"StartInstances":                  (*Server).startInstances,
		"DescribeInstanceTypes":           (*Server).describeInstanceTypes,
		"DescribeInstanceAttribute":       (*Server).describeInstanceAttribute,
		"ModifyInstanceAttribute":         (*Server).modifyInstanceAttribute,
		"ModifyInstanceMetadataOptions":   (*Server).modifyInstanceMetadataOptions,
		"DescribeVpcs":                    (*Server).describeVpcs,
		"DescribeSubnets":                 (*Server).describeSubnets,
		"DescribeSecurityGroups":          (*Server).describeSecurityGroups,
		"DescribeNetworkInterfaces":       (*Server).describeNetworkInterfaces,
		"ModifyNetworkInterfaceAttribute": (*Server).modifyNetworkInterfaceAttribute,
		"AssignPrivateIpAddresses":        (*Server).assignPrivateIPs,
		"UnassignPrivateIpAddresses":      (*Server).unassignPrivateIPs,
		"AllocateAddress":                 (*Server).allocateAddress,
		"AssociateAddress":                (*Server).associateAddress,
		"DisassociateAddress":             (*Server).disassociateAddress,
		"ReleaseAddress":                  (*Server).releaseAddress,
		"DescribeAddresses":               (*Server).describeAddresses,
		"CreateTags":                      (*Server).createTags,
		"DeleteTags":                      (*Server).deleteTags,
		"DescribeTags":                    (*Server).describeTags,
	}
}
