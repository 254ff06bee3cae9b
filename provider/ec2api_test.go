package provider

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func TestCheckIPv4Limit(t *testing.T) {
	if err := checkIPv4Limit("t3.micro", 2, 1); err != nil {
		t.Errorf("1 secondary on t3.micro: %v", err)
	}
	err := checkIPv4Limit("t3.micro", 2, 5)
	want := `instance type "t3.micro" allows 2 private IPv4 addresses per network interface (1 primary + 1 secondary), but 5 secondary addresses were requested`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if err := checkIPv4Limit("c5.large", 10, 9); err != nil {
		t.Errorf("9 on c5.large: %v", err)
	}
	if err := checkIPv4Limit("c5.large", 10, 10); err == nil {
		t.Error("10 secondaries on c5.large accepted")
	}
}

func TestOrderIPs(t *testing.T) {
	for _, tc := range []struct {
		prev, actual, want []string
	}{
		{nil, []string{"10.0.1.9", "10.0.1.10", "10.0.1.2"}, []string{"10.0.1.2", "10.0.1.9", "10.0.1.10"}},
		{[]string{"10.0.1.50", "10.0.1.20"}, []string{"10.0.1.20", "10.0.1.50"}, []string{"10.0.1.50", "10.0.1.20"}},
		{[]string{"10.0.1.50", "10.0.1.20"}, []string{"10.0.1.20", "10.0.1.7"}, []string{"10.0.1.20", "10.0.1.7"}},
		{[]string{"10.0.1.50"}, nil, []string{}},
	} {
		if got := orderIPs(tc.prev, tc.actual); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("orderIPs(%v, %v) = %v, want %v", tc.prev, tc.actual, got, tc.want)
		}
	}
}

func TestDiffIPs(t *testing.T) {
	add, remove := diffIPs([]string{"a", "b", "c"}, []string{"d", "c", "a"})
	if !reflect.DeepEqual(add, []string{"d"}) || !reflect.DeepEqual(remove, []string{"b"}) {
		t.Errorf("add %v remove %v", add, remove)
	}
	add, remove = diffIPs([]string{"a", "b"}, []string{"b", "a"})
	if add != nil || remove != nil {
		t.Errorf("reorder only: add %v remove %v", add, remove)
	}
}

func TestTags(t *testing.T) {
	defaults := map[string]string{"team": "rt", "env": "dev"}
	all := mergeTags(defaults, map[string]string{"env": "prod", "Name": "n1"})
	if want := map[string]string{"team": "rt", "env": "prod", "Name": "n1"}; !reflect.DeepEqual(all, want) {
		t.Errorf("merge = %v", all)
	}
	// Default-valued tags are not the resource's own unless it claimed them.
	if got := ownTags(all, defaults, nil); !reflect.DeepEqual(got, map[string]string{"env": "prod", "Name": "n1"}) {
		t.Errorf("own = %v", got)
	}
	if got := ownTags(all, defaults, map[string]string{"team": "rt"}); len(got) != 3 {
		t.Errorf("own with claim = %v", got)
	}
	set, del := diffTags(map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1", "b": "3", "c": "4"})
	if !reflect.DeepEqual(set, map[string]string{"b": "3", "c": "4"}) || del != nil {
		t.Errorf("set %v del %v", set, del)
	}
	_, del = diffTags(map[string]string{"a": "1", "z": "2"}, map[string]string{})
	if !reflect.DeepEqual(del, []string{"a", "z"}) {
		t.Errorf("del %v", del)
	}
}

func TestRetryCodes(t *testing.T) {
	defer func(a, b time.Duration) { pollInitial, pollMax = a, b }(pollInitial, pollMax)
	pollInitial, pollMax = time.Millisecond, 2*time.Millisecond

	pending := &smithy.GenericAPIError{Code: "IncorrectInstanceState"}
	n := 0
	err := retryCodes(context.Background(), "x", []string{"IncorrectInstanceState"}, func(context.Context) error {
		n++
		if n < 3 {
			return pending
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("err %v after %d calls", err, n)
	}

	other := &smithy.GenericAPIError{Code: "InvalidParameterValue"}
	n = 0
	err = retryCodes(context.Background(), "x", []string{"IncorrectInstanceState"}, func(context.Context) error { n++; return other })
	if !errors.Is(err, other) || n != 1 {
		t.Errorf("non-retryable: err %v after %d calls", err, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = retryCodes(ctx, "the thing", []string{"IncorrectInstanceState"}, func(context.Context) error { return pending })
	if err == nil || !strings.Contains(err.Error(), "timed out waiting for the thing") || !strings.Contains(err.Error(), "IncorrectInstanceState") {
		t.Errorf("timeout: %v", err)
	}
}

func TestIsNotFound(t *testing.T) {
	if !isNotFound(&smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound"}) || !isNotFound(errENINotFound) {
		t.Error("NotFound codes not recognised")
	}
	if isNotFound(&smithy.GenericAPIError{Code: "InvalidInstanceID.Malformed"}) || isNotFound(errors.New("x")) {
		t.Error("other errors taken for NotFound")
	}
}

func TestNewClientToken(t *testing.T) {
	a, err := newClientToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newClientToken()
	if a == b || len(a) != 36 || a[14] != '4' {
		t.Errorf("tokens %q %q", a, b)
	}
}
