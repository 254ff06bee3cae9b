package ec2sim

import "strconv"

// Instance metadata service (IMDS) options of an instance, as RunInstances
// (MetadataOptions.*) and ModifyInstanceMetadataOptions set them and
// DescribeInstances shows them.
type metadataOptions struct {
	httpTokens           string // "optional" (IMDSv1 allowed) or "required" (IMDSv2 only)
	httpEndpoint         string // "enabled" or "disabled"
	hopLimit             int    // 1..64: how many network hops the PUT token response may travel
	httpProtocolIPv6     string // "enabled" or "disabled"
	instanceMetadataTags string // "enabled" or "disabled"
}

// MetadataOptions is a snapshot of an instance's metadata options.
type MetadataOptions struct {
	HTTPTokens              string
	HTTPEndpoint            string
	HTTPPutResponseHopLimit int
	HTTPProtocolIPv6        string
	InstanceMetadataTags    string
}

// defaultMetadataOptions is what EC2 gives an instance launched without
// MetadataOptions from an AMI that does not ask for IMDSv2 (and with no
// account-level default): IMDSv1 still allowed, one hop.
func defaultMetadataOptions() metadataOptions {
	return metadataOptions{httpTokens: "optional", httpEndpoint: "enabled", hopLimit: 1, httpProtocolIPv6: "disabled", instanceMetadataTags: "disabled"}
}

func (m metadataOptions) snapshot() MetadataOptions {
	return MetadataOptions{HTTPTokens: m.httpTokens, HTTPEndpoint: m.httpEndpoint, HTTPPutResponseHopLimit: m.hopLimit,
		HTTPProtocolIPv6: m.httpProtocolIPv6, InstanceMetadataTags: m.instanceMetadataTags}
}

// applyMetadataOptions overlays the options found in p under prefix
// ("MetadataOptions." for RunInstances, "" for
// ModifyInstanceMetadataOptions) on m, validating each as EC2 does. It
// reports whether any option was given.
func applyMetadataOptions(p params, prefix string, m metadataOptions) (metadataOptions, bool, error) {
	given := false
	enum := func(name string, dst *string, allowed ...string) error {
		if !p.has(prefix + name) {
			return nil
		}
		given = true
		v := p.str(prefix + name)
		for _, a := range allowed {
			if v == a {
				*dst = v
				return nil
			}
		}
		return errorf(codeInvalidParameterValue, "Value (%s) for parameter %s is invalid. Valid values: %v", v, name, allowed)
	}
	if err := enum("HttpTokens", &m.httpTokens, "optional", "required"); err != nil {
		return m, false, err
	}
	if err := enum("HttpEndpoint", &m.httpEndpoint, "enabled", "disabled"); err != nil {
		return m, false, err
	}
	if err := enum("HttpProtocolIpv6", &m.httpProtocolIPv6, "enabled", "disabled"); err != nil {
		return m, false, err
	}
	if err := enum("InstanceMetadataTags", &m.instanceMetadataTags, "enabled", "disabled"); err != nil {
		return m, false, err
	}
	if key := prefix + "HttpPutResponseHopLimit"; p.has(key) {
		given = true
		n, err := strconv.Atoi(p.str(key))
		if err != nil || n < 1 || n > 64 {
			return m, false, errorf(codeInvalidParameterValue, "Value (%s) for parameter HttpPutResponseHopLimit is invalid. Valid values are integers from 1 to 64.", p.str(key))
		}
		m.hopLimit = n
	}
	return m, given, nil
}

// xMetadataOptions is the instanceMetadataOptions/metadataOptions element.
type xMetadataOptions struct {
	State                   string `xml:"state"`
	HTTPTokens              string `xml:"httpTokens"`
	HTTPPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint            string `xml:"httpEndpoint"`
	HTTPProtocolIPv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

func (m metadataOptions) render(state string) *xMetadataOptions {
	return &xMetadataOptions{State: state, HTTPTokens: m.httpTokens, HTTPPutResponseHopLimit: m.hopLimit,
		HTTPEndpoint: m.httpEndpoint, HTTPProtocolIPv6: m.httpProtocolIPv6, InstanceMetadataTags: m.instanceMetadataTags}
}

type modifyMetadataOptionsResp struct {
	meta
	InstanceID string            `xml:"instanceId"`
	Options    *xMetadataOptions `xml:"instanceMetadataOptions"`
}

// modifyInstanceMetadataOptions changes the options of a running (or
// pending) instance in place, as EC2 allows. The answer shows state
// "pending"; DescribeInstances shows "applied", as EC2 does once the change
// has reached the host.
func (s *Server) modifyInstanceMetadataOptions(p params) (any, error) {
	in, err := s.instanceByID(p.str("InstanceId"), true)
	if err != nil {
		return nil, err
	}
	if in.state == stateTerminated || in.state == stateShuttingDown {
		return nil, errorf(codeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be modified.", in.id)
	}
	m, given, err := applyMetadataOptions(p, "", in.metadata)
	if err != nil {
		return nil, err
	}
	if !given {
		return nil, errorf(codeInvalidParameterCombination, "At least one of HttpTokens, HttpPutResponseHopLimit, HttpEndpoint, HttpProtocolIpv6 or InstanceMetadataTags must be specified.")
	}
	in.metadata = m
	return &modifyMetadataOptionsResp{InstanceID: in.id, Options: m.render("pending")}, nil
}
