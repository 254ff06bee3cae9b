package wire

import "testing"

func TestShouldReconnect(t *testing.T) {
	cases := map[int]bool{
		1000: false, 1001: true, 1006: true, 1008: false, 1009: false, 1011: true, 1012: true, 1013: true,
		CloseDraining: true, CloseShutdown: true, CloseUpstreamUnavailable: true, CloseRebalance: true, 4499: true,
		ClosePolicy: false, 4999: false,
	}
	for code, want := range cases {
		if got := ShouldReconnect(code); got != want {
			t.Errorf("ShouldReconnect(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestTokenFromProtocols(t *testing.T) {
	if got := TokenFromProtocols([]string{"wsdirect", " wsdirect.token.a.b.c"}); got != "a.b.c" {
		t.Fatalf("got %q", got)
	}
	if got := TokenFromProtocols([]string{"wsdirect", "chat"}); got != "" {
		t.Fatalf("got %q", got)
	}
}
