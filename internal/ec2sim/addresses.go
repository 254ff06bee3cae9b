package ec2sim

import (
	"net/netip"
	"slices"
)

func (s *Server) eipByAllocID(id string) (*elasticIP, error) {
	if id == "" {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter AllocationId")
	}
	if !allocIDRe.MatchString(id) {
		return nil, errorf(codeAllocationMalformed, "Invalid id: \"%s\" (expecting \"eipalloc-...\")", id)
	}
	ip := s.eips[id]
	if ip == nil {
		return nil, errorf(codeAllocationNotFound, "The allocation ID '%s' does not exist", id)
	}
	return ip, nil
}

func (s *Server) allocateAddress(p params) (any, error) {
	if d := p.str("Domain"); d != "" && d != "vpc" {
		return nil, errorf(codeInvalidParameterValue, "Invalid value '%s' for domain; only 'vpc' is supported.", d)
	}
	if p.str("Address") != "" || p.str("PublicIpv4Pool") != "" || p.str("IpamPoolId") != "" {
		return nil, errorf(codeUnsupportedOperation, "ec2sim allocates from Amazon's pool only (no BYOIP Address, PublicIpv4Pool or IpamPoolId)")
	}
	if s.cfg.ElasticIPLimit > 0 && len(s.eips) >= s.cfg.ElasticIPLimit {
		return nil, errorf(codeAddressLimitExceeded, "The maximum number of addresses has been reached.")
	}
	specs := p.tagSpecs()
	tags := map[string]string{}
	for _, ts := range specs {
		if ts.resourceType != "elastic-ip" {
			return nil, errorf(codeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", ts.resourceType)
		}
		if err := validateTags(ts.tags); err != nil {
			return nil, err
		}
	}
	pub, err := s.allocatePublicIP()
	if err != nil {
		return nil, err
	}
	ip := &elasticIP{allocID: s.newID("eipalloc-"), publicIP: pub, tags: tags}
	if err := applyTags(ip.tags, tagsFromSpecs(specs, "elastic-ip"), ip.allocID); err != nil {
		delete(s.publicUsed, pub)
		return nil, err
	}
	s.eips[ip.allocID] = ip
	s.eipOrder = append(s.eipOrder, ip)
	return &allocateAddressResp{PublicIP: pub.String(), Domain: "vpc", AllocationID: ip.allocID, PublicIPv4Pool: "amazon", NetworkBorderGroup: s.cfg.Region}, nil
}

func (s *Server) associateAddress(p params) (any, error) {
	allocID := p.str("AllocationId")
	if allocID == "" && p.str("PublicIp") != "" {
		return nil, errorf(codeInvalidParameterCombination, "In a VPC, an Elastic IP is associated by AllocationId, not PublicIp.")
	}
	ip, err := s.eipByAllocID(allocID)
	if err != nil {
		return nil, err
	}
	instID, eniID := p.str("InstanceId"), p.str("NetworkInterfaceId")
	allow, err := p.boolean("AllowReassociation", false)
	if err != nil {
		return nil, err
	}
	var target *eni
	switch {
	case instID == "" && eniID == "":
		return nil, errorf(codeMissingParameter, "Either instance ID or network interface ID must be specified.")
	case instID != "":
		in, err := s.instanceByID(instID, true)
		if err != nil {
			return nil, err
		}
		if err := checkAssociable(in); err != nil {
			return nil, err
		}
		if len(in.enis) > 1 && eniID == "" {
			return nil, errorf(codeInvalidInstanceID, "There are multiple interfaces attached to instance '%s'. Please specify an interface ID for the operation instead.", in.id)
		}
		target = in.primaryENI()
		if eniID != "" {
			e, err := s.eniByID(eniID)
			if err != nil {
				return nil, err
			}
			if e.inst != in {
				return nil, errorf(codeInvalidParameterValue, "Network interface %s is not attached to instance %s.", eniID, in.id)
			}
			target = e
		}
	default:
		e, err := s.eniByID(eniID)
		if err != nil {
			return nil, err
		}
		if e.inst != nil {
			if err := checkAssociable(e.inst); err != nil {
				return nil, err
			}
		}
		target = e
	}
	priv := target.ips[0]
	if raw := p.str("PrivateIpAddress"); raw != "" {
		a, err := netip.ParseAddr(raw)
		if err != nil || !slices.Contains(target.ips, a) {
			return nil, errorf(codeInvalidParameterValue, "The private IP address %s is not assigned to network interface %s.", raw, target.id)
		}
		priv = a
	}
	if ip.eni == target && ip.privateIP == priv {
		return &associateAddressResp{Return: true, AssociationID: ip.assocID}, nil
	}
	if ip.eni != nil && !allow {
		return nil, errorf(codeAlreadyAssociated, "resource %s is already associated with associate-id %s", ip.allocID, ip.assocID)
	}
	if other := s.eipFor(target, priv); other != nil {
		if !allow {
			return nil, errorf(codeAlreadyAssociated, "The address %s of %s already has the Elastic IP %s.", priv, target.id, other.publicIP)
		}
		other.eni, other.assocID, other.privateIP = nil, "", netip.Addr{}
	}
	if ip.eni != nil {
		s.afterDisassociate(ip.eni, ip.privateIP)
	}
	// An Elastic IP on the primary address replaces the auto-assigned public IP, which EC2
	// returns to its pool.
	if priv == target.ips[0] && target.publicIP.IsValid() {
		delete(s.publicUsed, target.publicIP)
		target.publicIP = netip.Addr{}
	}
	ip.eni, ip.privateIP, ip.assocID = target, priv, s.newID("eipassoc-")
	return &associateAddressResp{Return: true, AssociationID: ip.assocID}, nil
}

// checkAssociable rejects instances that are not running or stopped: EC2 answers
// IncorrectInstanceState while an instance is pending (the classic race right after
// RunInstances) or going away.
func checkAssociable(in *instance) error {
	if in.state != stateRunning && in.state != stateStopped {
		return errorf(codeIncorrectInstanceState, "The %s instance '%s' is not in a valid state for this operation.", in.state, in.id)
	}
	return nil
}

// afterDisassociate gives a single-interface instance launched with a public IP a new one, as
// EC2 does when the Elastic IP that replaced it goes away.
func (s *Server) afterDisassociate(e *eni, priv netip.Addr) {
	if e.wantPublic && e.inst != nil && len(e.inst.enis) == 1 && len(e.ips) > 0 && priv == e.ips[0] && !e.publicIP.IsValid() {
		if a, err := s.allocatePublicIP(); err == nil {
			e.publicIP = a
		}
	}
}

func (s *Server) disassociateAddress(p params) (any, error) {
	assocID := p.str("AssociationId")
	if assocID == "" {
		if p.str("PublicIp") != "" {
			return nil, errorf(codeInvalidParameterCombination, "In a VPC, an Elastic IP is disassociated by AssociationId, not PublicIp.")
		}
		return nil, errorf(codeMissingParameter, "The request must contain the parameter AssociationId")
	}
	for _, ip := range s.eipOrder {
		if ip.assocID == assocID && ip.eni != nil {
			e, priv := ip.eni, ip.privateIP
			ip.eni, ip.assocID, ip.privateIP = nil, "", netip.Addr{}
			s.afterDisassociate(e, priv)
			return &returnResp{Return: true}, nil
		}
	}
	return nil, errorf(codeAssociationNotFound, "The association ID '%s' does not exist", assocID)
}

func (s *Server) releaseAddress(p params) (any, error) {
	if p.str("AllocationId") == "" && p.str("PublicIp") != "" {
		return nil, errorf(codeInvalidParameterCombination, "In a VPC, an Elastic IP is released by AllocationId, not PublicIp.")
	}
	ip, err := s.eipByAllocID(p.str("AllocationId"))
	if err != nil {
		return nil, err
	}
	if ip.eni != nil {
		return nil, errorf(codeIPInUse, "Address %s is in use.", ip.publicIP)
	}
	delete(s.eips, ip.allocID)
	s.eipOrder = slices.DeleteFunc(s.eipOrder, func(x *elasticIP) bool { return x == ip })
	delete(s.publicUsed, ip.publicIP)
	return &returnResp{Return: true}, nil
}

func (s *Server) describeAddresses(p params) (any, error) {
	allocIDs := p.list("AllocationId")
	for _, id := range allocIDs {
		if _, err := s.eipByAllocID(id); err != nil {
			return nil, err
		}
	}
	publicIPs := p.list("PublicIp")
	for _, raw := range publicIPs {
		found := false
		for _, ip := range s.eipOrder {
			found = found || ip.publicIP.String() == raw
		}
		if !found {
			return nil, errorf(codeAddressNotFound, "Address '%s' not found.", raw)
		}
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	resp := &describeAddressesResp{}
	for _, ip := range s.eipOrder {
		if len(allocIDs) > 0 && !slices.Contains(allocIDs, ip.allocID) {
			continue
		}
		if len(publicIPs) > 0 && !slices.Contains(publicIPs, ip.publicIP.String()) {
			continue
		}
		x := xAddress{PublicIP: ip.publicIP.String(), AllocationID: ip.allocID, Domain: "vpc", PublicIPv4Pool: "amazon",
			NetworkBorderGroup: s.cfg.Region, Tags: xTags(ip.tags)}
		if ip.eni != nil {
			x.AssociationID, x.NetworkInterfaceID, x.NetworkInterfaceOwnerID = ip.assocID, ip.eni.id, s.cfg.AccountID
			x.PrivateIPAddress, x.SubnetID = ip.privateIP.String(), ip.eni.subnet.id
			if ip.eni.inst != nil {
				x.InstanceID = ip.eni.inst.id
			}
		}
		keep := true
		for _, f := range filters {
			if m, ok := tagFilter(ip.tags, f); ok {
				keep = keep && m
				continue
			}
			var cand string
			switch f.name {
			case "allocation-id":
				cand = x.AllocationID
			case "association-id":
				cand = x.AssociationID
			case "instance-id":
				cand = x.InstanceID
			case "network-interface-id":
				cand = x.NetworkInterfaceID
			case "private-ip-address":
				cand = x.PrivateIPAddress
			case "public-ip":
				cand = x.PublicIP
			case "domain":
				cand = x.Domain
			case "network-border-group":
				cand = x.NetworkBorderGroup
			default:
				return nil, unknownFilter(f.name)
			}
			keep = keep && cand != "" && anyMatch(f.values, cand)
		}
		if keep {
			resp.Addresses = append(resp.Addresses, x)
		}
	}
	return resp, nil
}
