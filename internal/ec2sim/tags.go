package ec2sim

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

const maxTagsPerResource = 50

// validateTags applies EC2's tag rules: non-empty key up to 128 characters, value up to 256,
// no "aws:" prefix.
func validateTags(tags []kv) error {
	for _, t := range tags {
		switch {
		case t.key == "":
			return errorf(codeInvalidParameterValue, "Tag keys must not be empty.")
		case len(t.key) > 128:
			return errorf(codeInvalidParameterValue, "Tag key exceeds the maximum length of 128 characters: %q", t.key)
		case len(t.value) > 256:
			return errorf(codeInvalidParameterValue, "Tag value exceeds the maximum length of 256 characters for key %q", t.key)
		case strings.HasPrefix(strings.ToLower(t.key), "aws:"):
			return errorf(codeInvalidParameterValue, "Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	return nil
}

func applyTags(dst map[string]string, tags []kv, resourceID string) error {
	n := len(dst)
	for _, t := range tags {
		if _, ok := dst[t.key]; !ok {
			n++
		}
	}
	if n > maxTagsPerResource {
		return errorf(codeTagLimitExceeded, "The maximum number of tags (%d) for resource %s has been reached.", maxTagsPerResource, resourceID)
	}
	for _, t := range tags {
		dst[t.key] = t.value
	}
	return nil
}

func tagsFromSpecs(specs []tagSpec, resourceType string) []kv {
	var out []kv
	for _, s := range specs {
		if s.resourceType == resourceType {
			out = append(out, s.tags...)
		}
	}
	return out
}

func xTags(m map[string]string) []xTag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]xTag, 0, len(keys))
	for _, k := range keys {
		out = append(out, xTag{Key: k, Value: m[k]})
	}
	return out
}

