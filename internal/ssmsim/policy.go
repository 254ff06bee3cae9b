package ssmsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Policy is an IAM identity policy: the JSON document users attach to a role
// ({"Version": "2012-10-17", "Statement": [...]}), parsed by ParsePolicy. A
// request is allowed when some Allow statement matches it and no Deny
// statement does, as in IAM; everything else is denied.
type Policy struct {
	statements []statement
}

type statement struct {
	sid       string
	allow     bool
	actions   []string // lower case, may hold * and ?
	resources []string
	// conditions: operator -> context key -> accepted values.
	conditions map[string]map[string][]string
}

// Condition operators the emulator evaluates. Others are refused by
// ParsePolicy rather than silently ignored, so a policy that a test relies on
// cannot be more permissive here than in IAM.
var conditionOperators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringLike": true, "StringNotLike": true,
}

// ParsePolicy parses an IAM policy document. It accepts what IAM accepts for
// the parts the emulator evaluates: Effect, Action and Resource as a string
// or a list, Sid, and Condition with the operators StringEquals,
// StringNotEquals, StringLike and StringNotLike (values as a string or a
// list). NotAction, NotResource, Principal and other operators are errors.
func ParsePolicy(doc []byte) (*Policy, error) {
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if raw.Version != "2012-10-17" && raw.Version != "2008-10-17" {
		return nil, fmt.Errorf("policy: Version %q, want \"2012-10-17\"", raw.Version)
	}
	var stmts []json.RawMessage
	if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
		// A single statement may stand without a list.
		stmts = []json.RawMessage{raw.Statement}
	}
	if len(stmts) == 0 {
		return nil, errors.New("policy: no Statement")
	}
	p := &Policy{}
	for i, rs := range stmts {
		var s struct {
			Sid       string                                `json:"Sid"`
			Effect    string                                `json:"Effect"`
			Action    stringOrList                          `json:"Action"`
			Resource  stringOrList                          `json:"Resource"`
			Condition map[string]map[string]json.RawMessage `json:"Condition"`
		}
		d := json.NewDecoder(bytes.NewReader(rs))
		d.DisallowUnknownFields()
		if err := d.Decode(&s); err != nil {
			return nil, fmt.Errorf("policy: statement %d: %w", i, err)
		}
		st := statement{sid: s.Sid}
		switch s.Effect {
		case "Allow":
			st.allow = true
		case "Deny":
		default:
			return nil, fmt.Errorf("policy: statement %d: Effect %q, want Allow or Deny", i, s.Effect)
		}
		if len(s.Action) == 0 || len(s.Resource) == 0 {
			return nil, fmt.Errorf("policy: statement %d: Action and Resource are required", i)
		}
		for _, a := range s.Action {
			if a != "*" && !strings.Contains(a, ":") {
				return nil, fmt.Errorf("policy: statement %d: action %q is not service:Action", i, a)
			}
			st.actions = append(st.actions, strings.ToLower(a))
		}
		st.resources = s.Resource
		if len(s.Condition) > 0 {
			st.conditions = map[string]map[string][]string{}
		}
		for op, keys := range s.Condition {
			if !conditionOperators[op] {
				return nil, fmt.Errorf("policy: statement %d: condition operator %q is not supported by the emulator", i, op)
			}
			st.conditions[op] = map[string][]string{}
			for k, v := range keys {
				var vals stringOrList
				if err := json.Unmarshal(v, &vals); err != nil {
					return nil, fmt.Errorf("policy: statement %d: condition %s %s: %w", i, op, k, err)
				}
				// Condition keys are case-insensitive in IAM.
				st.conditions[op][strings.ToLower(k)] = vals
			}
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

// MustParsePolicy is ParsePolicy for documents written into tests; it panics
// on an error.
func MustParsePolicy(doc string) *Policy {
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		panic(err)
	}
	return p
}

// stringOrList is IAM's "a string or a list of strings".
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = many
	return nil
}

// decision is the outcome of evaluating a request against a policy.
type decision int

const (
	implicitDeny decision = iota
	allowed
	explicitDeny
)

// evaluate decides action on resource with the request context keys ctx
// (keys in lower case).
func (p *Policy) evaluate(action, resource string, ctx map[string]string) decision {
	action = strings.ToLower(action)
	d := implicitDeny
	for _, st := range p.statements {
		if !st.matches(action, resource, ctx) {
			continue
		}
		if !st.allow {
			return explicitDeny
		}
		d = allowed
	}
	return d
}

func (st statement) matches(action, resource string, ctx map[string]string) bool {
	ok := false
	for _, a := range st.actions {
		if wildcardMatch(a, action) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	ok = false
	for _, r := range st.resources {
		if wildcardMatch(r, resource) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	// Every operator, and every key within it, must hold.
	for op, keys := range st.conditions {
		for k, want := range keys {
			got, present := ctx[k]
			if !conditionHolds(op, got, present, want) {
				return false
			}
		}
	}
	return true
}

// conditionHolds evaluates one condition key. As in IAM, a key absent from
// the request fails the positive operators and satisfies the negated ones.
func conditionHolds(op, got string, present bool, want []string) bool {
	anyMatch := func(like bool) bool {
		for _, w := range want {
			if (like && wildcardMatch(w, got)) || (!like && w == got) {
				return true
			}
		}
		return false
	}
	switch op {
	case "StringEquals":
		return present && anyMatch(false)
	case "StringLike":
		return present && anyMatch(true)
	case "StringNotEquals":
		return !present || !anyMatch(false)
	case "StringNotLike":
		return !present || !anyMatch(true)
	}
	return false
}

// wildcardMatch matches IAM's wildcards: '*' any run of characters ('/' and
// ':' included, unlike path.Match), '?' exactly one.
func wildcardMatch(pattern, s string) bool {
	// Iterative matcher with backtracking to the last '*'.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Actions lists the actions a policy mentions, sorted; tests use it to show
// what a module's policy grants.
func (p *Policy) Actions() []string {
	seen := map[string]bool{}
	for _, st := range p.statements {
		for _, a := range st.actions {
			seen[a] = true
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// parameterARN is the ARN of a parameter name ("/a/b" or "a").
func parameterARN(region, account, name string) string {
	return "arn:aws:ssm:" + region + ":" + account + ":parameter/" + strings.TrimPrefix(name, "/")
}
