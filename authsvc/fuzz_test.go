package authsvc

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// FuzzConnectRequest feeds arbitrary bodies to the /v1/connect decoder. It
// must not panic; what it accepts must be valid UTF-8 and survive a round
// trip; and its errors must never echo the body (a password would reach
// the logs and the response).
func FuzzConnectRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"username":"alice","password":"s3cret"}`,
		`{"username":"a","username":"b"}`, `{"Username":"a"}`, `{"username":"\ud800"}`,
		"{\"password\":\"\xff\"}", `{"username":"a"} {}`, `[`, `{"password":1}`,
		`{"username":"a","password":"b","reason":"rebalance"}`, `{"reason":"x"}`, `{"reason":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeConnectRequest(body)
		if err != nil {
			if req.Username != "" || req.Password != "" || req.Reason != "" {
				t.Fatalf("error with a half-filled request: %+v", req)
			}
			// The message is the prefix and one of a fixed set of reasons:
			// nothing of the body is in it.
			reason, ok := strings.CutPrefix(err.Error(), ConnectRequestErrorPrefix)
			if !ok || !slices.Contains(connectRequestReasons, reason) {
				t.Fatalf("error %q is not one of the fixed reasons", err)
			}
			return
		}
		if req.Reason != "" && req.Reason != wire.ReasonRebalance {
			t.Fatalf("accepted reason %q", req.Reason)
		}
		if !utf8.ValidString(req.Username) || !utf8.ValidString(req.Password) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := DecodeConnectRequest(again); err != nil || back != req {
			t.Fatalf("round trip: %+v → %s → %+v, %v", req, again, back, err)
		}
	})
}

// FuzzParseUsers feeds arbitrary files to the users-file parser. It must
// not panic, and a table it accepts holds only names it can mint tokens for
// and hashes bcrypt reads, and renders back to a file that parses to the
// same table.
func FuzzParseUsers(f *testing.F) {
	good := "$2a$04$" + strings.Repeat("a", 53)
	for _, s := range []string{
		"", "# c\n\n", "alice:" + good, "alice:" + good + "\nbob:" + strings.Replace(good, "$2a$", "$2y$", 1),
		"alice:" + good + "\nalice:" + good, ":" + good, "al ice:" + good, "alice:$apr1$x$y",
		"alice:$2a$99$" + strings.Repeat("a", 53), "al\xffice:" + good, "a\x00:" + good, strings.Repeat("x", 70000),
		"  alice:" + good + "  \r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		users, maxCost, err := ParseUsers(data)
		if err != nil {
			if users != nil {
				t.Fatal("an error with a table")
			}
			return
		}
		var out bytes.Buffer
		for name, h := range users {
			if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, ": \t\r\n\x00") {
				t.Fatalf("accepted user name %q", name)
			}
			c, err := bcrypt.Cost(h)
			if err != nil || c > maxCost {
				t.Fatalf("user %q: cost %d, %v (max %d)", name, c, err, maxCost)
			}
			out.WriteString(name + ":" + string(h) + "\n")
		}
		again, maxAgain, err := ParseUsers(out.Bytes())
		if err != nil || len(again) != len(users) || (len(users) > 0 && maxAgain != maxCost) {
			t.Fatalf("round trip: %d users → %d, %v", len(users), len(again), err)
		}
		for name, h := range users {
			if !bytes.Equal(again[name], h) {
				t.Fatalf("round trip changed %q", name)
			}
		}
		if _, err := newUserTable(users); err != nil {
			t.Fatalf("a parsed table does not load: %v", err)
		}
	})
}
