// Package discover finds what a wsdirect member needs from its environment
// at start-up: the gossip addresses of peers to join (EC2 instances carrying
// a tag, through DescribeInstances) and the public address clients should
// dial (a literal, or "auto" from EC2 instance metadata, IMDSv2).
//
// Tag-based joining means a new node needs no reconfiguration anywhere:
// launching it with the cluster's tag is enough.
package discover
