package cluster

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Role says what a member does in the cluster.
type Role string

const (
	// RoleNode members serve WebSockets and publish their connection count.
	RoleNode Role = "node"
	// RoleAuth members assign clients to nodes; they serve no WebSockets.
	RoleAuth Role = "auth"
)

// Member is one cluster member as the local instance sees it. Static facts
// come from serf tags; Conns is the last count the member published.
type Member struct {
	// Name is the member's unique id; for nodes it is also the token audience.
	Name string
	Role Role
	// Addr is the advertised public address clients dial (an IP or host name).
	Addr string
	// Port is the WebSocket port on Addr.
	Port int
	// Scheme is "wss" or "ws", how clients reach the node.
	Scheme string
	// Cap is the node's connection cap (-max-conns).
	Cap int
	// Zone is an optional placement hint, e.g. the availability zone.
	Zone string
	// Draining nodes take no new assignments.
	Draining bool
	// NotReady nodes take no new assignments either; they are in the
	// cluster but cannot serve yet (e.g. no TLS certificate).
	NotReady bool
	// Alive is false once serf considers the member failed or gone.
	Alive bool
	// Conns is the live WebSocket count the member last published.
	Conns int
	// UpdatedAt is when the local instance last heard Conns, in local time.
	UpdatedAt time.Time
}

// URL is where clients open the WebSocket on this member, with the scheme
// and the address the node advertised: wss://n-3.ws.example.com/ws,
// wss://203.0.113.7:8443/ws. The port is left out when it is the scheme's
// default (443 for wss, 80 for ws).
func (m Member) URL() string {
	scheme := m.Scheme
	if scheme == "" {
		scheme = "ws"
	}
	host := m.Addr
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if !(scheme == "wss" && m.Port == 443) && !(scheme == "ws" && m.Port == 80) {
		host = net.JoinHostPort(m.Addr, strconv.Itoa(m.Port))
	}
	return scheme + "://" + host + "/ws"
}
