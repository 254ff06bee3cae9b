package main

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim/ec2simtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
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
	// Both members need the same port number.
	cc.BindPort, err = probe.SharedFreePort(netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
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

	probe.Until(t, 15*time.Second, "the node to join through the EC2 tag", func() error {
		nodes := obs.Nodes()
		return probe.Check(len(nodes) == 1 && nodes[0].Name == "n1", "observer sees %+v", nodes)
	})
	if sim.CallCount("DescribeInstances") == 0 {
		t.Fatal("no DescribeInstances call")
	}
}
