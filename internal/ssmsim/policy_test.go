package ssmsim

import (
	"strings"
	"testing"
)

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "arn:aws:ssm:us-east-1:1:parameter/a/b", true},
		{"arn:aws:ssm:*:*:parameter/wsdirect/prod/*", "arn:aws:ssm:us-east-1:1:parameter/wsdirect/prod/gossip-key", true},
		{"arn:aws:ssm:*:*:parameter/wsdirect/prod/*", "arn:aws:ssm:us-east-1:1:parameter/wsdirect/prod", false},
		{"arn:aws:ssm:*:*:parameter/wsdirect/prod/*", "arn:aws:ssm:us-east-1:1:parameter/wsdirect/production/x", false},
		{"ssm:getparameter*", "ssm:getparameters", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func TestParsePolicyRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":     `{`,
		"version":      `{"Version":"2020","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
		"effect":       `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`,
		"NotAction":    `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"ssm:*","Resource":"*"}]}`,
		"no resource":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*"}]}`,
		"bad action":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"GetParameter","Resource":"*"}]}`,
		"operator":     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"x"}}}]}`,
		"no statement": `{"Version":"2012-10-17","Statement":[]}`,
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil || !strings.HasPrefix(err.Error(), "policy: ") {
			t.Errorf("%s: ParsePolicy = %v, want an error", name, err)
		}
	}
}

func TestPolicyEvaluate(t *testing.T) {
	p := MustParsePolicy(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":["SSM:GetParameter"],"Resource":["arn:aws:ssm:*:*:parameter/a/*"]},
	  {"Effect":"Deny","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/a/secret"},
	  {"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:CallerAccount":"999999999999"}}}]}`)
	arn := func(n string) string { return "arn:aws:ssm:us-east-1:123456789012:parameter/" + n }
	for _, tc := range []struct {
		action, resource string
		ctx              map[string]string
		want             decision
	}{
		{"ssm:GetParameter", arn("a/b"), nil, allowed}, // actions match case-insensitively
		{"ssm:GetParameter", arn("a/secret"), nil, explicitDeny},
		{"ssm:GetParameter", arn("b/c"), nil, implicitDeny},
		{"ssm:PutParameter", arn("a/b"), nil, implicitDeny},
		{"kms:Decrypt", "k", map[string]string{"kms:calleraccount": "123456789012"}, allowed},
		{"kms:Decrypt", "k", map[string]string{"kms:calleraccount": "999999999999"}, implicitDeny},
		{"kms:Decrypt", "k", nil, allowed}, // a missing key satisfies the negated operator
	} {
		if got := p.evaluate(tc.action, tc.resource, tc.ctx); got != tc.want {
			t.Errorf("%s on %s %v = %v, want %v", tc.action, tc.resource, tc.ctx, got, tc.want)
		}
	}
	if a := strings.Join(p.Actions(), ","); a != "kms:decrypt,ssm:getparameter" {
		t.Errorf("Actions = %s", a)
	}
}
