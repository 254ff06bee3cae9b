package ec2sim

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
)

func (s *Server) sortedSubnets() []*subnet {
	out := make([]*subnet, 0, len(s.subnets))
	for _, k := range slices.Sorted(maps.Keys(s.subnets)) {
		out = append(out, s.subnets[k])
	}
	return out
}

func (s *Server) sortedGroups() []*securityGroup {
	out := make([]*securityGroup, 0, len(s.groups))
	for _, k := range slices.Sorted(maps.Keys(s.groups)) {
		out = append(out, s.groups[k])
	}
	return out
}

func (s *Server) sortedENIs() []*eni {
	out := make([]*eni, 0, len(s.enis))
	for _, k := range slices.Sorted(maps.Keys(s.enis)) {
		out = append(out, s.enis[k])
	}
	return out
}

// checkIDs answers NotFound for the first requested ID that does not exist.
func checkIDs(ids []string, exists func(string) bool, code, what string) error {
	for _, id := range ids {
		if !exists(id) {
			return errorf(code, "The %s ID '%s' does not exist", what, id)
		}
	}
	return nil
}

func (s *Server) describeVpcs(p params) (any, error) {
	ids := p.list("VpcId")
	if err := checkIDs(ids, func(id string) bool { return s.vpcs[id] != nil }, codeVpcNotFound, "vpc"); err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	resp := &describeVpcsResp{}
	for _, k := range slices.Sorted(maps.Keys(s.vpcs)) {
		v := s.vpcs[k]
		if len(ids) > 0 && !slices.Contains(ids, v.id) {
			continue
		}
		keep := true
		for _, f := range filters {
			if m, ok := tagFilter(v.tags, f); ok {
				keep = keep && m
				continue
			}
			switch f.name {
			case "vpc-id":
				keep = keep && anyMatch(f.values, v.id)
			case "cidr", "cidr-block-association.cidr-block":
				keep = keep && anyMatch(f.values, v.cidr.String())
			case "is-default", "isDefault":
				keep = keep && anyMatch(f.values, strconv.FormatBool(v.isDefault))
			case "state":
				keep = keep && anyMatch(f.values, "available")
			default:
				return nil, unknownFilter(f.name)
			}
		}
		if keep {
			resp.Vpcs = append(resp.Vpcs, xVpc{VpcID: v.id, OwnerID: s.cfg.AccountID, State: "available", CidrBlock: v.cidr.String(),
				DhcpOptionsID: "dopt-00000001", InstanceTenancy: "default", IsDefault: v.isDefault, Tags: xTags(v.tags)})
		}
	}
	return resp, nil
}

func (s *Server) describeSubnets(p params) (any, error) {
	ids := p.list("SubnetId")
	if err := checkIDs(ids, func(id string) bool { return s.subnets[id] != nil }, codeSubnetNotFound, "subnet"); err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	resp := &describeSubnetsResp{}
	for _, sn := range s.sortedSubnets() {
		if len(ids) > 0 && !slices.Contains(ids, sn.id) {
			continue
		}
		keep := true
		for _, f := range filters {
			if m, ok := tagFilter(sn.tags, f); ok {
				keep = keep && m
				continue
			}
			switch f.name {
			case "subnet-id":
				keep = keep && anyMatch(f.values, sn.id)
			case "vpc-id":
				keep = keep && anyMatch(f.values, sn.vpcID)
			case "availability-zone", "availabilityZone":
				keep = keep && anyMatch(f.values, sn.az)
			case "cidr-block", "cidr", "cidrBlock":
				keep = keep && anyMatch(f.values, sn.cidr.String())
			case "default-for-az", "defaultForAz":
				keep = keep && anyMatch(f.values, strconv.FormatBool(sn.isDef))
			case "map-public-ip-on-launch":
				keep = keep && anyMatch(f.values, strconv.FormatBool(sn.mapPubl))
			case "state":
				keep = keep && anyMatch(f.values, "available")
			default:
				return nil, unknownFilter(f.name)
			}
		}
		if !keep {
			continue
		}
		resp.Subnets = append(resp.Subnets, xSubnet{
			SubnetID: sn.id, SubnetArn: "arn:aws:ec2:" + s.cfg.Region + ":" + s.cfg.AccountID + ":subnet/" + sn.id,
			State: "available", OwnerID: s.cfg.AccountID, VpcID: sn.vpcID, CidrBlock: sn.cidr.String(),
			AvailableIPAddressCount: s.freeCount(sn), AvailabilityZone: sn.az, DefaultForAz: sn.isDef,
			MapPublicIPOnLaunch: sn.mapPubl, Tags: xTags(sn.tags),
		})
	}
	return resp, nil
}

