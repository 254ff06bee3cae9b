package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Instance state codes and names, as EC2 reports them.
const (
	statePending      = "pending"
	stateRunning      = "running"
	stateShuttingDown = "shutting-down"
	stateTerminated   = "terminated"
	stateStopping     = "stopping"
	stateStopped      = "stopped"
)

var stateCodes = map[string]int{
	statePending:      0,
	stateRunning:      16,
	stateShuttingDown: 32,
	stateTerminated:   48,
	stateStopping:     64,
	stateStopped:      80,
}

// Instance is a snapshot of one emulated instance, for test assertions.
type Instance struct {
	ID                 string
	ReservationID      string
	ImageID            string
	InstanceType       string
	State              string // pending, running, shutting-down, terminated, stopping or stopped
	SubnetID           string
	VpcID              string
	AvailabilityZone   string
	KeyName            string
	IamInstanceProfile string // the profile name or ARN given at launch
	UserData           string // base64, as sent
	ClientToken        string
	SecurityGroupIDs   []string // of the primary network interface
	Tags               map[string]string
	LaunchTime         time.Time
	NetworkInterfaces  []NetworkInterface // ordered by device index; empty once terminated
	PrivateIP          string             // primary private IPv4 of the primary interface
	PrivateDNSName     string             // e.g. ip-10-0-1-23.ec2.internal
	PublicIP           string             // public (auto or Elastic) IPv4 of PrivateIP, if any
	PublicDNSName      string
	MetadataOptions    MetadataOptions
}

// NetworkInterface is a snapshot of one emulated ENI.
type NetworkInterface struct {
	ID               string
	SubnetID         string
	DeviceIndex      int
	PrivateIPs       []string // the primary first, then secondaries in assignment order
	PublicIP         string   // auto-assigned (non-Elastic) public IP of the primary address, if any
	PublicIPs        []string // the public IP (auto or Elastic) of each PrivateIPs entry, "" if none
	MAC              string
	SubnetCIDR       string
	SecurityGroupIDs []string
	Tags             map[string]string
}

// Address is a snapshot of one Elastic IP.
type Address struct {
	AllocationID       string
	PublicIP           string
	AssociationID      string // empty when not associated
	InstanceID         string
	NetworkInterfaceID string
	PrivateIP          string
	Tags               map[string]string
}

type vpc struct {
	id        string
	cidr      netip.Prefix
	isDefault bool
	tags      map[string]string
}

type subnet struct {
	id      string
	vpcID   string
	az      string
	cidr    netip.Prefix
	used    map[netip.Addr]*eni
	isDef   bool
	mapPubl bool
	tags    map[string]string
}

type securityGroup struct {
	id, name, description, vpcID string
	tags                         map[string]string
}

type instanceType struct {
	name          string
	maxENIs       int
	ipv4PerENI    int
	vcpus         int
	memoryMiB     int
	currentGen    bool
	ipv6PerENI    int
	netPerfString string
}

type eni struct {
	id           string
	subnet       *subnet
	inst         *instance // nil once detached (never, today: ENIs live and die with their instance)
	attachmentID string
	deviceIndex  int
	deleteOnTerm bool
	ips          []netip.Addr // ips[0] is the primary
	groups       []string
	tags         map[string]string
	mac          string
	description  string
	srcDstCheck  bool
	// wantPublic records AssociatePublicIpAddress (or the subnet default) at launch; EC2 gives
	// such an interface a fresh public IP again when an Elastic IP is disassociated from it.
	wantPublic bool
	publicIP   netip.Addr // auto-assigned public IP of the primary address; invalid if none
}

type instance struct {
	id, reservationID     string
	imageID, itype        string
	state                 string
	pendingLeft           int // describes still to see it pending
	shutdownLeft          int // describes still to see it shutting-down or stopping
	notFoundLeft          int // eventual-consistency NotFound answers still to give
	subnet                *subnet
	keyName, iamProf      string
	iamProfID             string
	userData              string
	clientToken           string
	tags                  map[string]string
	launch                time.Time
	terminatedAt          time.Time
	enis                  []*eni
	launchIndex           int
	volumeID              string
	volumeTags            map[string]string
	disableAPITermination bool
	metadata              metadataOptions
}

type elasticIP struct {
	allocID, assocID string
	publicIP         netip.Addr
	eni              *eni
	privateIP        netip.Addr
	tags             map[string]string
}

type reservation struct {
	id          string
	fingerprint string
	instances   []*instance
}

var (
	instanceIDRe   = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
	eniIDRe        = regexp.MustCompile(`^eni-[0-9a-f]{8}([0-9a-f]{9})?$`)
	allocIDRe      = regexp.MustCompile(`^eipalloc-[0-9a-f]{8}([0-9a-f]{9})?$`)
	groupIDRe      = regexp.MustCompile(`^sg-[0-9a-f]{8}([0-9a-f]{9})?$`)
	subnetIDPrefix = "subnet-"
)

