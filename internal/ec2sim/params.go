package ec2sim

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params reads the flattened EC2 Query encoding produced by the SDK's ec2query serializer:
// scalars as "Name", lists as "Name.1", "Name.2", ..., structures in lists as
// "Name.1.Member", nested lists as "Name.1.Sub.1".
type params struct {
	v url.Values
}

func (p params) has(key string) bool { _, ok := p.v[key]; return ok }

func (p params) str(key string) string { return p.v.Get(key) }

// integer parses key; absent gives def, malformed gives an InvalidParameterValue error.
func (p params) integer(key string, def int) (int, error) {
	s := p.v.Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errorf(codeInvalidParameterValue, "Value (%s) for parameter %s is invalid. Expected an integer.", s, key)
	}
	return n, nil
}

// boolean parses key; absent gives def.
func (p params) boolean(key string, def bool) (bool, error) {
	s := p.v.Get(key)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errorf(codeInvalidParameterValue, "Value (%s) for parameter %s is invalid. Expected a boolean.", s, key)
	}
	return b, nil
}

// list returns the values of prefix.1, prefix.2, ... in index order.
func (p params) list(prefix string) []string {
	var out []string
	for _, i := range p.indices(prefix) {
		if vs, ok := p.v[prefix+"."+strconv.Itoa(i)]; ok && len(vs) > 0 {
			out = append(out, vs[0])
		}
	}
	return out
}

// indices returns the sorted distinct N of every key "prefix.N" or "prefix.N.*".
func (p params) indices(prefix string) []int {
	seen := map[int]bool{}
	pre := prefix + "."
	for k := range p.v {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		if j := strings.IndexByte(rest, '.'); j >= 0 {
			rest = rest[:j]
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// sub returns the view of the structure at prefix.N.
func (p params) sub(prefix string, n int) params {
	pre := prefix + "." + strconv.Itoa(n) + "."
	v := url.Values{}
	for k, vs := range p.v {
		if strings.HasPrefix(k, pre) {
			v[k[len(pre):]] = vs
		}
	}
	return params{v: v}
}

// filter is one Filter.N entry.
type filter struct {
	name   string
	values []string
}

func (p params) filters() ([]filter, error) {
	var out []filter
	for _, i := range p.indices("Filter") {
		f := p.sub("Filter", i)
		name := f.str("Name")
		if name == "" {
			return nil, errorf(codeInvalidParameterValue, "The filter Filter.%d has no Name", i)
		}
		out = append(out, filter{name: name, values: f.list("Value")})
	}
	return out, nil
}

// tagSpec is one TagSpecification.N entry.
type tagSpec struct {
	resourceType string
	tags         []kv
}

type kv struct{ key, value string }

func (p params) tagList(prefix string) []kv {
	var out []kv
	for _, i := range p.indices(prefix) {
		t := p.sub(prefix, i)
		out = append(out, kv{key: t.str("Key"), value: t.str("Value")})
	}
	return out
}

func (p params) tagSpecs() []tagSpec {
	var out []tagSpec
	for _, i := range p.indices("TagSpecification") {
		ts := p.sub("TagSpecification", i)
		out = append(out, tagSpec{resourceType: ts.str("ResourceType"), tags: ts.tagList("Tag")})
	}
	return out
}

// fingerprint is a canonical encoding of every parameter except the ones named, used to
// compare two RunInstances requests that carry the same ClientToken.
func (p params) fingerprint(skip ...string) string {
	keys := make([]string, 0, len(p.v))
	for k := range p.v {
		keep := true
		for _, s := range skip {
			if k == s {
				keep = false
				break
			}
		}
		if keep {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(strings.Join(p.v[k], ",")))
		b.WriteByte('&')
	}
	return b.String()
}

// globMatch matches s against an EC2 filter value, where '*' matches any run of characters
// and '?' exactly one; everything else is literal (unlike path.Match, '/' and '[' are plain).
func globMatch(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	pr, sr := []rune(pattern), []rune(s)
	// Iterative wildcard matching with single-star backtracking.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && (pr[pi] == '?' || pr[pi] == sr[si]):
			pi++
			si++
		case pi < len(pr) && pr[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}

// anyMatch reports whether any filter value matches any of the candidates.
func anyMatch(values []string, candidates ...string) bool {
	for _, v := range values {
		for _, c := range candidates {
			if globMatch(v, c) {
				return true
			}
		}
	}
	return false
}