// tagFilter handles the filters every taggable resource shares: tag:<Key>, tag-key, tag-value.
// ok is false when the filter name is not a tag filter.
func tagFilter(tags map[string]string, f filter) (match, ok bool) {
	switch {
	case strings.HasPrefix(f.name, "tag:"):
		v, has := tags[strings.TrimPrefix(f.name, "tag:")]
		return has && anyMatch(f.values, v), true
	case f.name == "tag-key":
		for k := range tags {
			if anyMatch(f.values, k) {
				return true, true
			}
		}
		return false, true
	case f.name == "tag-value":
		for _, v := range tags {
			if anyMatch(f.values, v) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

func unknownFilter(name string) error {
	return errorf(codeInvalidParameterValue, "The filter '%s' is invalid", name)
}

// taggable is a resource that CreateTags, DeleteTags and DescribeTags reach.
type taggable struct {
	id, resourceType string
	tags             map[string]string
}

// lookupTaggable finds the tag map of any resource ID, answering the NotFound code EC2 uses
// for that resource type.
func (s *Server) lookupTaggable(id string) (*taggable, error) {
	prefix, _, _ := strings.Cut(id, "-")
	notFound := func(code, what string) error {
		return errorf(code, "The %s ID '%s' does not exist", what, id)
	}
	switch prefix {
	case "i":
		in := s.instances[id]
		if in == nil || in.state == stateTerminated {
			return nil, notFound(codeInstanceNotFound, "instance")
		}
		return &taggable{id: id, resourceType: "instance", tags: in.tags}, nil
	case "eni":
		e := s.enis[id]
		if e == nil {
			return nil, notFound(codeENINotFound, "networkInterface")
		}
		return &taggable{id: id, resourceType: "network-interface", tags: e.tags}, nil
	case "eipalloc":
		ip := s.eips[id]
		if ip == nil {
			return nil, notFound(codeAllocationNotFound, "allocation")
		}
		return &taggable{id: id, resourceType: "elastic-ip", tags: ip.tags}, nil
	case "subnet":
		sn := s.subnets[id]
		if sn == nil {
			return nil, notFound(codeSubnetNotFound, "subnet")
		}
		return &taggable{id: id, resourceType: "subnet", tags: sn.tags}, nil
	case "vpc":
		v := s.vpcs[id]
		if v == nil {
			return nil, notFound(codeVpcNotFound, "vpc")
		}
		return &taggable{id: id, resourceType: "vpc", tags: v.tags}, nil
	case "sg":
		g := s.groups[id]
		if g == nil {
			return nil, errorf(codeGroupNotFound, "The security group '%s' does not exist", id)
		}
		return &taggable{id: id, resourceType: "security-group", tags: g.tags}, nil
	case "vol":
		for _, in := range s.order {
			if in.volumeID == id && in.state != stateTerminated {
				return &taggable{id: id, resourceType: "volume", tags: in.volumeTags}, nil
			}
		}
		return nil, errorf(codeVolumeNotFound, "The volume '%s' does not exist.", id)
	}
	return nil, errorf(codeInvalidID, "The ID '%s' is not valid", id)
}

func (s *Server) createTags(p params) (any, error) {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter ResourceId")
	}
	tags := p.tagList("Tag")
	if len(tags) == 0 {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter Tag")
	}
	if err := validateTags(tags); err != nil {
		return nil, err
	}
	// All or nothing: resolve every resource before changing any.
	var targets []*taggable
	for _, id := range ids {
		t, err := s.lookupTaggable(id)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		merged := map[string]string{}
		for k, v := range t.tags {
			merged[k] = v
		}
		if err := applyTags(merged, tags, t.id); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		_ = applyTags(t.tags, tags, t.id)
	}
	return &returnResp{Return: true}, nil
}

func (s *Server) deleteTags(p params) (any, error) {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return nil, errorf(codeMissingParameter, "The request must contain the parameter ResourceId")
	}
	var targets []*taggable
	for _, id := range ids {
		t, err := s.lookupTaggable(id)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	// Tag.N.Key with an optional Tag.N.Value: a value (even empty) deletes only on a match;
	// no Tag at all deletes every tag.
	idx := p.indices("Tag")
	for _, t := range targets {
		if len(idx) == 0 {
			for k := range t.tags {
				delete(t.tags, k)
			}
			continue
		}
		for _, i := range idx {
			sub := p.sub("Tag", i)
			k := sub.str("Key")
			if v, ok := t.tags[k]; ok && (!sub.has("Value") || sub.str("Value") == v) {
				delete(t.tags, k)
			}
		}
	}
	return &returnResp{Return: true}, nil
}

func (s *Server) allTaggables() []*taggable {
	var out []*taggable
	for _, in := range s.order {
		if in.state != stateTerminated {
			out = append(out, &taggable{id: in.id, resourceType: "instance", tags: in.tags})
			out = append(out, &taggable{id: in.volumeID, resourceType: "volume", tags: in.volumeTags})
		}
	}
	for _, e := range s.sortedENIs() {
		out = append(out, &taggable{id: e.id, resourceType: "network-interface", tags: e.tags})
	}
	for _, ip := range s.eipOrder {
		out = append(out, &taggable{id: ip.allocID, resourceType: "elastic-ip", tags: ip.tags})
	}
	for _, sn := range s.sortedSubnets() {
		out = append(out, &taggable{id: sn.id, resourceType: "subnet", tags: sn.tags})
	}
	for _, k := range slices.Sorted(maps.Keys(s.vpcs)) {
		out = append(out, &taggable{id: k, resourceType: "vpc", tags: s.vpcs[k].tags})
	}
	for _, g := range s.sortedGroups() {
		out = append(out, &taggable{id: g.id, resourceType: "security-group", tags: g.tags})
	}
	return out
}

func (s *Server) describeTags(p params) (any, error) {
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	resp := &describeTagsResp{}
	for _, t := range s.allTaggables() {
		keys := make([]string, 0, len(t.tags))
		for k := range t.tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d := xTagDescription{ResourceID: t.id, ResourceType: t.resourceType, Key: k, Value: t.tags[k]}
			keep := true
			for _, f := range filters {
				switch f.name {
				case "resource-id":
					keep = keep && anyMatch(f.values, d.ResourceID)
				case "resource-type":
					keep = keep && anyMatch(f.values, d.ResourceType)
				case "key":
					keep = keep && anyMatch(f.values, d.Key)
				case "value":
					keep = keep && anyMatch(f.values, d.Value)
				default:
					return nil, unknownFilter(f.name)
				}
			}
			if keep {
				resp.Tags = append(resp.Tags, d)
			}
		}
	}
	return resp, nil
}