// newID returns prefix + 17 hex digits from the seeded generator, unique across the server.
func (s *Server) newID(prefix string) string {
	for {
		id := fmt.Sprintf("%s%x%016x", prefix, s.idRand.Intn(16), s.idRand.Uint64())
		if !s.ids[id] {
			s.ids[id] = true
			return id
		}
	}
}

// allocatePrivateIP picks a free address in the subnet, skipping the network address, the
// three addresses after it (VPC router, DNS, reserved) and the broadcast address, like AWS.
// Picking starts at a seeded pseudo-random usable address and probes upwards (wrapping), so
// addresses look scattered as in EC2 while a /16 costs no more than a /28.
func (s *Server) allocatePrivateIP(sn *subnet, owner *eni) (netip.Addr, error) {
	first, last := usableRange(sn.cidr)
	n := addrDiff(first, last) + 1
	if s.freeCount(sn) == 0 {
		return netip.Addr{}, errorf(codeInsufficientAddresses, "Insufficient free IP addresses in subnet %s", sn.id)
	}
	start := uint32(s.ipRand.Int63n(int64(n)))
	for i := uint32(0); i < n; i++ {
		a := addrAdd(first, (start+i)%n)
		if sn.used[a] == nil {
			sn.used[a] = owner
			return a, nil
		}
	}
	return netip.Addr{}, errorf(codeInsufficientAddresses, "Insufficient free IP addresses in subnet %s", sn.id)
}

// freeCount is the number of usable addresses not held by any interface.
func (s *Server) freeCount(sn *subnet) int {
	first, last := usableRange(sn.cidr)
	return int(addrDiff(first, last)+1) - len(sn.used)
}

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrDiff(a, b netip.Addr) uint32 { return addrUint(b) - addrUint(a) }

func addrAdd(a netip.Addr, n uint32) netip.Addr {
	v := addrUint(a) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// usableRange is the first and last address AWS lets instances use in a subnet.
func usableRange(p netip.Prefix) (netip.Addr, netip.Addr) {
	base := p.Masked().Addr()
	size := uint32(1) << (32 - p.Bits())
	return addrAdd(base, 4), addrAdd(base, size-2)
}

// reservePrivateIP claims an explicit address, checking that it is usable and free.
func (s *Server) reservePrivateIP(sn *subnet, raw string, owner *eni) (netip.Addr, error) {
	a, err := netip.ParseAddr(raw)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errorf(codeInvalidParameterValue, "Invalid value '%s' for IP address. The IPv4 address is malformed.", raw)
	}
	first, last := usableRange(sn.cidr)
	if !sn.cidr.Contains(a) {
		return netip.Addr{}, errorf(codeInvalidParameterValue, "Address %s does not fall within the subnet's address range", raw)
	}
	if a.Compare(first) < 0 || a.Compare(last) > 0 {
		return netip.Addr{}, errorf(codeInvalidParameterValue, "Address %s is reserved by AWS in subnet %s", raw, sn.id)
	}
	if sn.used[a] != nil {
		return netip.Addr{}, errorf(codeIPInUse, "Address %s is in use.", raw)
	}
	sn.used[a] = owner
	return a, nil
}

// allocatePublicIP takes a free address from Config.PublicPools, shared by auto-assigned
// public IPs and Elastic IPs. Like private IPs, picking starts at a seeded pseudo-random usable
// address and probes upwards (wrapping over every pool), so a /16 pool costs no more than a /24.
func (s *Server) allocatePublicIP() (netip.Addr, error) {
	var total uint32
	for _, p := range s.cfg.PublicPools {
		total += poolSize(p)
	}
	start := uint32(s.ipRand.Int63n(int64(total)))
	for i := uint32(0); i < total; i++ {
		a := poolAddr(s.cfg.PublicPools, (start+i)%total)
		if !s.publicUsed[a] {
			s.publicUsed[a] = true
			return a, nil
		}
	}
	return netip.Addr{}, errorf(codeAddressLimitExceeded, "The public IPv4 address pool of the emulator is exhausted.")
}

// poolSize is the number of usable addresses of a pool: all but its network and broadcast
// addresses.
func poolSize(p netip.Prefix) uint32 { return uint32(1)<<(32-p.Bits()) - 2 }

// poolAddr returns the i-th usable address over the pools, in order.
func poolAddr(pools []netip.Prefix, i uint32) netip.Addr {
	for _, p := range pools {
		if n := poolSize(p); i >= n {
			i -= n
			continue
		}
		return addrAdd(p.Masked().Addr(), i+1)
	}
	return netip.Addr{}
}

