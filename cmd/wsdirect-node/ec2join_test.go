package main

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim/ec2simtest"
)

// TestJoinViaEC2Tag: the node finds the cluster through -join-ec2-tag.
// The emulator's subnet is 127.0.0.0/24, so the tagged instance's private
// IP (127.0.0.5) is where the observer member really listens; the node
// joins it on its own gossip port, as on EC2 where every member uses the
// same port.
func TestJoinViaEC2Tag(t *testing.T) {
	simCfg := ec2sim.DefaultConfig()
	simCfg.PendingDescribes = 0
	sim := ec2simtest.New(t, simCfg)
	ec2simtest.AddSubnet(t, sim, "subnet-0loop", "vpc-0loop", "127.0.0.0/24", "us-east-1a")
	_, err := sim.EC2Client(context.Background()).RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String("subnet-0loop"), PrivateIpAddress: aws.String("127.0.0.5"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("wsdirect-cluster"), Value: aws.String("t1")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	cc := cluster.LocalConfig()
	cc.Name = "observer"
	cc.Role = cluster.RoleAuth
	cc.Dev = true
	cc.BindAddr = "127.0.0.5"
	// Both members need the same port number, so take one below Linux's
	// ephemeral range (32768–60999): an ephemeral port can be taken on
	// 127.0.0.1 by any outgoing connection of a concurrently running test.
	cc.BindPort = sharedGossipPort(t, "127.0.0.5", "127.0.0.1")
	obs, err := cluster.Create(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Shutdown()
	port := cc.BindPort

	t.Setenv("AWS_ACCESS_KEY_ID", ec2sim.TestAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ec2sim.TestSecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	start(t, "-gossip-bind", "127.0.0.1:"+strconv.Itoa(port),
		"-join-ec2-tag", "wsdirect-cluster=t1", "-ec2-endpoint", sim.URL())

	deadline := time.Now().Add(15 * time.Second)
	for {
		nodes := obs.Nodes()
		if len(nodes) == 1 && nodes[0].Name == "n1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never joined through the EC2 tag; observer sees %+v", nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sim.CallCount("DescribeInstances") == 0 {
		t.Fatal("no DescribeInstances call")
	}
}

// sharedGossipPort finds a port below the ephemeral range that is free for
// TCP and UDP on every host in hosts.
func sharedGossipPort(t *testing.T, hosts ...string) int {
	t.Helper()
	for try := 0; try < 200; try++ {
		port := 20000 + rand.IntN(12000)
		if portFree(hosts, port) {
			return port
		}
	}
	t.Fatal("no free gossip port below the ephemeral range after 200 tries")
	return 0
}

func portFree(hosts []string, port int) bool {
	for _, h := range hosts {
		addr := net.JoinHostPort(h, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}
