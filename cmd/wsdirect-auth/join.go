package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/discover"
)

// joinCluster joins the -join addresses and the -join-ec2-tag instances.
// Addresses without a port get the local gossip port, the cluster-wide
// convention. Finding nobody is not fatal: the first member of a cluster
// has nobody to join, and others will join it.
func joinCluster(ctx context.Context, cl *cluster.Cluster, o *options, gossipPort int, log *slog.Logger) error {
	var addrs []string
	for _, a := range strings.Split(o.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, withPort(a, gossipPort))
		}
	}
	if o.joinEC2Tag != "" {
		key, value, err := discover.ParseTag(o.joinEC2Tag)
		if err != nil {
			return fmt.Errorf("-join-ec2-tag: %w", err)
		}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		client, err := discover.NewEC2Client(ectx, o.ec2Endpoint)
		if err != nil {
			return fmt.Errorf("-join-ec2-tag: %w", err)
		}
		ips, err := discover.EC2Tag(ectx, client, key, value)
		if err != nil {
			return fmt.Errorf("-join-ec2-tag: %w", err)
		}
		log.Info("EC2 tag discovery", "tag", o.joinEC2Tag, "instances", len(ips))
		for _, ip := range ips {
			addrs = append(addrs, withPort(ip, gossipPort))
		}
	}
	if len(addrs) == 0 {
		log.Info("no members to join; starting a new cluster")
		return nil
	}
	n, err := cl.Join(addrs)
	if n == 0 {
		if o.joinEC2Tag == "" {
			return fmt.Errorf("join %v: %w", addrs, err)
		}
		// With tag discovery our own address is usually in the list and
		// the others may not be up yet; they will join us.
		log.Warn("joined no member", "addrs", addrs, "err", err)
		return nil
	}
	log.Info("joined cluster", "contacted", n, "members", len(cl.Members()))
	return nil
}

func withPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
}