func (s *Server) publicDNS(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	name := "ec2-" + strings.ReplaceAll(a.String(), ".", "-")
	if s.cfg.Region == "us-east-1" {
		return name + ".compute-1.amazonaws.com"
	}
	return name + "." + s.cfg.Region + ".compute.amazonaws.com"
}

func (s *Server) privateDNS(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	name := "ip-" + strings.ReplaceAll(a.String(), ".", "-")
	if s.cfg.Region == "us-east-1" {
		return name + ".ec2.internal"
	}
	return name + "." + s.cfg.Region + ".compute.internal"
}

// eipFor returns the Elastic IP associated with the given private address of e, if any.
func (s *Server) eipFor(e *eni, a netip.Addr) *elasticIP {
	for _, ip := range s.eips {
		if ip.eni == e && ip.privateIP == a {
			return ip
		}
	}
	return nil
}

// publicFor returns the public address mapped to the private address a of e: an Elastic IP,
// else the auto-assigned public IP for the primary address.
func (s *Server) publicFor(e *eni, a netip.Addr) (netip.Addr, *elasticIP) {
	if ip := s.eipFor(e, a); ip != nil {
		return ip.publicIP, ip
	}
	if len(e.ips) > 0 && a == e.ips[0] && e.publicIP.IsValid() {
		return e.publicIP, nil
	}
	return netip.Addr{}, nil
}

// releaseENI frees the ENI's private and auto public IPs and disassociates its Elastic IPs.
func (s *Server) releaseENI(e *eni) {
	for _, a := range e.ips {
		delete(e.subnet.used, a)
	}
	for _, ip := range s.eips {
		if ip.eni == e {
			ip.eni, ip.assocID, ip.privateIP = nil, "", netip.Addr{}
		}
	}
	if e.publicIP.IsValid() {
		delete(s.publicUsed, e.publicIP)
		e.publicIP = netip.Addr{}
	}
	delete(s.enis, e.id)
}

func (in *instance) primaryENI() *eni {
	for _, e := range in.enis {
		if e.deviceIndex == 0 {
			return e
		}
	}
	return nil
}

// snapshotOf copies an instance for callers outside the lock.
func (s *Server) snapshotOf(in *instance) Instance {
	out := Instance{
		ID: in.id, ReservationID: in.reservationID, ImageID: in.imageID, InstanceType: in.itype,
		State: in.state, SubnetID: in.subnet.id, VpcID: in.subnet.vpcID, AvailabilityZone: in.subnet.az,
		KeyName: in.keyName, IamInstanceProfile: in.iamProf, UserData: in.userData,
		ClientToken: in.clientToken, Tags: maps.Clone(in.tags), LaunchTime: in.launch,
		MetadataOptions: in.metadata.snapshot(),
	}
	if p := in.primaryENI(); p != nil {
		out.SecurityGroupIDs = slices.Clone(p.groups)
		if len(p.ips) > 0 {
			out.PrivateIP, out.PrivateDNSName = p.ips[0].String(), s.privateDNS(p.ips[0])
			if pub, _ := s.publicFor(p, p.ips[0]); pub.IsValid() {
				out.PublicIP, out.PublicDNSName = pub.String(), s.publicDNS(pub)
			}
		}
	}
	for _, e := range in.enis {
		out.NetworkInterfaces = append(out.NetworkInterfaces, s.eniSnapshot(e))
	}
	return out
}

func (s *Server) eniSnapshot(e *eni) NetworkInterface {
	n := NetworkInterface{
		ID: e.id, SubnetID: e.subnet.id, DeviceIndex: e.deviceIndex, MAC: e.mac, SubnetCIDR: e.subnet.cidr.String(),
		SecurityGroupIDs: slices.Clone(e.groups), Tags: maps.Clone(e.tags),
	}
	for _, a := range e.ips {
		n.PrivateIPs = append(n.PrivateIPs, a.String())
		pub, _ := s.publicFor(e, a)
		if pub.IsValid() {
			n.PublicIPs = append(n.PublicIPs, pub.String())
		} else {
			n.PublicIPs = append(n.PublicIPs, "")
		}
	}
	if e.publicIP.IsValid() {
		n.PublicIP = e.publicIP.String()
	}
	return n
}

func (ip *elasticIP) snapshot() Address {
	a := Address{AllocationID: ip.allocID, PublicIP: ip.publicIP.String(), AssociationID: ip.assocID, Tags: maps.Clone(ip.tags)}
	if ip.eni != nil {
		a.NetworkInterfaceID = ip.eni.id
		a.PrivateIP = ip.privateIP.String()
		if ip.eni.inst != nil {
			a.InstanceID = ip.eni.inst.id
		}
	}
	return a
}
