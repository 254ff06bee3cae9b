package ec2sim

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

const maxUserData = 16 * 1024

// eniSpec is one network interface RunInstances will create, after validation.
type eniSpec struct {
	deviceIndex    int
	subnet         *subnet
	groups         []string
	primaryIP      string   // explicit primary, or ""
	secondaryIPs   []string // explicit secondaries
	secondaryCount int
	public         bool
	deleteOnTerm   bool
	description    string
}

func (s *Server) runInstances(p params) (any, error) {
	imageID := p.str("ImageId")
	if imageID == "" {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter ImageId")
	}
	if !strings.HasPrefix(imageID, "ami-") || len(imageID) < 5 {
		return nil, errorf(codeInvalidAMIIDMalformed, "Invalid id: \"%s\" (expecting \"ami-...\")", imageID)
	}
	typeName := p.str("InstanceType")
	if typeName == "" {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter InstanceType")
	}
	it := s.itypes[typeName]
	if it == nil {
		return nil, errorf(codeInvalidInstanceType, "The instance type '%s' does not exist", typeName)
	}
	if !p.has("MinCount") || !p.has("MaxCount") {
		return nil, errorf(codeMissingParameter, "The request must contain the parameters MinCount and MaxCount")
	}
	minCount, err := p.integer("MinCount", 1)
	if err != nil {
		return nil, err
	}
	maxCount, err := p.integer("MaxCount", 1)
	if err != nil {
		return nil, err
	}
	if minCount < 1 || maxCount < minCount {
		return nil, errorf(codeInvalidParameterValue, "MinCount (%d) must be at least 1 and at most MaxCount (%d)", minCount, maxCount)
	}
	if maxCount > 1000 {
		return nil, errorf("InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit allows.", maxCount)
	}

	// Idempotency: the same ClientToken with the same parameters answers the original
	// reservation and never launches again; with other parameters it is an error.
	token := p.str("ClientToken")
	fingerprint := p.fingerprint("Action", "Version", "ClientToken")
	if token != "" {
		if len(token) > 64 {
			return nil, errorf(codeInvalidParameterValue, "ClientToken must be at most 64 ASCII characters")
		}
		if r := s.tokens[token]; r != nil {
			if r.fingerprint != fingerprint {
				return nil, errorf(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			return &runInstancesResp{xReservation: s.renderReservation(r.id, r.instances)}, nil
		}
	}

	userData := p.str("UserData")
	if userData != "" {
		raw, err := base64.StdEncoding.DecodeString(userData)
		if err != nil {
			return nil, errorf(codeInvalidParameterValue, "Invalid BASE64 encoding of user data.")
		}
		if len(raw) > maxUserData {
			return nil, errorf(codeInvalidParameterValue, "User data is limited to %d bytes.", maxUserData)
		}
	}
	iamProf := p.str("IamInstanceProfile.Arn")
	if iamProf == "" {
		iamProf = p.str("IamInstanceProfile.Name")
	}

	specs := p.tagSpecs()
	for _, ts := range specs {
		if err := validateTags(ts.tags); err != nil {
			return nil, err
		}
		if len(ts.tags) > maxTagsPerResource {
			return nil, errorf(codeTagLimitExceeded, "The maximum number of tags (%d) per resource has been exceeded.", maxTagsPerResource)
		}
	}

	enis, err := s.eniSpecs(p, it, maxCount)
	if err != nil {
		return nil, err
	}
	metadata, _, err := applyMetadataOptions(p, "MetadataOptions.", defaultMetadataOptions())
	if err != nil {
		return nil, err
	}

	res := &reservation{id: s.newID("r-"), fingerprint: fingerprint}
	for k := range maxCount {
		in, err := s.launch(res.id, k, imageID, it, enis, specs, userData, iamProf, p.str("KeyName"), token)
		if err != nil {
			// Roll back: a failed RunInstances leaves nothing behind.
			for _, done := range res.instances {
				s.destroyInstance(done)
			}
			return nil, err
		}
		in.metadata = metadata
		res.instances = append(res.instances, in)
	}
	if token != "" {
		s.tokens[token] = res
	}
	if s.owned() {
		for _, in := range res.instances {
			s.cfg.Lifecycle.Booting(s.snapshotOf(in))
		}
	}
	return &runInstancesResp{xReservation: s.renderReservation(res.id, res.instances)}, nil
}

// eniSpecs validates the interface layout of a RunInstances request.
func (s *Server) eniSpecs(p params, it *instanceType, count int) ([]eniSpec, error) {
	nis := p.indices("NetworkInterface")
	topSubnet := p.str("SubnetId")
	topGroups := p.list("SecurityGroupId")
	topGroupNames := p.list("SecurityGroup")
	topIP := p.str("PrivateIpAddress")
	if len(nis) > 0 {
		if topSubnet != "" {
			return nil, errorf(codeInvalidParameterCombination, "Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		if len(topGroups) > 0 || len(topGroupNames) > 0 {
			return nil, errorf(codeInvalidParameterCombination, "Network interfaces and an instance-level security groups may not be specified on the same request")
		}
		if topIP != "" {
			return nil, errorf(codeInvalidParameterCombination, "Network interfaces and an instance-level private IP address may not be specified on the same request")
		}
	}
	var out []eniSpec
	if len(nis) == 0 {
		id := topSubnet
		if id == "" {
			id = s.defaultSubnetID()
		}
		sn, err := s.subnetByID(id)
		if err != nil {
			return nil, err
		}
		groups, err := s.resolveGroups(sn, topGroups, topGroupNames)
		if err != nil {
			return nil, err
		}
		out = append(out, eniSpec{deviceIndex: 0, subnet: sn, groups: groups, primaryIP: topIP, public: sn.mapPubl, deleteOnTerm: true})
	}
	seen := map[int]bool{}
	for _, i := range nis {
		np := p.sub("NetworkInterface", i)
		if id := np.str("NetworkInterfaceId"); id != "" {
			if s.enis[id] != nil {
				return nil, errorf("InvalidNetworkInterface.InUse", "Interface: [%s] in use.", id)
			}
			return nil, errorf(codeENINotFound, "The networkInterface ID '%s' does not exist", id)
		}
		if !np.has("DeviceIndex") {
			return nil, errorf(codeMissingParameter, "When specifying network interfaces, you must include a device index.")
		}
		dev, err := np.integer("DeviceIndex", 0)
		if err != nil {
			return nil, err
		}
		if dev < 0 || seen[dev] {
			return nil, errorf(codeInvalidParameterValue, "Each network interface requires a unique, non-negative device index (got %d).", dev)
		}
		seen[dev] = true
		sid := np.str("SubnetId")
		if sid == "" {
			return nil, errorf(codeMissingParameter, "The request must contain the parameter NetworkInterface.%d.SubnetId", i)
		}
		sn, err := s.subnetByID(sid)
		if err != nil {
			return nil, err
		}
		groups, err := s.resolveGroups(sn, np.list("SecurityGroupId"), nil)
		if err != nil {
			return nil, err
		}
		sp := eniSpec{deviceIndex: dev, subnet: sn, groups: groups, description: np.str("Description")}
		if sp.deleteOnTerm, err = np.boolean("DeleteOnTermination", true); err != nil {
			return nil, err
		}
		if sp.secondaryCount, err = np.integer("SecondaryPrivateIpAddressCount", 0); err != nil {
			return nil, err
		}
		if sp.secondaryCount < 0 {
			return nil, errorf(codeInvalidParameterValue, "SecondaryPrivateIpAddressCount must not be negative")
		}
		sp.primaryIP = np.str("PrivateIpAddress")
		explicit := np.indices("PrivateIpAddresses")
		for _, j := range explicit {
			ip := np.sub("PrivateIpAddresses", j)
			addr := ip.str("PrivateIpAddress")
			if addr == "" {
				return nil, errorf(codeMissingParameter, "The request must contain the parameter PrivateIpAddresses.%d.PrivateIpAddress", j)
			}
			primary, err := ip.boolean("Primary", false)
			if err != nil {
				return nil, err
			}
			switch {
			case primary && sp.primaryIP != "" && sp.primaryIP != addr:
				return nil, errorf(codeInvalidParameterValue, "Only one primary private IP address may be specified (%s and %s)", sp.primaryIP, addr)
			case primary:
				sp.primaryIP = addr
			default:
				sp.secondaryIPs = append(sp.secondaryIPs, addr)
			}
		}
		if sp.secondaryCount > 0 && len(explicit) > 1 {
			return nil, errorf(codeInvalidParameterCombination, "SecondaryPrivateIpAddressCount cannot be combined with more than one entry in PrivateIpAddresses")
		}
		if pub, err := np.boolean("AssociatePublicIpAddress", sn.mapPubl); err != nil {
			return nil, err
		} else if np.has("AssociatePublicIpAddress") && pub {
			if dev != 0 {
				return nil, errorf(codeInvalidParameterCombination, "The associatePublicIPAddress parameter can only be specified for the network interface with DeviceIndex 0.")
			}
			if len(nis) > 1 {
				return nil, errorf(codeInvalidParameterCombination, "The associatePublicIPAddress parameter cannot be specified when launching with multiple network interfaces.")
			}
			sp.public = true
		} else {
			sp.public = pub && len(nis) == 1 && dev == 0
		}
		out = append(out, sp)
	}
	if len(nis) > 0 && !seen[0] {
		return nil, errorf(codeInvalidParameterValue, "The network interfaces must include one with DeviceIndex 0.")
	}
	if len(out) > it.maxENIs {
		return nil, errorf(codeAttachmentLimitExceeded, "Interface count %d exceeds the limit of %d for %s", len(out), it.maxENIs, it.name)
	}
	slices.SortFunc(out, func(a, b eniSpec) int { return a.deviceIndex - b.deviceIndex })
	for _, sp := range out {
		if sp.subnet.vpcID != out[0].subnet.vpcID || sp.subnet.az != out[0].subnet.az {
			return nil, errorf(codeInvalidParameterValue, "Network interfaces must be in the same VPC and availability zone (%s is in %s, %s)", sp.subnet.id, sp.subnet.vpcID, sp.subnet.az)
		}
		total := 1 + len(sp.secondaryIPs) + sp.secondaryCount
		if total > it.ipv4PerENI {
			return nil, errorf(codePrivateIPLimitExceeded, "Number of private addresses (%d) will exceed limit: instance type %s supports %d IPv4 addresses per network interface.", total, it.name, it.ipv4PerENI)
		}
		if count > 1 && (sp.primaryIP != "" || len(sp.secondaryIPs) > 0) {
			return nil, errorf(codeInvalidParameterCombination, "Explicit private IP addresses cannot be specified when launching more than one instance.")
		}
	}
	return out, nil
}

func (s *Server) defaultSubnetID() string {
	for _, sn := range s.sortedSubnets() {
		if sn.isDef {
			return sn.id
		}
	}
	return "subnet-00000001"
}

func (s *Server) subnetByID(id string) (*subnet, error) {
	if !strings.HasPrefix(id, subnetIDPrefix) {
		return nil, errorf("InvalidSubnetID.Malformed", "Invalid id: \"%s\"", id)
	}
	sn := s.subnets[id]
	if sn == nil {
		return nil, errorf(codeSubnetNotFound, "The subnet ID '%s' does not exist", id)
	}
	return sn, nil
}

// resolveGroups checks security group IDs (and names) against the subnet's VPC; none means
// the VPC's default group, as in EC2.
func (s *Server) resolveGroups(sn *subnet, ids, names []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		if !groupIDRe.MatchString(id) {
			return nil, errorf(codeGroupIDMalformed, "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
		g := s.groups[id]
		if g == nil {
			return nil, errorf(codeGroupNotFound, "The security group '%s' does not exist", id)
		}
		if g.vpcID != sn.vpcID {
			return nil, errorf(codeInvalidParameter, "Security group %s and subnet %s belong to different networks.", id, sn.id)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, name := range names {
		found := ""
		for _, g := range s.sortedGroups() {
			if g.name == name && g.vpcID == sn.vpcID {
				found = g.id
			}
		}
		if found == "" {
			return nil, errorf(codeGroupNotFound, "The security group '%s' does not exist in VPC '%s'", name, sn.vpcID)
		}
		if !slices.Contains(out, found) {
			out = append(out, found)
		}
	}
	if len(out) == 0 {
		for _, g := range s.sortedGroups() {
			if g.name == "default" && g.vpcID == sn.vpcID {
				return []string{g.id}, nil
			}
		}
	}
	return out, nil
}

// launch creates one instance and its interfaces. On error nothing of it remains.
func (s *Server) launch(resID string, index int, imageID string, it *instanceType, specs []eniSpec, tags []tagSpec, userData, iamProf, keyName, token string) (*instance, error) {
	now := time.Now().UTC().Truncate(time.Second)
	in := &instance{
		id: s.newID("i-"), reservationID: resID, imageID: imageID, itype: it.name,
		state: statePending, pendingLeft: s.cfg.PendingDescribes, notFoundLeft: s.cfg.NotFoundAfterCreate,
		subnet: specs[0].subnet, keyName: keyName, iamProf: iamProf, userData: userData,
		clientToken: token, tags: map[string]string{}, launch: now, launchIndex: index,
		volumeID: s.newID("vol-"), volumeTags: map[string]string{},
	}
	if iamProf != "" {
		in.iamProfID = "AIPA" + strings.ToUpper(fmt.Sprintf("%016x", s.idRand.Uint64()))
	}
	for _, t := range tagsFromSpecs(tags, "instance") {
		in.tags[t.key] = t.value
	}
	for _, t := range tagsFromSpecs(tags, "volume") {
		in.volumeTags[t.key] = t.value
	}
	for _, sp := range specs {
		e := &eni{
			id: s.newID("eni-"), subnet: sp.subnet, inst: in, attachmentID: s.newID("eni-attach-"),
			deviceIndex: sp.deviceIndex, deleteOnTerm: sp.deleteOnTerm, groups: slices.Clone(sp.groups),
			tags: map[string]string{}, description: sp.description, srcDstCheck: true, wantPublic: sp.public,
			mac: fmt.Sprintf("0e:%02x:%02x:%02x:%02x:%02x", s.idRand.Intn(256), s.idRand.Intn(256), s.idRand.Intn(256), s.idRand.Intn(256), s.idRand.Intn(256)),
		}
		for _, t := range tagsFromSpecs(tags, "network-interface") {
			e.tags[t.key] = t.value
		}
		in.enis = append(in.enis, e)
		s.enis[e.id] = e
		if err := s.fillENI(e, sp); err != nil {
			s.destroyInstance(in)
			return nil, err
		}
	}
	s.instances[in.id] = in
	s.order = append(s.order, in)
	return in, nil
}

func (s *Server) fillENI(e *eni, sp eniSpec) error {
	if s.cfg.LaunchIgnoresSecondaryIPs {
		sp.secondaryIPs, sp.secondaryCount = nil, 0
	}
	if sp.primaryIP != "" {
		a, err := s.reservePrivateIP(sp.subnet, sp.primaryIP, e)
		if err != nil {
			return err
		}
		e.ips = append(e.ips, a)
	} else {
		a, err := s.allocatePrivateIP(sp.subnet, e)
		if err != nil {
			return err
		}
		e.ips = append(e.ips, a)
	}
	for _, raw := range sp.secondaryIPs {
		a, err := s.reservePrivateIP(sp.subnet, raw, e)
		if err != nil {
			return err
		}
		e.ips = append(e.ips, a)
	}
	for range sp.secondaryCount {
		a, err := s.allocatePrivateIP(sp.subnet, e)
		if err != nil {
			return err
		}
		e.ips = append(e.ips, a)
	}
	if sp.public {
		a, err := s.allocatePublicIP()
		if err != nil {
			return err
		}
		e.publicIP = a
	}
	return nil
}

// destroyInstance undoes a partial launch: frees every address and forgets the instance.
func (s *Server) destroyInstance(in *instance) {
	for _, e := range in.enis {
		s.releaseENI(e)
	}
	in.enis = nil
	delete(s.instances, in.id)
	if i := slices.Index(s.order, in); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// advance applies state transitions that are due at the start of a DescribeInstances call,
// unless a Lifecycle owns them.
func (s *Server) advance() {
	if s.owned() {
		return
	}
	for _, in := range s.order {
		switch {
		case in.state == statePending && in.pendingLeft <= 0:
			in.state = stateRunning
		case in.state == stateShuttingDown && in.shutdownLeft <= 0:
			s.finishTermination(in)
		case in.state == stateStopping && in.shutdownLeft <= 0:
			s.finishStop(in)
		}
	}
}

// expireTerminated forgets terminated instances older than TerminatedVisibleFor.
func (s *Server) expireTerminated() {
	cutoff := time.Now().UTC().Add(-s.cfg.TerminatedVisibleFor)
	s.order = slices.DeleteFunc(s.order, func(in *instance) bool {
		if in.state == stateTerminated && in.terminatedAt.Before(cutoff) {
			delete(s.instances, in.id)
			return true
		}
		return false
	})
}

// instanceByID resolves an instance for single-instance calls, honouring eventual consistency.
func (s *Server) instanceByID(id string, consistent bool) (*instance, error) {
	if id == "" {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter InstanceId")
	}
	if !instanceIDRe.MatchString(id) {
		return nil, errorf(codeInstanceMalformed, "Invalid id: \"%s\"", id)
	}
	in := s.instances[id]
	if in == nil {
		return nil, errorf(codeInstanceNotFound, "The instance ID '%s' does not exist", id)
	}
	if consistent && in.notFoundLeft > 0 {
		in.notFoundLeft--
		return nil, errorf(codeInstanceNotFound, "The instance ID '%s' does not exist", id)
	}
	return in, nil
}

func (s *Server) describeInstances(p params) (any, error) {
	s.expireTerminated()
	ids := p.list("InstanceId")
	maxResults, err := p.integer("MaxResults", 0)
	if err != nil {
		return nil, err
	}
	if p.has("MaxResults") {
		if len(ids) > 0 {
			return nil, errorf(codeInvalidParameterCombination, "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		if maxResults < 5 || maxResults > 1000 {
			return nil, errorf(codeInvalidParameterValue, "Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", maxResults)
		}
	}
	offset, err := decodeToken(p.str("NextToken"))
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	s.advance()
	// Instances this call can see at all (not hidden by eventual consistency); they age below.
	var visible []*instance
	for _, in := range s.order {
		if in.notFoundLeft == 0 {
			visible = append(visible, in)
		}
	}

	var candidates []*instance
	if len(ids) > 0 {
		var missing []string
		var hidden []*instance
		want := map[string]bool{}
		for _, id := range ids {
			if !instanceIDRe.MatchString(id) {
				return nil, errorf(codeInstanceMalformed, "Invalid id: \"%s\"", id)
			}
			in := s.instances[id]
			switch {
			case in == nil:
				missing = append(missing, id)
			case in.notFoundLeft > 0:
				missing = append(missing, id)
				hidden = append(hidden, in)
			}
			want[id] = true
		}
		if len(missing) > 0 {
			for _, in := range hidden {
				in.notFoundLeft--
			}
			if len(missing) == 1 {
				return nil, errorf(codeInstanceNotFound, "The instance ID '%s' does not exist", missing[0])
			}
			return nil, errorf(codeInstanceNotFound, "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
		}
		for _, in := range s.order {
			if want[in.id] {
				candidates = append(candidates, in)
			}
		}
	} else {
		for _, in := range s.order {
			if in.notFoundLeft > 0 {
				in.notFoundLeft--
				continue
			}
			candidates = append(candidates, in)
		}
	}
	var matched []*instance
	for _, in := range candidates {
		ok, err := s.instanceMatches(in, filters)
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, in)
		}
	}
	if offset > len(matched) {
		return nil, errorf(codeInvalidPaginationToken, "Invalid pagination token")
	}
	page := matched[offset:]
	next := ""
	if maxResults > 0 && len(page) > maxResults {
		page = page[:maxResults]
		next = encodeToken(offset + maxResults)
	}
	resp := &describeInstancesResp{NextToken: next}
	for i := 0; i < len(page); {
		j := i
		for j < len(page) && page[j].reservationID == page[i].reservationID {
			j++
		}
		resp.Reservations = append(resp.Reservations, s.renderReservation(page[i].reservationID, page[i:j]))
		i = j
	}
	// Every successful describe ages every pending, shutting-down or stopping instance it could
	// see, whether or not its IDs and filters selected it, so a caller polling for a state makes
	// progress.
	for _, in := range visible {
		switch in.state {
		case statePending:
			in.pendingLeft--
		case stateShuttingDown, stateStopping:
			in.shutdownLeft--
		}
	}
	return resp, nil
}

func encodeToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ec2sim:" + strconv.Itoa(offset)))
}

func decodeToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	n, convErr := strconv.Atoi(strings.TrimPrefix(string(raw), "ec2sim:"))
	if err != nil || convErr != nil || !strings.HasPrefix(string(raw), "ec2sim:") || n < 0 {
		return 0, errorf(codeInvalidPaginationToken, "Invalid pagination token %q", tok)
	}
	return n, nil
}

func (s *Server) instanceMatches(in *instance, filters []filter) (bool, error) {
	for _, f := range filters {
		if m, ok := tagFilter(in.tags, f); ok {
			if !m {
				return false, nil
			}
			continue
		}
		var cands []string
		switch f.name {
		case "instance-state-name":
			cands = []string{in.state}
		case "instance-state-code":
			cands = []string{strconv.Itoa(stateCodes[in.state])}
		case "instance-id":
			cands = []string{in.id}
		case "instance-type":
			cands = []string{in.itype}
		case "image-id":
			cands = []string{in.imageID}
		case "key-name":
			cands = []string{in.keyName}
		case "reservation-id":
			cands = []string{in.reservationID}
		case "client-token":
			cands = []string{in.clientToken}
		case "subnet-id", "network-interface.subnet-id":
			cands = []string{in.subnet.id}
		case "vpc-id", "network-interface.vpc-id":
			cands = []string{in.subnet.vpcID}
		case "availability-zone":
			cands = []string{in.subnet.az}
		case "private-ip-address":
			if e := in.primaryENI(); e != nil && len(e.ips) > 0 {
				cands = []string{e.ips[0].String()}
			}
		case "ip-address":
			if e := in.primaryENI(); e != nil && len(e.ips) > 0 {
				if pub, _ := s.publicFor(e, e.ips[0]); pub.IsValid() {
					cands = []string{pub.String()}
				}
			}
		case "network-interface.addresses.private-ip-address":
			for _, e := range in.enis {
				for _, a := range e.ips {
					cands = append(cands, a.String())
				}
			}
		case "network-interface.network-interface-id":
			for _, e := range in.enis {
				cands = append(cands, e.id)
			}
		case "instance.group-id", "group-id", "network-interface.group-id":
			for _, e := range in.enis {
				cands = append(cands, e.groups...)
			}
		case "iam-instance-profile.arn":
			if in.iamProf != "" {
				cands = []string{s.iamProfileArn(in.iamProf)}
			}
		default:
			return false, unknownFilter(f.name)
		}
		if !anyMatch(f.values, cands...) {
			return false, nil
		}
	}
	return true, nil
}

func (s *Server) iamProfileArn(nameOrArn string) string {
	if strings.HasPrefix(nameOrArn, "arn:") {
		return nameOrArn
	}
	return "arn:aws:iam::" + s.cfg.AccountID + ":instance-profile/" + nameOrArn
}

func (s *Server) renderReservation(id string, ins []*instance) xReservation {
	r := xReservation{ReservationID: id, OwnerID: s.cfg.AccountID}
	for _, in := range ins {
		r.Instances = append(r.Instances, s.renderInstance(in))
	}
	return r
}

func (s *Server) renderInstance(in *instance) xInstance {
	x := xInstance{
		InstanceID: in.id, ImageID: in.imageID,
		State:   xState{Code: stateCodes[in.state], Name: in.state},
		KeyName: in.keyName, AmiLaunchIndex: in.launchIndex, InstanceType: in.itype,
		LaunchTime:  in.launch.Format("2006-01-02T15:04:05.000Z"),
		Placement:   xPlacement{AvailabilityZone: in.subnet.az, Tenancy: "default"},
		ClientToken: in.clientToken, Tags: xTags(in.tags),
		Architecture: "x86_64", RootDeviceType: "ebs", RootDeviceName: "/dev/xvda",
		VirtualizationType: "hvm", Hypervisor: "xen",
	}
	if in.iamProf != "" {
		x.IamInstanceProfile = &xIamProfile{Arn: s.iamProfileArn(in.iamProf), ID: in.iamProfID}
	}
	x.MetadataOptions = in.metadata.render("applied")
	if in.state == stateTerminated || in.state == stateShuttingDown {
		x.Reason = "User initiated (" + in.terminatedAt.Format("2006-01-02 15:04:05 MST") + ")"
		x.StateReason = &xStateReason{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}
	}
	if in.state == stateTerminated {
		return x // EC2 drops network details of terminated instances
	}
	x.SubnetID, x.VpcID = in.subnet.id, in.subnet.vpcID
	x.BlockDevices = []xBlockDevice{{DeviceName: "/dev/xvda", Ebs: xEbs{VolumeID: in.volumeID, Status: "attached", AttachTime: x.LaunchTime, DeleteOnTermination: true}}}
	if e := in.primaryENI(); e != nil {
		x.SourceDestCheck = e.srcDstCheck
		if len(e.ips) > 0 {
			x.PrivateIPAddress = e.ips[0].String()
			x.PrivateDNSName = s.privateDNS(e.ips[0])
			if pub, _ := s.publicFor(e, e.ips[0]); pub.IsValid() {
				x.IPAddress = pub.String()
				x.DNSName = s.publicDNS(pub)
			}
		}
		for _, g := range e.groups {
			x.Groups = append(x.Groups, s.xGroup(g))
		}
	}
	for _, e := range in.enis {
		x.NetworkInterfaces = append(x.NetworkInterfaces, s.renderInstanceENI(e))
	}
	return x
}

func (s *Server) xGroup(id string) xGroup {
	g := xGroup{GroupID: id}
	if sg := s.groups[id]; sg != nil {
		g.GroupName = sg.name
	}
	return g
}

func (s *Server) association(e *eni, a netip.Addr, full bool) *xAssociation {
	pub, eip := s.publicFor(e, a)
	if !pub.IsValid() {
		return nil
	}
	x := &xAssociation{PublicIP: pub.String(), PublicDNSName: s.publicDNS(pub), IPOwnerID: "amazon"}
	if eip != nil {
		x.IPOwnerID = s.cfg.AccountID
		if full {
			x.AllocationID, x.AssociationID = eip.allocID, eip.assocID
		}
	}
	return x
}

func (s *Server) privateIPs(e *eni, full bool) []xPrivateIP {
	var out []xPrivateIP
	for i, a := range e.ips {
		out = append(out, xPrivateIP{PrivateIPAddress: a.String(), PrivateDNSName: s.privateDNS(a), Primary: i == 0, Association: s.association(e, a, full)})
	}
	return out
}

func (s *Server) renderInstanceENI(e *eni) xInstanceENI {
	x := xInstanceENI{
		NetworkInterfaceID: e.id, SubnetID: e.subnet.id, VpcID: e.subnet.vpcID, Description: e.description,
		OwnerID: s.cfg.AccountID, Status: "in-use", MacAddress: e.mac, SourceDestCheck: e.srcDstCheck,
		Attachment: xInstanceAttachment{
			AttachmentID: e.attachmentID, DeviceIndex: e.deviceIndex, Status: "attached",
			AttachTime: e.inst.launch.Format("2006-01-02T15:04:05.000Z"), DeleteOnTermination: e.deleteOnTerm,
		},
		PrivateIPs:    s.privateIPs(e, false),
		InterfaceType: "interface",
	}
	if len(e.ips) > 0 {
		x.PrivateIPAddress = e.ips[0].String()
		x.PrivateDNSName = s.privateDNS(e.ips[0])
		x.Association = s.association(e, e.ips[0], false)
	}
	for _, g := range e.groups {
		x.Groups = append(x.Groups, s.xGroup(g))
	}
	return x
}

func (s *Server) terminateInstances(p params) (any, error) {
	targets, err := s.stateChangeTargets(p)
	if err != nil {
		return nil, err
	}
	for _, in := range targets {
		if in.disableAPITermination {
			return nil, errorf("OperationNotPermitted", "The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", in.id)
		}
	}
	resp := &terminateInstancesResp{}
	for _, in := range targets {
		prev := in.state
		if in.state != stateShuttingDown && in.state != stateTerminated {
			in.state = stateShuttingDown
			in.terminatedAt = time.Now().UTC()
			// The instance keeps its addresses until it has shut down: until its owner says so,
			// or until ShutdownDescribes describes have seen it.
			in.shutdownLeft = s.cfg.ShutdownDescribes
			if s.owned() {
				s.cfg.Lifecycle.ShuttingDown(s.snapshotOf(in))
			}
		}
		resp.Instances = append(resp.Instances, stateChange(in, prev))
	}
	return resp, nil
}

func (s *Server) describeInstanceTypes(p params) (any, error) {
	names := p.list("InstanceType")
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	var types []*instanceType
	if len(names) > 0 {
		var missing []string
		for _, n := range names {
			if t := s.itypes[n]; t != nil {
				types = append(types, t)
			} else {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, errorf(codeInvalidInstanceType, "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
		}
	} else {
		for _, n := range slices.Sorted(maps.Keys(s.itypes)) {
			types = append(types, s.itypes[n])
		}
	}
	resp := &describeInstanceTypesResp{}
	for _, t := range types {
		keep := true
		for _, f := range filters {
			switch f.name {
			case "instance-type":
				keep = keep && anyMatch(f.values, t.name)
			case "current-generation":
				keep = keep && anyMatch(f.values, strconv.FormatBool(t.currentGen))
			case "network-info.ipv4-addresses-per-interface":
				keep = keep && anyMatch(f.values, strconv.Itoa(t.ipv4PerENI))
			case "network-info.maximum-network-interfaces":
				keep = keep && anyMatch(f.values, strconv.Itoa(t.maxENIs))
			default:
				return nil, unknownFilter(f.name)
			}
		}
		if !keep {
			continue
		}
		x := xInstanceType{InstanceType: t.name, CurrentGeneration: t.currentGen, NetworkInfo: xNetworkInfo{
			NetworkPerformance: t.netPerfString, MaximumNetworkInterfaces: t.maxENIs, MaximumNetworkCards: 1,
			Ipv4AddressesPerInterface: t.ipv4PerENI, Ipv6AddressesPerInterface: t.ipv6PerENI, Ipv6Supported: true, EnaSupport: "required",
		}}
		if t.vcpus > 0 {
			x.VCPUInfo = &xVCPU{DefaultVCpus: t.vcpus}
		}
		if t.memoryMiB > 0 {
			x.MemoryInfo = &xMemory{SizeInMiB: t.memoryMiB}
		}
		resp.InstanceTypes = append(resp.InstanceTypes, x)
	}
	return resp, nil
}

func (s *Server) describeInstanceAttribute(p params) (any, error) {
	in, err := s.instanceByID(p.str("InstanceId"), true)
	if err != nil {
		return nil, err
	}
	attr := p.str("Attribute")
	if attr == "" {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter Attribute")
	}
	resp := &describeInstanceAttributeResp{InstanceID: in.id}
	str := func(v string) *xAttrValue {
		if v == "" {
			return &xAttrValue{}
		}
		return &xAttrValue{Value: &v}
	}
	primary := in.primaryENI()
	switch attr {
	case "userData":
		resp.UserData = str(in.userData)
	case "instanceType":
		resp.InstanceType = str(in.itype)
	case "instanceInitiatedShutdownBehavior":
		resp.ShutdownBehavior = str("stop")
	case "rootDeviceName":
		resp.RootDeviceName = str("/dev/xvda")
	case "disableApiTermination":
		resp.DisableAPITermination = &xAttrBool{Value: in.disableAPITermination}
	case "disableApiStop":
		resp.DisableAPIStop = &xAttrBool{}
	case "ebsOptimized":
		resp.EbsOptimized = &xAttrBool{}
	case "enaSupport":
		resp.EnaSupport = &xAttrBool{Value: true}
	case "sourceDestCheck":
		resp.SourceDestCheck = &xAttrBool{Value: primary == nil || primary.srcDstCheck}
	case "groupSet":
		if primary != nil {
			for _, g := range primary.groups {
				resp.Groups = append(resp.Groups, s.xGroup(g))
			}
		}
	case "kernel", "ramdisk", "blockDeviceMapping", "productCodes", "sriovNetSupport", "enclaveOptions":
		return nil, errorf(codeUnsupportedOperation, "ec2sim does not model the instance attribute %s", attr)
	default:
		return nil, errorf(codeInvalidParameterValue, "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	return resp, nil
}

func (s *Server) modifyInstanceAttribute(p params) (any, error) {
	in, err := s.instanceByID(p.str("InstanceId"), true)
	if err != nil {
		return nil, err
	}
	if in.state == stateTerminated || in.state == stateShuttingDown {
		return nil, errorf(codeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be modified.", in.id)
	}
	attr := p.str("Attribute")
	groups := p.list("GroupId")
	if attr == "groupSet" && len(groups) == 0 && p.str("Value") != "" {
		groups = []string{p.str("Value")}
	}
	changed := false
	if len(groups) > 0 {
		if len(in.enis) > 1 {
			return nil, errorf(codeInvalidInstanceID, "There are multiple interfaces attached to instance '%s'. Please specify an interface ID for the operation instead.", in.id)
		}
		resolved, err := s.resolveGroups(in.subnet, groups, nil)
		if err != nil {
			return nil, err
		}
		in.primaryENI().groups = resolved
		changed = true
	}
	if p.has("SourceDestCheck.Value") {
		v, err := p.boolean("SourceDestCheck.Value", true)
		if err != nil {
			return nil, err
		}
		in.primaryENI().srcDstCheck = v
		changed = true
	}
	if p.has("DisableApiTermination.Value") {
		v, err := p.boolean("DisableApiTermination.Value", false)
		if err != nil {
			return nil, err
		}
		in.disableAPITermination = v
		changed = true
	}
	if p.has("UserData.Value") || p.has("InstanceType.Value") || attr == "userData" || attr == "instanceType" {
		// EC2 changes these only on a stopped instance.
		if in.state != stateStopped {
			return nil, errorf(codeIncorrectInstanceState, "The instance '%s' is not in the 'stopped' state.", in.id)
		}
		if err := s.modifyStopped(in, p, attr); err != nil {
			return nil, err
		}
		changed = true
	}
	if !changed {
		return nil, errorf(codeMissingParameter, "The request must contain an attribute to modify")
	}
	return &returnResp{Return: true}, nil
}

// modifyStopped changes the user data or the instance type of a stopped instance.
func (s *Server) modifyStopped(in *instance, p params, attr string) error {
	if p.has("UserData.Value") || attr == "userData" {
		v := p.str("UserData.Value")
		if !p.has("UserData.Value") {
			v = p.str("Value")
		}
		if v != "" {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return errorf(codeInvalidParameterValue, "Invalid BASE64 encoding of user data.")
			}
			if len(raw) > maxUserData {
				return errorf(codeInvalidParameterValue, "User data is limited to %d bytes.", maxUserData)
			}
		}
		in.userData = v
	}
	if p.has("InstanceType.Value") || attr == "instanceType" {
		v := p.str("InstanceType.Value")
		if !p.has("InstanceType.Value") {
			v = p.str("Value")
		}
		it := s.itypes[v]
		if it == nil {
			return errorf(codeInvalidInstanceType, "The instance type '%s' does not exist", v)
		}
		for _, e := range in.enis {
			if len(e.ips) > it.ipv4PerENI {
				return errorf(codePrivateIPLimitExceeded, "Instance type %s supports %d IPv4 addresses per network interface; %s has %d.", it.name, it.ipv4PerENI, e.id, len(e.ips))
			}
		}
		if len(in.enis) > it.maxENIs {
			return errorf(codeAttachmentLimitExceeded, "Instance type %s supports %d network interfaces; the instance has %d.", it.name, it.maxENIs, len(in.enis))
		}
		in.itype = it.name
	}
	return nil
}