func (s *Server) describeSecurityGroups(p params) (any, error) {
	ids := p.list("GroupId")
	for _, id := range ids {
		if !groupIDRe.MatchString(id) {
			return nil, errorf(codeGroupIDMalformed, "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
	}
	if err := checkIDs(ids, func(id string) bool { return s.groups[id] != nil }, codeGroupNotFound, "security group"); err != nil {
		return nil, err
	}
	names := p.list("GroupName")
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	resp := &describeSecurityGroupsResp{}
	for _, g := range s.sortedGroups() {
		if len(ids) > 0 && !slices.Contains(ids, g.id) {
			continue
		}
		if len(names) > 0 && !slices.Contains(names, g.name) {
			continue
		}
		keep := true
		for _, f := range filters {
			if m, ok := tagFilter(g.tags, f); ok {
				keep = keep && m
				continue
			}
			switch f.name {
			case "group-id":
				keep = keep && anyMatch(f.values, g.id)
			case "group-name":
				keep = keep && anyMatch(f.values, g.name)
			case "vpc-id":
				keep = keep && anyMatch(f.values, g.vpcID)
			case "description":
				keep = keep && anyMatch(f.values, g.description)
			default:
				return nil, unknownFilter(f.name)
			}
		}
		if keep {
			resp.Groups = append(resp.Groups, xSecurityGroup{OwnerID: s.cfg.AccountID, GroupID: g.id, GroupName: g.name,
				GroupDescription: g.description, VpcID: g.vpcID, Tags: xTags(g.tags)})
		}
	}
	return resp, nil
}

// eniByID resolves an interface ID with EC2's Malformed / NotFound codes.
func (s *Server) eniByID(id string) (*eni, error) {
	if id == "" {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter NetworkInterfaceId")
	}
	if !eniIDRe.MatchString(id) {
		return nil, errorf(codeENIMalformed, "Invalid id: \"%s\" (expecting \"eni-...\")", id)
	}
	e := s.enis[id]
	if e == nil {
		return nil, errorf(codeENINotFound, "The networkInterface ID '%s' does not exist", id)
	}
	return e, nil
}

func (s *Server) describeNetworkInterfaces(p params) (any, error) {
	ids := p.list("NetworkInterfaceId")
	for _, id := range ids {
		if _, err := s.eniByID(id); err != nil {
			return nil, err
		}
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	resp := &describeNetworkInterfacesResp{}
	for _, e := range s.sortedENIs() {
		if len(ids) > 0 && !slices.Contains(ids, e.id) {
			continue
		}
		keep := true
		for _, f := range filters {
			if m, ok := tagFilter(e.tags, f); ok {
				keep = keep && m
				continue
			}
			var cands []string
			switch f.name {
			case "network-interface-id":
				cands = []string{e.id}
			case "attachment.instance-id":
				if e.inst != nil {
					cands = []string{e.inst.id}
				}
			case "attachment.device-index":
				if e.inst != nil {
					cands = []string{strconv.Itoa(e.deviceIndex)}
				}
			case "attachment.attachment-id":
				cands = []string{e.attachmentID}
			case "subnet-id":
				cands = []string{e.subnet.id}
			case "vpc-id":
				cands = []string{e.subnet.vpcID}
			case "availability-zone":
				cands = []string{e.subnet.az}
			case "private-ip-address":
				cands = []string{e.ips[0].String()}
			case "addresses.private-ip-address":
				for _, a := range e.ips {
					cands = append(cands, a.String())
				}
			case "association.public-ip":
				for _, a := range e.ips {
					if pub, _ := s.publicFor(e, a); pub.IsValid() {
						cands = append(cands, pub.String())
					}
				}
			case "group-id":
				cands = e.groups
			case "status":
				cands = []string{eniStatus(e)}
			default:
				return nil, unknownFilter(f.name)
			}
			keep = keep && anyMatch(f.values, cands...)
		}
		if keep {
			resp.NetworkInterfaces = append(resp.NetworkInterfaces, s.renderENI(e))
		}
	}
	return resp, nil
}

func eniStatus(e *eni) string {
	if e.inst == nil {
		return "available"
	}
	return "in-use"
}

func (s *Server) renderENI(e *eni) xENI {
	x := xENI{
		NetworkInterfaceID: e.id, SubnetID: e.subnet.id, VpcID: e.subnet.vpcID, AvailabilityZone: e.subnet.az,
		Description: e.description, OwnerID: s.cfg.AccountID, Status: eniStatus(e), MacAddress: e.mac,
		SourceDestCheck: e.srcDstCheck, Tags: xTags(e.tags), PrivateIPs: s.privateIPs(e, true), InterfaceType: "interface",
	}
	if len(e.ips) > 0 {
		x.PrivateIPAddress = e.ips[0].String()
		x.PrivateDNSName = s.privateDNS(e.ips[0])
		x.Association = s.association(e, e.ips[0], true)
	}
	for _, g := range e.groups {
		x.Groups = append(x.Groups, s.xGroup(g))
	}
	if e.inst != nil {
		x.Attachment = &xInstanceAttachment{
			AttachmentID: e.attachmentID, DeviceIndex: e.deviceIndex, Status: "attached",
			AttachTime: e.inst.launch.Format("2006-01-02T15:04:05.000Z"), DeleteOnTermination: e.deleteOnTerm,
			InstanceID: e.inst.id, InstanceOwnerID: s.cfg.AccountID,
		}
	}
	return x
}

func (s *Server) modifyNetworkInterfaceAttribute(p params) (any, error) {
	e, err := s.eniByID(p.str("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	changed := false
	if groups := p.list("SecurityGroupId"); len(groups) > 0 {
		resolved, err := s.resolveGroups(e.subnet, groups, nil)
		if err != nil {
			return nil, err
		}
		e.groups = resolved
		changed = true
	}
	if p.has("SourceDestCheck.Value") {
		v, err := p.boolean("SourceDestCheck.Value", true)
		if err != nil {
			return nil, err
		}
		e.srcDstCheck = v
		changed = true
	}
	if p.has("Description.Value") {
		e.description = p.str("Description.Value")
		changed = true
	}
	if p.has("Attachment.DeleteOnTermination") {
		if e.inst == nil || p.str("Attachment.AttachmentId") != e.attachmentID {
			return nil, errorf("InvalidAttachmentID.NotFound", "The attachment ID '%s' does not exist", p.str("Attachment.AttachmentId"))
		}
		v, err := p.boolean("Attachment.DeleteOnTermination", true)
		if err != nil {
			return nil, err
		}
		e.deleteOnTerm = v
		changed = true
	}
	if !changed {
		return nil, errorf(codeMissingParameter, "The request must contain an attribute to modify")
	}
	return &returnResp{Return: true}, nil
}

// ipLimit is the IPv4-per-interface limit of the instance type the ENI is attached to.
func (s *Server) ipLimit(e *eni) (int, string) {
	if e.inst == nil {
		return 50, "an unattached interface" // EC2 checks the limit at attach time
	}
	return s.itypes[e.inst.itype].ipv4PerENI, e.inst.itype
}

func (s *Server) assignPrivateIPs(p params) (any, error) {
	e, err := s.eniByID(p.str("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	explicit := p.list("PrivateIpAddress")
	count, err := p.integer("SecondaryPrivateIpAddressCount", 0)
	if err != nil {
		return nil, err
	}
	switch {
	case len(explicit) > 0 && p.has("SecondaryPrivateIpAddressCount"):
		return nil, errorf(codeInvalidParameterCombination, "Specify either PrivateIpAddress or SecondaryPrivateIpAddressCount, not both.")
	case len(explicit) == 0 && count <= 0:
		return nil, errorf(codeMissingParameter, "Either PrivateIpAddress or a positive SecondaryPrivateIpAddressCount must be specified.")
	}
	allowReassign, err := p.boolean("AllowReassignment", false)
	if err != nil {
		return nil, err
	}
	if e.inst != nil && e.inst.state != statePending && e.inst.state != stateRunning && e.inst.state != stateStopped {
		return nil, errorf(codeIncorrectInstanceState, "The instance '%s' is not in a state to assign addresses.", e.inst.id)
	}
	// Validate everything before changing anything.
	var parsed []netip.Addr
	var moveFrom []*eni
	for _, raw := range explicit {
		a, err := netip.ParseAddr(raw)
		if err != nil || !a.Is4() {
			return nil, errorf(codeInvalidParameterValue, "Invalid value '%s' for IP address. The IPv4 address is malformed.", raw)
		}
		first, last := usableRange(e.subnet.cidr)
		if !e.subnet.cidr.Contains(a) || a.Compare(first) < 0 || a.Compare(last) > 0 {
			return nil, errorf(codeInvalidParameterValue, "Address %s does not fall within the usable range of subnet %s (%s)", raw, e.subnet.id, e.subnet.cidr)
		}
		if slices.Contains(parsed, a) {
			return nil, errorf(codeInvalidParameterValue, "Address %s is listed more than once", raw)
		}
		owner := e.subnet.used[a]
		switch {
		case owner == nil:
		case !allowReassign:
			return nil, errorf(codeIPInUse, "Address %s is in use.", raw)
		case owner != e && owner.ips[0] == a:
			return nil, errorf(codeInvalidParameterValue, "Address %s is the primary address of %s and cannot be reassigned.", raw, owner.id)
		}
		if owner == e {
			continue // already here: reassignment to itself is a no-op
		}
		parsed = append(parsed, a)
		moveFrom = append(moveFrom, owner)
	}
	limit, typ := s.ipLimit(e)
	add := len(parsed) + count
	if len(e.ips)+add > limit {
		return nil, errorf(codePrivateIPLimitExceeded, "Number of private addresses will exceed limit: %s supports %d IPv4 addresses per network interface (has %d, requested %d more).", typ, limit, len(e.ips), add)
	}
	if count > s.freeCount(e.subnet) {
		return nil, errorf(codeInsufficientAddresses, "Insufficient free IP addresses in subnet %s", e.subnet.id)
	}
	resp := &assignPrivateIPsResp{NetworkInterfaceID: e.id}
	for i, a := range parsed {
		if from := moveFrom[i]; from != nil {
			s.removeIP(from, a)
		}
		e.subnet.used[a] = e
		e.ips = append(e.ips, a)
		resp.Assigned = append(resp.Assigned, xAssignedIP{PrivateIPAddress: a.String()})
	}
	for range count {
		a, err := s.allocatePrivateIP(e.subnet, e)
		if err != nil {
			return nil, err // unreachable: free space was checked above
		}
		e.ips = append(e.ips, a)
		resp.Assigned = append(resp.Assigned, xAssignedIP{PrivateIPAddress: a.String()})
	}
	if s.cfg.AssignAnswersAll {
		resp.Assigned = resp.Assigned[:0]
		for _, a := range e.ips {
			resp.Assigned = append(resp.Assigned, xAssignedIP{PrivateIPAddress: a.String()})
		}
	}
	return resp, nil
}

// removeIP takes a secondary address off an interface, disassociating any Elastic IP on it.
func (s *Server) removeIP(e *eni, a netip.Addr) {
	if ip := s.eipFor(e, a); ip != nil {
		ip.eni, ip.assocID, ip.privateIP = nil, "", netip.Addr{}
	}
	e.ips = slices.DeleteFunc(e.ips, func(x netip.Addr) bool { return x == a })
	delete(e.subnet.used, a)
}

func (s *Server) unassignPrivateIPs(p params) (any, error) {
	e, err := s.eniByID(p.str("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	raws := p.list("PrivateIpAddress")
	if len(raws) == 0 {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter PrivateIpAddress")
	}
	var addrs []netip.Addr
	for _, raw := range raws {
		a, err := netip.ParseAddr(raw)
		if err != nil {
			return nil, errorf(codeInvalidParameterValue, "Invalid value '%s' for IP address. The IPv4 address is malformed.", raw)
		}
		i := slices.Index(e.ips, a)
		switch {
		case i < 0:
			return nil, errorf(codeInvalidParameterValue, "Some of the specified addresses are not assigned to interface %s: %s", e.id, raw)
		case i == 0:
			return nil, errorf(codeInvalidParameterValue, "The primary address %s of interface %s cannot be unassigned.", raw, e.id)
		}
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		s.removeIP(e, a)
	}
	return &returnResp{Return: true}, nil
}
