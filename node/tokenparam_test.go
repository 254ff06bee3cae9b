package node

import (
	"net/url"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestTokenParamIsQueryGet: the token is read from the query exactly as
// url.URL.Query().Get reads it, for every shape of query.
func TestTokenParamIsQueryGet(t *testing.T) {
	p := wire.TokenQueryParam
	for _, q := range []string{
		"", p, p + "=", p + "=abc.def-_", p + "=a%2Bb+c", p + "=%zz", p + "%3Dx=y",
		"%74oken=x", p + "x=y", "x=" + p, "=abc", p + "=a=b",
		p + "=a&" + p + "=b", "x=1&" + p + "=b", p + "=a;b=c", p + "=a&x=%zz", "&&" + p + "=c", p + "=a;",
	} {
		u := &url.URL{Path: wire.WSPath, RawQuery: q}
		if got, want := tokenParam(u), u.Query().Get(p); got != want {
			t.Errorf("query %q: tokenParam = %q, Query().Get = %q", q, got, want)
		}
	}
}
