// Package ec2sim is an in-process emulator of the Amazon EC2 Query API (version 2016-11-15),
// plus the two STS calls the provider needs, so that the Terraform provider and the runtime's
// EC2 tag discovery can be tested offline through the real aws-sdk-go-v2 clients.
//
// A test starts it with NewServer(DefaultConfig()) (package ec2simtest does so for tests of
// other packages), points an SDK client at URL() (as BaseEndpoint; EC2Client and STSClient do
// this), and inspects the result with Instances, Instance, Addresses, CallCount and Calls. New
// builds one without a listener, to mount as an http.Handler (the local cloud,
// internal/localcloud, serves it beside its other endpoints). Both refuse a Config with a
// missing or out-of-range field, naming it; nothing in the package panics or exits. The SDK's own ec2query/awsquery serializers and
// deserializers talk to it, so every test that passes also checks the wire format: form-encoded
// requests (Action=...&Version=...&Filter.1.Name=...), XML answers in the
// http://ec2.amazonaws.com/doc/2016-11-15/ namespace, and error envelopes
// <Response><Errors><Error><Code>...</Code>... with AWS's HTTP statuses (400 client errors,
// 503 RequestLimitExceeded, 500 InternalError).
//
// # What it models
//
//   - Instances: RunInstances (ImageId, InstanceType, MinCount/MaxCount, SubnetId,
//     SecurityGroupId.N, SecurityGroup.N, KeyName, IamInstanceProfile, UserData,
//     PrivateIpAddress, TagSpecification for instance/network-interface/volume, ClientToken,
//     NetworkInterface.N with DeviceIndex, SubnetId, SecurityGroupId.N,
//     SecondaryPrivateIpAddressCount, PrivateIpAddresses.N, AssociatePublicIpAddress,
//     DeleteOnTermination, Description, MetadataOptions), DescribeInstances (InstanceId.N,
//     Filter.N, MaxResults/NextToken), TerminateInstances, StopInstances, StartInstances,
//     DescribeInstanceTypes, DescribeInstanceAttribute, ModifyInstanceAttribute (GroupId.N,
//     SourceDestCheck, DisableApiTermination; UserData and InstanceType while stopped),
//     ModifyInstanceMetadataOptions.
//   - Instance metadata options: HttpTokens, HttpPutResponseHopLimit (1..64), HttpEndpoint,
//     HttpProtocolIpv6 and InstanceMetadataTags, with EC2's defaults for an AMI that does not
//     ask for IMDSv2 (optional, 1, enabled); ModifyInstanceMetadataOptions changes them in
//     place on a running instance and answers state "pending", after which DescribeInstances
//     shows "applied".
//   - Network: DescribeVpcs, DescribeSubnets, DescribeSecurityGroups,
//     DescribeNetworkInterfaces, ModifyNetworkInterfaceAttribute, AssignPrivateIpAddresses,
//     UnassignPrivateIpAddresses.
//   - Elastic IPs: AllocateAddress, AssociateAddress, DisassociateAddress, ReleaseAddress,
//     DescribeAddresses.
//   - Tags: CreateTags, DeleteTags, DescribeTags on instances, volumes, interfaces, Elastic
//     IPs, subnets, VPCs and security groups.
//   - STS (Version 2011-06-15, same endpoint): GetCallerIdentity and AssumeRole, which returns
//     fresh fake credentials; AssumedRoles and Calls (with the SigV4 access key ID of each
//     request) let a test check that assume_role took effect.
//
// Behaviour follows EC2 where tests depend on it:
//
//   - Private IPs come from the subnet CIDR, skipping the network address, the three addresses
//     AWS reserves after it and the broadcast address. They are unique, picked pseudo-randomly
//     from the seeded generator. Explicit addresses must be usable and free
//     (InvalidParameterValue, InvalidIPAddress.InUse).
//   - Per-instance-type limits: more IPv4 addresses on an interface than the type allows is
//     PrivateIpAddressLimitExceeded, at launch and on AssignPrivateIpAddresses; more interfaces
//     than the type allows is AttachmentLimitExceeded. The built-in types carry AWS's real
//     limits; AddInstanceType adds more.
//   - Lifecycle: pending (code 0), then running (16) after Config.PendingDescribes
//     DescribeInstances calls; TerminateInstances answers shutting-down (32), which
//     Config.ShutdownDescribes describes see before terminated (48); StopInstances goes the
//     same way through stopping (64) to stopped (80), and StartInstances makes it pending
//     again. While shutting down or stopping an instance keeps its interfaces, addresses and
//     Elastic IP associations, as on EC2. Terminated instances stay
//     visible for Config.TerminatedVisibleFor, without network details, as in EC2. With
//     Config.Lifecycle set, an owner ends pending, shutting-down and stopping instead
//     (InstanceBooted, InstanceShutDown), and hears of every launch, shutdown and address
//     change: that is how the local cloud boots and stops real processes.
//   - Stopping gives back the auto-assigned public IP; starting a single-interface instance
//     launched with one assigns a fresh one, unless an Elastic IP holds the primary address.
//   - Termination frees the private IPs of interfaces marked DeleteOnTermination and
//     disassociates their Elastic IPs; other interfaces stay, detached and "available".
//   - ClientToken idempotency: the same token with the same parameters answers the original
//     reservation; with other parameters, IdempotentParameterMismatch.
//   - Public IPs come from Config.PublicPools (by default the documentation ranges
//     198.51.100.0/24 and 203.0.113.0/24), with
//     ec2-a-b-c-d.compute-1.amazonaws.com style DNS names. An Elastic IP on the primary address
//     replaces the auto-assigned public IP; disassociating it gives the interface a fresh one,
//     as EC2 does for single-interface instances launched with a public IP.
//   - AssociateAddress on a pending, shutting-down or terminated instance is IncorrectInstanceState; on an
//     instance with several interfaces without NetworkInterfaceId it is InvalidInstanceID; on an
//     associated Elastic IP without AllowReassociation it is Resource.AlreadyAssociated.
//     ReleaseAddress of an associated address is InvalidIPAddress.InUse.
//   - Filters accept EC2's '*' and '?' wildcards; an unknown filter name is
//     InvalidParameterValue, as in EC2. Malformed IDs answer *.Malformed, unknown ones
//     *.NotFound with the code EC2 uses for that resource type.
//
// Faults for tests: FailNext(action, code, n) queues errors; Config.ThrottleRate answers
// RequestLimitExceeded (HTTP 503) at random from the seeded generator, which the SDK's
// standard retryer retries; Config.NotFoundAfterCreate models eventual consistency right after
// RunInstances. Two switches model EC2 implementations other than AWS, for tests of a
// client's checks: Config.AssignAnswersAll (AssignPrivateIpAddresses answers with every
// address of the interface, primary included) and Config.LaunchIgnoresSecondaryIPs
// (RunInstances launches interfaces without the secondary addresses asked for). All
// randomness comes from Config.Seed, so a given seed and call sequence gives
// the same IDs and addresses every run.
//
// # Simplifications compared with real EC2
//
//   - Without a Lifecycle, time does not drive state: instances leave pending, shutting-down
//     and stopping after a number of DescribeInstances calls, not seconds, and every
//     DescribeInstances call ages every such instance, even ones its filters hide. There is no
//     reboot, hibernation, spot interruption or instance failure.
//   - Terminated instances expire after a fixed time rather than EC2's "about an hour".
//   - Only one account and region; no IAM: every request is authorised and signatures are
//     not checked (the access key ID is only recorded). Any ami-* image exists and is an
//     x86_64 HVM EBS image; key pairs and instance profiles are not checked.
//   - There are no capacity limits beyond the subnet size, the 508 addresses of the two
//     documentation ranges and the optional Config.ElasticIPLimit (AWS's default quota is 5);
//     MaxCount is capped at 1000. RunInstances launches MaxCount instances or fails as a whole.
//   - There is no CreateNetworkInterface, AttachNetworkInterface or
//     DetachNetworkInterface, so only interfaces created by RunInstances exist;
//     NetworkInterface.N.NetworkInterfaceId is therefore always NotFound (or InUse).
//   - No IPv6, prefix delegation, placement groups, block-device settings (one root volume
//     per instance is reported), launch templates, security group rules,
//     route tables or internet gateways; subnets do not map public IPs on launch unless
//     AssociatePublicIpAddress is set. Security groups are only IDs, names and VPCs.
//   - DescribeInstances pages (MaxResults 5..1000, opaque NextToken); the other Describe
//     calls answer everything in one page. DescribeInstanceTypes knows only the network,
//     vCPU and memory figures of the built-in types.
//   - Error codes and HTTP statuses match EC2's; messages are close to EC2's but not
//     byte-identical, so test code should match on codes.
//   - STS knows only GetCallerIdentity and AssumeRole; AssumeRole checks the role ARN,
//     session name, duration and external ID format, not any trust policy.
package ec2sim
