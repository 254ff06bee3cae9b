// Package localcloud runs a local cloud: the EC2 and STS emulator (internal/ec2sim) behind
// one loopback endpoint, and every instance that reaches "running" booted as real local
// processes carrying out its cloud-init user data. See docs/localcloud.md.
package localcloud
