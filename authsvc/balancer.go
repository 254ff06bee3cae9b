package authsvc

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

// Balancer is the NodePicker for nodes behind a load balancer that picks
// the node itself, such as HAProxy in front of nodes that share one
// -token-audience. Every assignment names the balancer: the client
// connects to its URL, with a token for the audience every node behind it
// accepts. Auth still checks the credentials, limits logins and a user's
// outstanding tokens, and answers 503 no_capacity while no node in its
// view could take a connection, as when it picks nodes itself.
type Balancer struct {
	m cluster.Member
}

// NewBalancer returns a Balancer for the balancer's WebSocket URL (ws:// or
// wss://, path /ws, the path nodes serve) and the audience its nodes
// accept.
func NewBalancer(rawURL, audience string) (*Balancer, error) {
	if audience == "" {
		return nil, errors.New("authsvc: a balancer needs the token audience its nodes accept")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("authsvc: balancer URL: %w", err)
	}
	port := 0
	switch u.Scheme {
	case "wss":
		port = 443
	case "ws":
		port = 80
	default:
		return nil, fmt.Errorf("authsvc: balancer URL %q: scheme must be ws or wss", rawURL)
	}
	if u.Path != "/ws" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("authsvc: balancer URL %q: want scheme://host[:port]/ws, the path the nodes serve", rawURL)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("authsvc: balancer URL %q has no host", rawURL)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("authsvc: balancer URL %q: bad port", rawURL)
		}
		port = n
	}
	m := cluster.Member{Name: audience, Role: cluster.RoleNode, Alive: true, Scheme: u.Scheme, Addr: host, Port: port}
	return &Balancer{m: m}, nil
}

// Pick names the balancer while some node in the view could take a
// connection.
func (b *Balancer) Pick(nodes []cluster.Member, _ time.Time) (cluster.Member, bool) {
	for _, n := range nodes {
		if Candidate(n, 0) {
			return b.m, true
		}
	}
	return cluster.Member{}, false
}

// Pending is always 0: the balancer, not auth, spreads the connections.
func (b *Balancer) Pending(string, time.Time) int { return 0 }

// Audience is the audience tokens are minted for.
func (b *Balancer) Audience() string { return b.m.Name }

// URL is the URL clients are sent to.
func (b *Balancer) URL() string { return b.m.URL() }
